include!("../../build-support/test_cfg.rs");
