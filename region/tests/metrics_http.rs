//! `GET /metrics` through the router over the fake service: the service's text is served as
//! the Prometheus text format 0.0.4, followed by the HTTP layer's own families (the
//! authentication refusals), and only `GET` is routed.

mod http_common;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use http_common::Api;

#[tokio::test]
async fn metrics_serves_the_service_text_as_prometheus_text_format() {
    let api = Api::new();
    let r = api.get("/metrics", &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], meridian_region::http::metrics::CONTENT_TYPE);
    assert!(meridian_region::http::metrics::CONTENT_TYPE.starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.starts_with("# TYPE meridian_up gauge\nmeridian_up 1\n"), "{text}");
    assert!(text.contains("# TYPE meridian_http_auth_refusals_total counter\n"), "{text}");
    assert!(
        text.contains("meridian_http_auth_refusals_total{region=\"eu-west\",node=\"node-a\",reason=\"missing\"} 0\n"),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_refuses_other_methods_with_the_one_error_shape() {
    let api = Api::new();
    api.call(Method::POST, "/metrics", &[], Body::empty()).await.assert_error(405, "method_not_allowed");
}
