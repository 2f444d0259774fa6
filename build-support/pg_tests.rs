// Shared by the build scripts of crates with PostgreSQL tests: those tests run only when
// `CONCIERGE_TEST_DATABASE_URL` is set at build time; otherwise they compile as ignored, so the
// test report shows them as skipped rather than passed.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(concierge_pg_tests)");
    println!("cargo::rerun-if-env-changed=CONCIERGE_TEST_DATABASE_URL");
    if std::env::var_os("CONCIERGE_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=concierge_pg_tests");
    }
}
