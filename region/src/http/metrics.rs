//! `GET /metrics`: the node's metrics in the Prometheus text exposition format (version
//! 0.0.4), rendered by [`KvService::metrics_text`](crate::service::KvService::metrics_text).
//!
//! The metric names, labels and the alert rules built on them are in `docs/observability.md`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// This node's metrics for a Prometheus scrape.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "cluster",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain"))
)]
pub(crate) async fn get_metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.service.metrics_text().await;
    // The HTTP layer's own families, with the node's constant labels.
    let health = state.service.health();
    text.push_str(&state.auth.render_metrics(&[("region", &health.region), ("node", &health.node)]));
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text)
}
