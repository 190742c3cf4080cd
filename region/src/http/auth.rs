//! Bearer-token authentication, scopes and per-token rate limits of the HTTP API.
//!
//! [`ApiAuth`] is the state of one middleware layer ([`require`]) that the router puts on every
//! route. For each request it decides, from the method and the matched route
//! ([`required_access`]), what the request needs:
//!
//! - [`Access::Open`]: `/healthz`, `/metrics`, `/openapi.json` and `/dashboard` (probes,
//!   scrapers and a static page; they hold no data) never need a token;
//! - [`Access::Scope`]: everything else needs a token with one scope: `read` for reads of data
//!   and status, `write` for writes of data, `admin` for operating the cluster (creating
//!   keyspaces, repair, decommission, snapshots, digests, fencing and syncing regions). A route
//!   the table does not know needs `admin` (fail closed).
//!
//! With authentication on, the request's `Authorization: Bearer <token>` is hashed (SHA-256)
//! and compared with every configured hash in constant time (no early exit, so the time taken
//! says nothing about which token, if any, matched or how much of it). Then:
//!
//! 1. no header: `401 unauthorized` (`WWW-Authenticate: Bearer realm="meridian"`); a header that
//!    is not `Bearer <token>`, or an unknown token: `401 unauthorized` with
//!    `error="invalid_token"`;
//! 2. the token's rate limit (a token bucket, [`TokenBucket`]) is spent: `429 rate_limited` with
//!    `Retry-After` (whole seconds until the bucket has a request again);
//! 3. the token lacks the scope: `403 forbidden` (`error="insufficient_scope"`, and the `scope`
//!    field of the body names the one needed).
//!
//! Every refusal is counted by reason in `meridian_http_auth_refusals_total{reason}` (rendered
//! by the `/metrics` handler with [`ApiAuth::render_metrics`]). With authentication off, every
//! request passes (and nothing is counted).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meridian_config::{Scope, TokenConfig};
use parking_lot::Mutex;
use subtle::ConstantTimeEq;
use tokio::time::Instant;

use super::error::{codes, ApiError};

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: served to anyone.
    Open,
    /// A token with this scope.
    Scope(Scope),
}

/// What `method` on the route `route` (the route's pattern, as axum's [`MatchedPath`] gives it:
/// `/api/v1/keys/{key}`) needs. Documented in `docs/api.md` ("Authentication").
pub fn required_access(method: &Method, route: &str) -> Access {
    let reading = method == Method::GET || method == Method::HEAD;
    let read_or = |otherwise: Scope| Access::Scope(if reading { Scope::Read } else { otherwise });
    match route {
        "/healthz" | "/metrics" | "/openapi.json" | "/dashboard" => Access::Open,
        "/api/v1/keys/{key}"
        | "/api/v1/keyspaces/{ks}/keys/{key}"
        | "/api/v1/counters/{key}"
        | "/api/v1/keyspaces/{ks}/counters/{key}"
        | "/api/v1/sets/{key}"
        | "/api/v1/keyspaces/{ks}/sets/{key}"
        | "/api/v1/keys/"
        | "/api/v1/counters/"
        | "/api/v1/sets/"
        | "/api/v1/keyspaces/{ks}/keys/"
        | "/api/v1/keyspaces/{ks}/counters/"
        | "/api/v1/keyspaces/{ks}/sets/" => read_or(Scope::Write),
        "/api/v1/keyspaces"
        | "/api/v1/keyspaces/{ks}"
        | "/api/v1/cluster/status"
        | "/api/v1/cluster/ring"
        | "/api/v1/cluster/hints"
        | "/api/v1/cluster/repair"
        | "/api/v1/regions" => read_or(Scope::Admin),
        // Digests hash every range of the node: costly enough to be an operator's call.
        _ => Access::Scope(Scope::Admin),
    }
}

/// Why a request was refused (the `reason` label of `meridian_http_auth_refusals_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
    /// A token that matches no configured hash.
    UnknownToken,
    /// A known token without the scope the endpoint needs.
    Forbidden,
    /// A known token over its rate limit.
    RateLimited,
}

impl Refusal {
    /// Every reason, in the order they are rendered.
    pub const ALL: [Refusal; 5] =
        [Refusal::Missing, Refusal::Malformed, Refusal::UnknownToken, Refusal::Forbidden, Refusal::RateLimited];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::UnknownToken => "unknown_token",
            Refusal::Forbidden => "forbidden",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

/// A refused request: why, and what its answer needs (the scope missing, the time to wait).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub reason: Refusal,
    /// `Forbidden`: the scope the endpoint needs.
    pub scope: Option<Scope>,
    /// `RateLimited`: how long until the token's bucket has a request again.
    pub wait: Option<Duration>,
}

impl Refused {
    fn new(reason: Refusal) -> Refused {
        Refused { reason, scope: None, wait: None }
    }

    /// The answer: `401`, `403` or `429` in the API's error shape, with `WWW-Authenticate` or
    /// `Retry-After`.
    pub fn response(&self) -> Response {
        match self.reason {
            Refusal::Missing => {
                unauthorized("this endpoint needs a bearer token (Authorization: Bearer <token>)", false)
            }
            Refusal::Malformed => unauthorized("the Authorization header is not `Bearer <token>`", true),
            Refusal::UnknownToken => unauthorized("the bearer token is not valid", true),
            Refusal::Forbidden => forbidden(self.scope.unwrap_or(Scope::Admin)),
            Refusal::RateLimited => rate_limited(self.wait.unwrap_or(Duration::from_secs(1))),
        }
    }
}

/// A token bucket: up to `capacity` requests at once, refilled at `rate` per second.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    available: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_sec: u32, capacity: u32, now: Instant) -> TokenBucket {
        let capacity = f64::from(capacity.max(1));
        TokenBucket { rate: f64::from(rate_per_sec.max(1)), capacity, available: capacity, last: now }
    }

    /// Takes one request's worth at `now`: `Ok`, or `Err(wait)` with the time until one is
    /// available.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.available = (self.available + elapsed * self.rate).min(self.capacity);
        self.last = now;
        if self.available >= 1.0 {
            self.available -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.available) / self.rate))
        }
    }
}

/// One configured token: its hash, never the token.
struct Token {
    name: String,
    digest: [u8; 32],
    scopes: Vec<Scope>,
    bucket: Option<Mutex<TokenBucket>>,
}

/// The counters of `meridian_http_auth_refusals_total`.
#[derive(Debug, Default)]
struct Refusals([AtomicU64; 5]);

impl Refusals {
    fn inc(&self, r: Refusal) {
        self.0[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self, r: Refusal) -> u64 {
        self.0[r as usize].load(Ordering::Relaxed)
    }
}

struct Inner {
    /// `None`: authentication is off.
    tokens: Option<Vec<Token>>,
    refusals: Refusals,
}

/// The authentication state of one router: the configured tokens (by hash) with their rate
/// buckets, and the refusal counters. Cheap to clone.
#[derive(Clone)]
pub struct ApiAuth(Arc<Inner>);

impl fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Option<Vec<&str>> = self.0.tokens.as_ref().map(|t| t.iter().map(|t| t.name.as_str()).collect());
        f.debug_struct("ApiAuth").field("tokens", &names).finish_non_exhaustive()
    }
}

/// The SHA-256 of a token, as configuration stores it.
pub fn token_sha256(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The SHA-256 of a token as 64 lowercase hex digits (`auth.tokens[].sha256`).
pub fn token_sha256_hex(token: &str) -> String {
    hex::encode(token_sha256(token))
}

impl ApiAuth {
    /// Authentication off: every request passes.
    pub fn disabled() -> ApiAuth {
        ApiAuth(Arc::new(Inner { tokens: None, refusals: Refusals::default() }))
    }

    /// Authentication on with `tokens` (validated configuration: 64-hex-digit hashes). A
    /// token whose hash does not decode is skipped with an error logged.
    pub fn new(tokens: &[TokenConfig]) -> ApiAuth {
        let now = Instant::now();
        let tokens = tokens
            .iter()
            .filter_map(|t| {
                let Some(digest) = t.digest() else {
                    tracing::error!(token = %t.name, "auth: the token's sha256 is not 64 hex digits; ignored");
                    return None;
                };
                let bucket =
                    t.rate_per_sec.map(|rate| Mutex::new(TokenBucket::new(rate, t.bucket_size().unwrap_or(rate), now)));
                Some(Token { name: t.name.clone(), digest, scopes: t.scopes.clone(), bucket })
            })
            .collect();
        ApiAuth(Arc::new(Inner { tokens: Some(tokens), refusals: Refusals::default() }))
    }

    /// Whether requests need a token.
    pub fn is_enabled(&self) -> bool {
        self.0.tokens.is_some()
    }

    /// Refusals counted so far for `reason`.
    pub fn refusals(&self, reason: Refusal) -> u64 {
        self.0.refusals.get(reason)
    }

    /// The configured token whose hash equals `digest`. Every configured hash is compared, in
    /// constant time, whatever matches first.
    fn lookup(&self, digest: &[u8; 32]) -> Option<&Token> {
        let tokens = self.0.tokens.as_deref()?;
        let mut found: Option<&Token> = None;
        for token in tokens {
            // Configuration refuses duplicate hashes, so at most one matches.
            let equal: bool = token.digest.ct_eq(digest).into();
            if equal {
                found = Some(token);
            }
        }
        found
    }

    /// Decides one request: `Ok(name of the token)` (`None` when open or authentication is
    /// off), or the refusal (counted).
    pub fn check(&self, headers: &HeaderMap, access: Access) -> Result<Option<&str>, Refused> {
        let Access::Scope(scope) = access else {
            return Ok(None);
        };
        if self.0.tokens.is_none() {
            return Ok(None);
        }
        let refuse = |refused: Refused| {
            self.0.refusals.inc(refused.reason);
            Err(refused)
        };
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return refuse(Refused::new(Refusal::Missing));
        };
        let Some(token) = bearer_token(value) else {
            return refuse(Refused::new(Refusal::Malformed));
        };
        let Some(known) = self.lookup(&token_sha256(token)) else {
            return refuse(Refused::new(Refusal::UnknownToken));
        };
        if let Some(bucket) = &known.bucket {
            if let Err(wait) = bucket.lock().take(Instant::now()) {
                return refuse(Refused { wait: Some(wait), ..Refused::new(Refusal::RateLimited) });
            }
        }
        if !known.scopes.contains(&scope) {
            return refuse(Refused { scope: Some(scope), ..Refused::new(Refusal::Forbidden) });
        }
        Ok(Some(&known.name))
    }

    /// The `meridian_http_auth_refusals_total` family in the text exposition format, each
    /// sample labelled with `constant` first.
    pub fn render_metrics(&self, constant: &[(&str, &str)]) -> String {
        let mut x = crate::node::prometheus::Exposition::new(constant);
        x.family(
            "meridian_http_auth_refusals_total",
            crate::node::prometheus::Kind::Counter,
            "HTTP API requests refused by authentication, by reason: missing, malformed or unknown token \
             (401), forbidden (403, scope missing), rate_limited (429).",
        );
        for r in Refusal::ALL {
            x.sample("meridian_http_auth_refusals_total", &[("reason", r.as_str())], self.refusals(r));
        }
        x.finish()
    }
}

/// The token of `Bearer <token>` (the scheme case-insensitive, one or more spaces), if that is
/// what the header holds.
fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, rest) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_matches(' ');
    // RFC 6750 b64token: no spaces inside, not empty.
    (!token.is_empty() && !token.contains(' ') && token.is_ascii()).then_some(token)
}

fn with_header(mut resp: Response, name: header::HeaderName, value: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(name, v);
    }
    resp
}

fn unauthorized(message: &str, invalid_token: bool) -> Response {
    let challenge = if invalid_token {
        "Bearer realm=\"meridian\", error=\"invalid_token\"".to_owned()
    } else {
        "Bearer realm=\"meridian\"".to_owned()
    };
    let resp = ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message).into_response();
    with_header(resp, header::WWW_AUTHENTICATE, challenge)
}

fn forbidden(scope: Scope) -> Response {
    let resp = ApiError::new(
        StatusCode::FORBIDDEN,
        codes::FORBIDDEN,
        format!("the token does not have the {scope} scope this endpoint needs"),
    )
    .with_scope(scope.as_str())
    .into_response();
    with_header(
        resp,
        header::WWW_AUTHENTICATE,
        format!("Bearer realm=\"meridian\", error=\"insufficient_scope\", scope=\"{scope}\""),
    )
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

fn rate_limited(wait: Duration) -> Response {
    let secs = retry_after_secs(wait);
    let resp = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        codes::RATE_LIMITED,
        format!("the token is over its rate limit (auth.tokens[].rate_per_sec); retry in {secs} s"),
    )
    .into_response();
    with_header(resp, header::RETRY_AFTER, secs.to_string())
}

/// The middleware: authenticates and authorizes each request before its handler runs (see the
/// module documentation). Applied with `route_layer`, so it sees the matched route.
pub async fn require(State(auth): State<ApiAuth>, req: Request, next: Next) -> Response {
    let access = match req.extensions().get::<MatchedPath>() {
        Some(route) => required_access(req.method(), route.as_str()),
        None => Access::Scope(Scope::Admin),
    };
    match auth.check(req.headers(), access) {
        Ok(_) => next.run(req).await,
        Err(refused) => {
            tracing::debug!(
                method = %req.method(),
                path = %req.uri().path(),
                reason = refused.reason.as_str(),
                "auth: refused"
            );
            refused.response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: &str = "mrd_reader-token";
    const WRITER: &str = "mrd_writer-token";
    const ADMIN: &str = "mrd_admin-token";
    const LIMITED: &str = "mrd_limited-token";

    fn token(name: &str, secret: &str, scopes: &[Scope]) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            sha256: token_sha256_hex(secret),
            scopes: scopes.to_vec(),
            ..TokenConfig::default()
        }
    }

    fn auth() -> ApiAuth {
        let mut limited = token("limited", LIMITED, &[Scope::Read]);
        limited.rate_per_sec = Some(2);
        limited.burst = Some(3);
        ApiAuth::new(&[
            token("reader", READER, &[Scope::Read]),
            token("writer", WRITER, &[Scope::Read, Scope::Write]),
            token("admin", ADMIN, &[Scope::Admin]),
            limited,
        ])
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    fn refusal(result: Result<Option<&str>, Refused>) -> (Refusal, Response) {
        match result {
            Ok(name) => panic!("accepted as {name:?}"),
            Err(e) => (e.reason, e.response()),
        }
    }

    #[test]
    fn the_table_classifies_routes() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(required_access(&get, "/healthz"), Access::Open);
        assert_eq!(required_access(&get, "/metrics"), Access::Open);
        assert_eq!(required_access(&get, "/openapi.json"), Access::Open);
        assert_eq!(required_access(&get, "/dashboard"), Access::Open);
        assert_eq!(required_access(&get, "/api/v1/keys/{key}"), Access::Scope(Scope::Read));
        assert_eq!(required_access(&Method::HEAD, "/api/v1/sets/{key}"), Access::Scope(Scope::Read));
        assert_eq!(required_access(&Method::PUT, "/api/v1/keys/{key}"), Access::Scope(Scope::Write));
        assert_eq!(required_access(&Method::DELETE, "/api/v1/keyspaces/{ks}/sets/{key}"), Access::Scope(Scope::Write));
        assert_eq!(required_access(&post, "/api/v1/counters/{key}"), Access::Scope(Scope::Write));
        assert_eq!(required_access(&get, "/api/v1/keyspaces"), Access::Scope(Scope::Read));
        assert_eq!(required_access(&post, "/api/v1/keyspaces"), Access::Scope(Scope::Admin));
        assert_eq!(required_access(&get, "/api/v1/cluster/status"), Access::Scope(Scope::Read));
        assert_eq!(required_access(&get, "/api/v1/cluster/repair"), Access::Scope(Scope::Read));
        assert_eq!(required_access(&post, "/api/v1/cluster/repair"), Access::Scope(Scope::Admin));
        assert_eq!(required_access(&get, "/api/v1/cluster/digest"), Access::Scope(Scope::Admin));
        assert_eq!(required_access(&Method::DELETE, "/api/v1/cluster/nodes/{id}"), Access::Scope(Scope::Admin));
        assert_eq!(required_access(&post, "/api/v1/cluster/snapshot"), Access::Scope(Scope::Admin));
        assert_eq!(required_access(&post, "/api/v1/regions/{name}/fence"), Access::Scope(Scope::Admin));
        assert_eq!(required_access(&post, "/api/v1/regions/sync"), Access::Scope(Scope::Admin));
        assert_eq!(required_access(&get, "/api/v1/something-new"), Access::Scope(Scope::Admin), "fails closed");
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_401_with_a_challenge() {
        let auth = auth();
        let read = Access::Scope(Scope::Read);
        let (r, resp) = refusal(auth.check(&HeaderMap::new(), read));
        assert_eq!(r, Refusal::Missing);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(resp.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"meridian\"");
        for bad in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", READER] {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(bad).unwrap());
            let (r, resp) = refusal(auth.check(&h, read));
            assert_eq!(r, Refusal::Malformed, "{bad:?}");
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
            assert!(resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().contains("invalid_token"));
        }
        let (r, resp) = refusal(auth.check(&bearer("mrd_not-a-token"), read));
        assert_eq!(r, Refusal::UnknownToken);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        // A prefix of a real token, or the hash itself sent as the token, is no token.
        assert_eq!(refusal(auth.check(&bearer(&READER[..READER.len() - 1]), read)).0, Refusal::UnknownToken);
        assert_eq!(refusal(auth.check(&bearer(&token_sha256_hex(READER)), read)).0, Refusal::UnknownToken);
        assert_eq!(auth.refusals(Refusal::Missing), 1);
        assert_eq!(auth.refusals(Refusal::Malformed), 5);
        assert_eq!(auth.refusals(Refusal::UnknownToken), 3);
    }

    #[test]
    fn scopes_are_checked_and_a_missing_one_is_403() {
        let auth = auth();
        assert_eq!(auth.check(&bearer(READER), Access::Scope(Scope::Read)).unwrap(), Some("reader"));
        // The scheme is case-insensitive.
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("bearer  {WRITER}")).unwrap());
        assert_eq!(auth.check(&h, Access::Scope(Scope::Write)).unwrap(), Some("writer"));
        let (r, resp) = refusal(auth.check(&bearer(READER), Access::Scope(Scope::Write)));
        assert_eq!(r, Refusal::Forbidden);
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(resp.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().contains("scope=\"write\""));
        // Admin does not imply read.
        assert_eq!(refusal(auth.check(&bearer(ADMIN), Access::Scope(Scope::Read))).0, Refusal::Forbidden);
        assert_eq!(auth.check(&bearer(ADMIN), Access::Scope(Scope::Admin)).unwrap(), Some("admin"));
        assert_eq!(refusal(auth.check(&bearer(WRITER), Access::Scope(Scope::Admin))).0, Refusal::Forbidden);
        // Open routes need nothing, even a bad header passes.
        assert_eq!(auth.check(&HeaderMap::new(), Access::Open).unwrap(), None);
        assert_eq!(auth.refusals(Refusal::Forbidden), 3);
    }

    #[test]
    fn with_authentication_off_everything_passes() {
        let auth = ApiAuth::disabled();
        assert!(!auth.is_enabled());
        assert_eq!(auth.check(&HeaderMap::new(), Access::Scope(Scope::Admin)).unwrap(), None);
        assert!(Refusal::ALL.iter().all(|r| auth.refusals(*r) == 0));
    }

    #[test]
    fn hashes_are_stored_and_compared_never_the_token() {
        assert_eq!(
            token_sha256_hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "SHA-256 of \"test\""
        );
        let auth = auth();
        let debug = format!("{auth:?}");
        assert!(debug.contains("reader") && !debug.contains(READER), "{debug}");
        // Every configured hash takes part in the comparison: a match in first or last place,
        // or none, goes through the same loop.
        let digests: Vec<[u8; 32]> = [READER, LIMITED, "nope"].iter().map(|t| token_sha256(t)).collect();
        assert_eq!(auth.lookup(&digests[0]).map(|t| t.name.as_str()), Some("reader"));
        assert_eq!(auth.lookup(&digests[1]).map(|t| t.name.as_str()), Some("limited"));
        assert!(auth.lookup(&digests[2]).is_none());
        // A digest differing in its last byte only does not match.
        let mut near = digests[0];
        near[31] ^= 1;
        assert!(auth.lookup(&near).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_limit_is_a_token_bucket_answering_429_with_retry_after() {
        let auth = auth();
        let read = Access::Scope(Scope::Read);
        // Burst 3, then refused.
        for i in 0..3 {
            assert!(auth.check(&bearer(LIMITED), read).is_ok(), "request {i} of the burst");
        }
        let (r, resp) = refusal(auth.check(&bearer(LIMITED), read));
        assert_eq!(r, Refusal::RateLimited);
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        // Other tokens are not limited by it.
        for _ in 0..20 {
            assert!(auth.check(&bearer(READER), read).is_ok());
        }
        // 2 per second: one more after half a second, not before.
        tokio::time::advance(Duration::from_millis(400)).await;
        assert!(auth.check(&bearer(LIMITED), read).is_err());
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(auth.check(&bearer(LIMITED), read).is_ok());
        assert!(auth.check(&bearer(LIMITED), read).is_err());
        // A long pause refills up to the burst, no more.
        tokio::time::advance(Duration::from_secs(60)).await;
        for _ in 0..3 {
            assert!(auth.check(&bearer(LIMITED), read).is_ok());
        }
        assert!(auth.check(&bearer(LIMITED), read).is_err());
        assert_eq!(auth.refusals(Refusal::RateLimited), 4);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        let start = Instant::now();
        let mut b = TokenBucket::new(1, 1, start);
        assert!(b.take(start).is_ok());
        let wait = b.take(start).unwrap_err();
        assert_eq!(retry_after_secs(wait), 1);
        let mut slow = TokenBucket::new(1, 5, start);
        for _ in 0..5 {
            assert!(slow.take(start).is_ok());
        }
        assert!(slow.take(start + Duration::from_millis(999)).is_err());
    }

    /// The middleware on a router: it sees the matched route, refuses before the handler runs,
    /// and leaves open routes and unknown routes alone.
    #[tokio::test]
    async fn the_middleware_guards_routes_by_their_pattern() {
        use axum::body::Body;
        use axum::routing::get;
        use tower::ServiceExt as _;

        let auth = auth();
        let app = axum::Router::new()
            .route("/api/v1/keys/{key}", get(|| async { "value" }).put(|| async { "written" }))
            .route("/healthz", get(|| async { "ok" }))
            .route_layer(axum::middleware::from_fn_with_state(auth.clone(), require))
            .fallback(|| async { (StatusCode::NOT_FOUND, "no route") });
        let call = |method: Method, path: &str, token: Option<&str>| {
            let mut req = Request::builder().method(method).uri(path);
            if let Some(t) = token {
                req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            app.clone().oneshot(req.body(Body::empty()).unwrap())
        };
        assert_eq!(call(Method::GET, "/healthz", None).await.unwrap().status(), StatusCode::OK);
        assert_eq!(call(Method::GET, "/api/v1/keys/a", None).await.unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(call(Method::GET, "/api/v1/keys/a", Some(READER)).await.unwrap().status(), StatusCode::OK);
        let resp = call(Method::PUT, "/api/v1/keys/a", Some(READER)).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((body["error"].as_str(), body["scope"].as_str()), (Some("forbidden"), Some("write")));
        assert_eq!(call(Method::PUT, "/api/v1/keys/a", Some(WRITER)).await.unwrap().status(), StatusCode::OK);
        assert_eq!(call(Method::GET, "/nowhere", None).await.unwrap().status(), StatusCode::NOT_FOUND);
        assert_eq!(auth.refusals(Refusal::Missing), 1);
        assert_eq!(auth.refusals(Refusal::Forbidden), 1);
    }

    #[test]
    fn metrics_render_every_reason() {
        let auth = auth();
        let _ = auth.check(&HeaderMap::new(), Access::Scope(Scope::Read));
        let text = auth.render_metrics(&[("region", "r"), ("node", "n")]);
        assert!(text.contains("# TYPE meridian_http_auth_refusals_total counter"), "{text}");
        assert!(
            text.contains("meridian_http_auth_refusals_total{region=\"r\",node=\"n\",reason=\"missing\"} 1"),
            "{text}"
        );
        for r in Refusal::ALL {
            assert!(text.contains(&format!("reason=\"{}\"", r.as_str())), "{text}");
        }
    }
}
