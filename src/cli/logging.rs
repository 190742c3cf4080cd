//! Log set-up from `[telemetry]`: text or JSON lines on standard error, filtered by
//! `telemetry.log_level` (or `RUST_LOG` when set). Keys and values are never logged at info.

use meridian_config::{LogFormat, TelemetryConfig};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(cfg: &TelemetryConfig) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        // Dependencies are chatty at info; their warnings are what an operator needs.
        format!("{},quinn=warn,quinn_proto=warn,chitchat=warn,rustls=warn", cfg.log_level)
    });
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("warning: invalid log filter {directives:?} ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match cfg.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
