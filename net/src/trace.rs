//! W3C trace context across the wire: the sending side takes the current span's context as a
//! `traceparent` string for its frame; the receiving side makes its span a child of it.
//!
//! With no OpenTelemetry layer installed (`telemetry.otlp_endpoint` unset), the current span
//! has no valid context, [`current_traceparent`] is `None`, and frames carry nothing: tracing
//! costs nothing on the wire when it is off.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The longest `traceparent` accepted from a peer (the W3C version-00 form is 55 bytes).
pub const MAX_TRACEPARENT: usize = 128;

/// A W3C `traceparent` (`00-<trace id>-<span id>-<flags>`) for the current span, or `None`
/// when there is no valid trace context (tracing off).
pub fn current_traceparent() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    Some(format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
}

/// Parses a version-00 `traceparent`; `None` when malformed or all-zero.
pub fn parse_traceparent(tp: &str) -> Option<SpanContext> {
    if tp.len() > MAX_TRACEPARENT {
        return None;
    }
    let mut parts = tp.split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let sc = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, TraceState::default());
    sc.is_valid().then_some(sc)
}

/// Makes `span` a child of the remote `traceparent` (ignored when absent or malformed: a bad
/// value from a peer costs it its trace, nothing else).
pub fn set_remote_parent(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(sc) = traceparent.and_then(parse_traceparent) {
        let _ = span.set_parent(Context::new().with_remote_span_context(sc));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_parse_and_garbage_does_not() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let sc = parse_traceparent(tp).expect("valid");
        assert_eq!(format!("{}", sc.trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(format!("{}", sc.span_id()), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-zzf067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?}");
        }
        assert!(parse_traceparent(&"0".repeat(200)).is_none());
    }

    #[test]
    fn no_layer_means_no_context() {
        let span = tracing::info_span!("x");
        let _g = span.enter();
        assert_eq!(current_traceparent(), None);
    }
}
