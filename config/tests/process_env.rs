//! `load_from_process_env` reads this process's environment. Alone in its own test binary
//! (its own process), so setting a variable races with no other test.

use meridian_config::NodeConfig;

#[test]
fn reads_the_process_environment() {
    std::env::set_var("MERIDIAN_TELEMETRY__LOG_LEVEL", "debug");
    let flags = [("cluster.vnodes".to_string(), "32".to_string())];
    let config = NodeConfig::load_from_process_env(None, &flags).unwrap();
    assert_eq!(config.telemetry.log_level, "debug");
    assert_eq!(config.cluster.vnodes, 32);
}
