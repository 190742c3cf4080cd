//! The `[telemetry]` section: logs, traces and metrics export.

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Format of log lines on standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The `[telemetry]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Format of log lines: `text` or `json`.
    pub log_format: LogFormat,
    /// Which log events are written, in `tracing`'s filter syntax (`info`,
    /// `info,meridian_region=debug`). The syntax is checked when logging starts.
    pub log_level: String,
    /// OpenTelemetry collector endpoint (OTLP), an `http://` or `https://` URL. Unset: spans are
    /// not exported.
    pub otlp_endpoint: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self { log_format: LogFormat::Text, log_level: "info".into(), otlp_endpoint: None }
    }
}

impl TelemetryConfig {
    /// Checks the log filter is not blank and the endpoint is an HTTP(S) URL with a host.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.log_level.trim().is_empty() {
            return Err(ConfigError::invalid("telemetry.log_level", "must not be empty (try \"info\")"));
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            let host = endpoint.strip_prefix("http://").or_else(|| endpoint.strip_prefix("https://"));
            let valid = host.is_some_and(|rest| {
                let authority = rest.split('/').next().unwrap_or_default();
                !authority.is_empty() && !rest.chars().any(char::is_whitespace)
            });
            if !valid {
                return Err(ConfigError::invalid(
                    "telemetry.otlp_endpoint",
                    format!("{endpoint:?} is not an http:// or https:// URL with a host"),
                ));
            }
        }
        Ok(())
    }
}
