include!("../../build-support/pg_tests.rs");
