// Shared by the build scripts of crates whose tests need outside services. Such tests run only
// when their switch is set at build time; otherwise they compile as `#[ignore]`d with the reason,
// so the test report shows them as skipped rather than passed. `.ci/run` sets every switch.
//   CONCIERGE_TEST_DATABASE_URL  -> cfg(concierge_pg_tests): PostgreSQL store and API tests
//   CONCIERGE_BROWSER_TESTS=1    -> cfg(concierge_browser_tests): headless Chromium tests
//   CONCIERGE_MODEL_DIR          -> cfg(concierge_model_tests): tests of the local embedding model
//   CONCIERGE_MCP_PEER_TESTS=1   -> cfg(concierge_mcp_peer_tests): MCP against the official SDKs
//                                   (installed by the test itself from PyPI, pinned)
fn main() {
    println!("cargo::rustc-check-cfg=cfg(concierge_pg_tests)");
    println!("cargo::rustc-check-cfg=cfg(concierge_browser_tests)");
    println!("cargo::rustc-check-cfg=cfg(concierge_model_tests)");
    println!("cargo::rustc-check-cfg=cfg(concierge_mcp_peer_tests)");
    println!("cargo::rerun-if-env-changed=CONCIERGE_MCP_PEER_TESTS");
    if std::env::var("CONCIERGE_MCP_PEER_TESTS").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=concierge_mcp_peer_tests");
    }
    println!("cargo::rerun-if-env-changed=CONCIERGE_MODEL_DIR");
    if std::env::var_os("CONCIERGE_MODEL_DIR").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=concierge_model_tests");
    }
    println!("cargo::rerun-if-env-changed=CONCIERGE_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=CONCIERGE_BROWSER_TESTS");
    if std::env::var_os("CONCIERGE_TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=concierge_pg_tests");
    }
    if std::env::var("CONCIERGE_BROWSER_TESTS").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=concierge_browser_tests");
    }
}
