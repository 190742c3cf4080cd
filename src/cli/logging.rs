//! Log and trace set-up from `[telemetry]`: text or JSON lines on standard error, filtered by
//! `telemetry.log_level` (or `RUST_LOG` when set); and, when `telemetry.otlp_endpoint` is set,
//! spans exported over OTLP/HTTP (protobuf) in batches. Keys and values are never logged at
//! info, and spans carry no keys (keyspace, consistency level and node only).
//!
//! Spans that make a trace (docs/observability.md): `coordinator.write` / `coordinator.read`
//! on the node a client asked, `replica.handle` on every replica it asked (the W3C trace
//! context travels in the RPC frame), `wan.ship` for each batch a node sends to another region
//! and `wan.apply` where that region merges it (context in the WAN frame), whose QUORUM merges
//! are again `replica.handle` spans on the destination's replicas.

use std::time::Duration;

use meridian_config::{LogFormat, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the span exporter alive; dropping it flushes the spans not yet sent.
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("warning: flushing spans to the OTLP endpoint failed: {e}");
            }
        }
    }
}

/// Who is exporting: `service.instance.id` and `meridian.region` of every span.
#[derive(Debug, Clone, Copy)]
pub struct Service<'a> {
    /// `node.id`.
    pub node: &'a str,
    /// `node.region`.
    pub region: &'a str,
}

/// The OTLP/HTTP traces URL of a collector endpoint: `/v1/traces` is added to a bare
/// `http://host:port` (or one ending in `/`); a URL with another path is used as given.
pub fn traces_url(endpoint: &str) -> String {
    let after_scheme = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    match after_scheme.find('/') {
        None => format!("{endpoint}/v1/traces"),
        Some(i) if after_scheme[i..] == *"/" => format!("{}v1/traces", endpoint),
        Some(_) => endpoint.to_owned(),
    }
}

fn tracer_provider(endpoint: &str, service: Service<'_>) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url(endpoint))
        .with_timeout(Duration::from_secs(5))
        .with_headers(Default::default())
        .build()
        .map_err(|e| e.to_string())?;
    let batch = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_secs(1))
                .with_max_queue_size(8192)
                .build(),
        )
        .build();
    let resource = Resource::builder()
        .with_service_name("meridian")
        .with_attributes([
            KeyValue::new("service.instance.id", service.node.to_owned()),
            KeyValue::new("meridian.region", service.region.to_owned()),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
        ])
        .build();
    Ok(SdkTracerProvider::builder().with_span_processor(batch).with_resource(resource).build())
}

/// Installs the global subscriber (once; later calls are ignored). Keep the guard until the
/// process ends so the last spans are sent.
pub fn init(cfg: &TelemetryConfig, service: Service<'_>) -> TelemetryGuard {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| {
        // Dependencies are chatty at info; their warnings are what an operator needs.
        format!("{},quinn=warn,quinn_proto=warn,chitchat=warn,rustls=warn", cfg.log_level)
    });
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!("warning: invalid log filter {directives:?} ({e}); using \"info\"");
        EnvFilter::new("info")
    });
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match cfg.log_format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
    };
    let mut guard = TelemetryGuard::default();
    let otel = cfg.otlp_endpoint.as_deref().and_then(|endpoint| match tracer_provider(endpoint, service) {
        Ok(provider) => {
            let tracer = provider.tracer("meridian");
            guard.provider = Some(provider);
            // Only Meridian's own spans are exported, whatever the log filter says.
            let only_ours = tracing_subscriber::filter::filter_fn(|m| m.target().starts_with("meridian"));
            Some(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(only_ours))
        }
        Err(e) => {
            eprintln!("warning: traces are off: cannot export to {endpoint}: {e}");
            None
        }
    });
    // The log filter applies to the log lines only, so spans reach the exporter even at
    // `log_level = "warn"`.
    let _ = tracing_subscriber::registry().with(fmt.with_filter(filter)).with(otel).try_init();
    guard
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn the_traces_path_is_added_to_a_bare_endpoint_only() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("https://c/otlp/v1/traces"), "https://c/otlp/v1/traces");
    }
}
