//! `GET /dashboard`: a live web dashboard of the region as the answering node sees it.
//!
//! One static page (`dashboard/index.html`, with `dashboard/dashboard.css` and
//! `dashboard/dashboard.js` inlined into it), embedded in the binary. Its script polls the
//! node's own JSON endpoints every second (`/api/v1/cluster/status`, `/api/v1/regions`,
//! `/api/v1/cluster/hints`, `/api/v1/cluster/ring` when the ring version changes, and
//! `/metrics`) and renders the region's nodes and their states, ring ownership, the WAN links
//! with lag and backlog per peer region, hinted-handoff queues, conflicts, repair, and recent
//! events it derives from the differences between two polls. The page loads nothing from
//! anywhere else (the Content-Security-Policy forbids it), so it works offline and behind a
//! firewall; other nodes' dashboards are plain links. How to read it: `docs/observability.md`,
//! "Reading the dashboard".

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;

const HTML: &str = include_str!("dashboard/index.html");
const CSS: &str = include_str!("dashboard/dashboard.css");
const JS: &str = include_str!("dashboard/dashboard.js");

/// Where the stylesheet and the script go in `index.html`.
const CSS_SLOT: &str = "/*DASHBOARD_CSS*/";
const JS_SLOT: &str = "/*DASHBOARD_JS*/";

/// Same-origin only: inline style and script (the page itself), `fetch` to this node, no
/// external resource of any kind, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The whole page, built once: `index.html` with the stylesheet and the script inlined.
pub fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| HTML.replacen(CSS_SLOT, CSS, 1).replacen(JS_SLOT, JS, 1))
}

/// The dashboard page.
pub(crate) async fn get_dashboard() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        page(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_inlines_its_stylesheet_and_script_once() {
        let p = page();
        assert!(!p.contains(CSS_SLOT) && !p.contains(JS_SLOT), "a slot was left unfilled");
        assert_eq!(HTML.matches(CSS_SLOT).count(), 1);
        assert_eq!(HTML.matches(JS_SLOT).count(), 1);
        assert!(p.contains("function poll()") && p.contains(".card {"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let p = page();
        // The only absolute URLs: the SVG namespace, and links to the other nodes' dashboards.
        for (i, _) in p.match_indices("://") {
            let around = &p[i.saturating_sub(12)..(i + 24).min(p.len())];
            assert!(
                around.contains("http://www.w3.org/2000/svg") || around.contains("\"http://\" + n.http"),
                "unexpected absolute URL near {around:?}"
            );
        }
        for tag in ["<link", "<script src", "<img", "<iframe", "@import", "url("] {
            assert!(!p.contains(tag), "{tag} in the page");
        }
    }

    #[test]
    fn every_endpoint_the_script_polls_is_a_route_of_the_router() {
        // The router's own source is the list of routes; keep the two in step.
        let routes = include_str!("mod.rs");
        for path in
            ["/api/v1/cluster/status", "/api/v1/regions", "/api/v1/cluster/hints", "/api/v1/cluster/ring", "/metrics"]
        {
            assert!(JS.contains(&format!("\"{path}\"")), "the script does not poll {path}");
            assert!(routes.contains(&format!(".route(\"{path}\", get(")), "{path} is not a GET route");
        }
    }
}
