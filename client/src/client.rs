//! [`Client`] and [`ClientBuilder`]: the tokio shell around the routing state machines.
//!
//! One operation is one call of `Inner::execute`: up to `retry.max_attempts` attempts, each
//! sent to a node picked by `Inner::pick` (the first region of [`RegionTable::order`] that
//! has not failed during this operation; inside it, the key's first live replica from the
//! region's ring, else the next configured node), the outcome of each failed attempt decided
//! by [`classify`]. A background task (holding only a weak reference, aborted when the last
//! clone of the client is dropped) probes the regions; rings are fetched on demand, in the
//! background, when they are missing, old or suspected stale.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::json;

use crate::api::{self, encode_segment, MvrValue, Register, SetValue, Value, WriteAck};
use crate::config::{
    base_url_as, explicit_https, ClientConfig, Consistency, EndpointsFile, RegionEndpoints, RetryPolicy,
};
use crate::error::TransportKind;
use crate::metrics::{ClientMetrics, MetricsSnapshot};
use crate::regions::{RegionSwitch, RegionTable};
use crate::retry::{classify, Safety, Verdict};
use crate::ring::RingView;
use crate::session::Session;
use crate::{Error, Version};

/// The header carrying the session token on reads.
pub const SESSION_TOKEN_HEADER: &str = "X-Session-Token";

/// Node failures (refused or lost connections) tolerated in one region during one operation
/// before the region counts as failed.
const NODE_FAILURES_PER_REGION: u32 = 2;
/// First pause between two reads waiting for the session's write; doubles up to the next.
const SESSION_PAUSE_MIN: Duration = Duration::from_millis(20);
const SESSION_PAUSE_MAX: Duration = Duration::from_millis(250);
/// Round trips of one probe (the median is the RTT).
const PROBE_SAMPLES: usize = 3;
/// The background task's tick (probes and re-probes are decided on each).
const BACKGROUND_TICK: Duration = Duration::from_millis(250);

/// Builds a [`Client`]: the regions (at least one, each with at least one node) and options.
#[derive(Debug, Clone, Default)]
pub struct ClientBuilder {
    regions: Vec<RegionEndpoints>,
    endpoints_file: Option<PathBuf>,
    config: ClientConfig,
    token: Option<Secret>,
    ca_certs: Vec<Vec<u8>>,
    https: bool,
}

/// A bearer token, kept out of `Debug` output.
#[derive(Clone, PartialEq, Eq)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl ClientBuilder {
    /// Adds these regions.
    pub fn regions(mut self, regions: Vec<RegionEndpoints>) -> Self {
        self.regions.extend(regions);
        self
    }

    /// Adds one region.
    pub fn region(mut self, name: impl Into<String>, nodes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.regions.push(RegionEndpoints::new(name, nodes));
        self
    }

    /// Adds the regions of an endpoints file as `meridian dev` writes it.
    pub fn endpoints_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.endpoints_file = Some(path.into());
        self
    }

    /// Replaces every option.
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// Time allowed for one HTTP request (default 2 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Time allowed to open a connection (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The retry policy (default: 4 attempts, 25 ms to 1 s backoff with jitter).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// The consistency level of every data request (default: the server's).
    pub fn consistency(mut self, level: Consistency) -> Self {
        self.config.consistency = Some(level);
        self
    }

    /// How often regions are probed (default 10 s).
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.config.probe_interval = interval;
        self
    }

    /// How long a failed region is avoided before it is probed again (default 5 s).
    pub fn region_down_for(mut self, period: Duration) -> Self {
        self.config.region_down_for = period;
        self
    }

    /// RTTs within this much of the nearest count as equal, the configured order breaking the
    /// tie (default 2 ms).
    pub fn rtt_tolerance(mut self, tolerance: Duration) -> Self {
        self.config.rtt_tolerance = tolerance;
        self
    }

    /// Token-aware routing on (default) or off.
    pub fn token_aware(mut self, on: bool) -> Self {
        self.config.token_aware = on;
        self
    }

    /// How long a read waits for the session's own write (default 2 s).
    pub fn session_wait(mut self, wait: Duration) -> Self {
        self.config.session_wait = wait;
        self
    }

    /// The bearer token sent with every request (`Authorization: Bearer <token>`), for nodes
    /// with `auth.enabled`. Without one, the endpoints file's `token`, if any, is used.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret(token.into()));
        self
    }

    /// Trust this CA (PEM text of one or more certificates) for HTTPS, besides the public
    /// roots; implies HTTPS to every node.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_certs.push(pem.into());
        self.https = true;
        self
    }

    /// Speak HTTPS to every node (also implied by a node given as `https://HOST:PORT`, or by
    /// [`ca_cert_pem`](Self::ca_cert_pem)).
    pub fn https(mut self, on: bool) -> Self {
        self.https = on;
        self
    }

    /// Reach the node that publishes `published` (`HOST:PORT`) at `reachable` instead.
    pub fn map_address(mut self, published: impl Into<String>, reachable: impl Into<String>) -> Self {
        self.config.address_map.insert(published.into(), reachable.into());
        self
    }

    /// Checks the configuration, measures every region's RTT, fetches the rings (when
    /// token-aware), and starts the background probing. Must run inside a tokio runtime,
    /// which the client uses for its background task.
    pub async fn build(self) -> Result<Client, Error> {
        self.config.validate()?;
        let mut regions = Vec::new();
        let mut token = self.token.clone();
        if let Some(path) = &self.endpoints_file {
            let file = EndpointsFile::read(path)?;
            regions.extend(file.to_regions());
            if token.is_none() {
                token = file.token.map(Secret);
            }
        }
        regions.extend(self.regions);
        // One scheme for every node: HTTPS if asked for or if any node is written https://.
        let schemes: Vec<bool> =
            regions.iter().flat_map(|r| r.nodes.iter()).filter_map(|n| explicit_https(n)).collect();
        let https = self.https || schemes.contains(&true);
        if https && schemes.contains(&false) {
            return Err(Error::Config("nodes are given both as http:// and https://; the API speaks one".into()));
        }
        if regions.is_empty() {
            return Err(Error::Config("no regions: give at least one region with one node".into()));
        }
        let mut table = Vec::new();
        for r in &regions {
            if r.name.is_empty() {
                return Err(Error::Config("a region has an empty name".into()));
            }
            if table.iter().any(|(name, _): &(String, Vec<String>)| *name == r.name) {
                return Err(Error::Config(format!("region {:?} is listed twice", r.name)));
            }
            if r.nodes.is_empty() {
                return Err(Error::Config(format!("region {:?} lists no nodes", r.name)));
            }
            let nodes = r.nodes.iter().map(|n| base_url_as(n, https)).collect::<Result<Vec<_>, _>>()?;
            table.push((r.name.clone(), nodes));
        }
        let address_map = self
            .config
            .address_map
            .iter()
            .map(|(from, to)| Ok((base_url_as(from, https)?, base_url_as(to, https)?)))
            .collect::<Result<HashMap<_, _>, Error>>()?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(self.config.connect_timeout)
            .timeout(self.config.request_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true);
        if let Some(Secret(token)) = &token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Error::Config("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value);
            http = http.default_headers(headers);
        }
        for pem in &self.ca_certs {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Config(format!("the CA certificate is not PEM: {e}")))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let n = table.len();
        let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64) ^ 0x9e37_79b9;
        let inner = Arc::new(Inner {
            http,
            state: Mutex::new(State {
                table: RegionTable::new(table, self.config.rtt_tolerance),
                rings: vec![RingSlot::default(); n],
                node_down: HashMap::new(),
                cursor: vec![0; n],
                session: Session::new(self.config.session_keys),
            }),
            address_map,
            https,
            config: self.config,
            metrics: ClientMetrics::default(),
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            background: Mutex::new(None),
        });
        futures::future::join_all((0..n).map(|i| inner.probe_region(i))).await;
        if inner.config.token_aware {
            futures::future::join_all((0..n).map(|i| Inner::fetch_ring(Arc::clone(&inner), i))).await;
        }
        let task = tokio::spawn(background(Arc::downgrade(&inner)));
        *inner.background.lock() = Some(task.abort_handle());
        Ok(Client { inner, consistency: None })
    }
}

/// A region as the client sees it (see [`Client::regions`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionInfo {
    /// Its name.
    pub name: String,
    /// Its configured nodes (base URLs).
    pub nodes: Vec<String>,
    /// The last measured RTT.
    pub rtt: Option<Duration>,
    /// Why it is down, if it is.
    pub down: Option<String>,
}

/// A Meridian client: routes each operation to the nearest healthy region and, inside it, to
/// the key's first live replica; fails over, retries what is safe to retry, and keeps a session
/// for read-your-writes across failovers. See the crate documentation.
///
/// Cheap to clone; clones share connections, routing state, the session and the metrics.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
    consistency: Option<Consistency>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    /// `published base URL → reachable base URL`.
    address_map: HashMap<String, String>,
    /// Whether every node is spoken to over HTTPS (ring addresses included).
    https: bool,
    state: Mutex<State>,
    metrics: ClientMetrics,
    rng: Mutex<SmallRng>,
    background: Mutex<Option<tokio::task::AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.background.lock().take() {
            task.abort();
        }
    }
}

#[derive(Debug)]
struct State {
    table: RegionTable,
    rings: Vec<RingSlot>,
    /// Nodes (base URLs) that refused a connection, avoided until the instant.
    node_down: HashMap<String, Instant>,
    /// Round-robin position per region over its configured nodes.
    cursor: Vec<usize>,
    session: Session,
}

#[derive(Debug, Clone, Default)]
struct RingSlot {
    ring: Option<Arc<RingView>>,
    fetched: Option<Instant>,
    stale: bool,
    fetching: bool,
}

/// One HTTP request of an operation, as every attempt sends it.
#[derive(Debug)]
struct Request {
    method: Method,
    path: String,
    /// `(keyspace, key)` for token-aware routing.
    route: Option<(String, String)>,
    headers: Vec<(&'static str, String)>,
    body: Option<(Bytes, &'static str)>,
    safety: Safety,
    /// Whether `404 not_found` is an answer (reads) rather than an error.
    not_found_ok: bool,
}

/// A successful (or, for reads, `404 not_found`) answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Bytes,
    url: String,
    region: String,
    node: String,
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn transport_error(url: &str, e: &reqwest::Error) -> Error {
    let kind = if e.is_connect() {
        TransportKind::Connect
    } else if e.is_timeout() {
        TransportKind::Timeout
    } else {
        TransportKind::Connection
    };
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Transport { kind, url: url.to_owned(), message }
}

impl Inner {
    fn consistency_header(&self, level: Option<Consistency>) -> Option<(&'static str, String)> {
        level.or(self.config.consistency).map(|c| ("X-Consistency-Level", c.as_str().to_owned()))
    }

    fn jitter(&self) -> f64 {
        self.rng.lock().random::<f64>()
    }

    /// The region and node of the next attempt, and the ring fetch it calls for, if any.
    fn pick(self: &Arc<Self>, route: Option<&(String, String)>, failed: &[usize]) -> (usize, String) {
        let now = Instant::now();
        let mut st = self.state.lock();
        // `build` guarantees at least one region, each with at least one node.
        let order = st.table.order();
        let region = order.iter().copied().find(|i| !failed.contains(i)).unwrap_or(order[0]);
        if self.config.token_aware {
            let slot = &st.rings[region];
            let old = slot.fetched.is_none_or(|f| now.saturating_duration_since(f) >= self.config.ring_refresh);
            if (old || slot.stale) && !slot.fetching {
                st.rings[region].fetching = true;
                tokio::spawn(Inner::fetch_ring(Arc::clone(self), region));
            }
            if let (Some((ks, key)), Some(ring)) = (route, st.rings[region].ring.clone()) {
                for replica in ring.replicas_for_key(ks, key.as_bytes()) {
                    let Some(http) = replica.http.as_deref().filter(|_| replica.live) else { continue };
                    let Ok(published) = base_url_as(http, self.https) else { continue };
                    let node = self.address_map.get(&published).cloned().unwrap_or(published);
                    if st.node_down.get(&node).is_none_or(|&until| now >= until) {
                        return (region, node);
                    }
                }
            }
        }
        let nodes = st.table.get(region).nodes.clone();
        let start = st.cursor[region];
        st.cursor[region] = start.wrapping_add(1);
        for k in 0..nodes.len() {
            let node = &nodes[(start + k) % nodes.len()];
            if st.node_down.get(node).is_none_or(|&until| now >= until) {
                return (region, node.clone());
            }
        }
        (region, nodes[start % nodes.len()].clone())
    }

    /// Runs one operation: attempts, retries, failovers (see the module documentation).
    async fn execute(self: &Arc<Self>, req: &Request) -> Result<Answer, Error> {
        ClientMetrics::inc(&self.metrics.operations);
        let result = self.attempts(req).await;
        if let Err(e) = &result {
            ClientMetrics::inc(&self.metrics.errors);
            if matches!(e, Error::Indeterminate { .. }) {
                ClientMetrics::inc(&self.metrics.indeterminate);
            }
        }
        result
    }

    async fn attempts(self: &Arc<Self>, req: &Request) -> Result<Answer, Error> {
        let policy = self.config.retry;
        let mut failed: Vec<usize> = Vec::new();
        let mut refusals: HashMap<usize, u32> = HashMap::new();
        let mut regions_tried: Vec<String> = Vec::new();
        let mut previous: Option<usize> = None;
        let mut last: Option<Error> = None;
        for attempt in 0..policy.max_attempts {
            if attempt > 0 {
                ClientMetrics::inc(&self.metrics.retries);
                tokio::time::sleep(policy.backoff(attempt - 1, self.jitter())).await;
            }
            // Every region failed during this operation: start over from the nearest.
            if failed.len() >= self.state.lock().table.regions().len() {
                failed.clear();
            }
            let (region, node) = self.pick(req.route.as_ref(), &failed);
            if previous.is_some_and(|p| p != region) {
                ClientMetrics::inc(&self.metrics.failovers);
            }
            previous = Some(region);
            let region_name = self.state.lock().table.get(region).name.clone();
            if !regions_tried.contains(&region_name) {
                regions_tried.push(region_name.clone());
            }
            ClientMetrics::inc(&self.metrics.requests);
            let (err, asked) = match self.send(&node, req).await {
                Ok((status, body, url)) => {
                    self.state.lock().table.served(region, Instant::now(), unix_ms());
                    return Ok(Answer { status, body, url, region: region_name, node });
                }
                Err(failure) => failure,
            };
            let now = Instant::now();
            if matches!(err, Error::Transport { .. }) {
                // Whatever the verdict, the next attempt prefers another node.
                let mut st = self.state.lock();
                st.node_down.insert(node.clone(), now + self.config.node_down_for);
                st.rings[region].stale = true;
            }
            match classify(&err, asked, req.safety) {
                Verdict::Fail => return Err(err),
                Verdict::Indeterminate => {
                    self.state.lock().table.mark_down(region, now, self.config.region_down_for, err.to_string());
                    return Err(Error::Indeterminate { region: region_name, cause: Box::new(err) });
                }
                Verdict::NextNode => {
                    let mut st = self.state.lock();
                    let count = refusals.entry(region).or_default();
                    *count += 1;
                    let nodes = st.table.get(region).nodes.len() as u32;
                    if *count >= NODE_FAILURES_PER_REGION.min(nodes.max(1)) {
                        st.table.mark_down(region, now, self.config.region_down_for, err.to_string());
                        failed.push(region);
                    }
                }
                Verdict::NextRegion => {
                    let mut st = self.state.lock();
                    st.table.mark_down(region, now, self.config.region_down_for, err.to_string());
                    st.rings[region].stale = true;
                    failed.push(region);
                }
            }
            tracing::debug!(error = %err, attempt, region = %region_name, "attempt failed");
            last = Some(err);
        }
        let last = last.unwrap_or_else(|| Error::Config("no attempt was made".into()));
        Err(Error::Exhausted { attempts: policy.max_attempts, regions: regions_tried, last: Box::new(last) })
    }

    /// Sends one attempt to `node`: the status, body and URL of a success, or the error and
    /// the `asked` field of its body.
    async fn send(&self, node: &str, req: &Request) -> Result<(u16, Bytes, String), (Error, Option<u64>)> {
        let url = format!("{node}{}", req.path);
        let mut rb = self.http.request(req.method.clone(), &url);
        for (name, value) in &req.headers {
            rb = rb.header(*name, value);
        }
        if let Some((body, content_type)) = &req.body {
            rb = rb.header("Content-Type", *content_type).body(body.clone());
        }
        let resp = rb.send().await.map_err(|e| (transport_error(&url, &e), None))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| (transport_error(&url, &e), None))?;
        if (200..300).contains(&status) {
            return Ok((status, body, url));
        }
        let (err, extra) = api::error_answer(&url, status, &body);
        if status == 404 && req.not_found_ok && err.code() == "not_found" {
            return Ok((status, body, url));
        }
        Err((err, extra.asked))
    }

    /// Measures region `i`'s RTT: [`PROBE_SAMPLES`] `GET /healthz` on the first of its nodes
    /// that answers them all; a region that is down must also not be fenced to come back.
    async fn probe_region(&self, i: usize) {
        let (nodes, down) = {
            let st = self.state.lock();
            let r = st.table.get(i);
            (r.nodes.clone(), r.down.is_some())
        };
        ClientMetrics::inc(&self.metrics.probes);
        let timeout = self.config.probe_timeout;
        let mut why = String::from("no node answered");
        let mut result = None;
        'nodes: for node in &nodes {
            let url = format!("{node}/healthz");
            let mut samples = Vec::with_capacity(PROBE_SAMPLES);
            for _ in 0..PROBE_SAMPLES {
                let start = Instant::now();
                match self.http.get(&url).timeout(timeout).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        // The answer is small; read it so the connection is reused.
                        let _ = resp.bytes().await;
                        samples.push(start.elapsed());
                    }
                    Ok(resp) => {
                        why = format!("{url} answered {}", resp.status().as_u16());
                        continue 'nodes;
                    }
                    Err(e) => {
                        why = transport_error(&url, &e).to_string();
                        continue 'nodes;
                    }
                }
            }
            if down {
                match self.fenced(node).await {
                    Ok(false) => {}
                    Ok(true) => {
                        why = "the region is fenced".to_owned();
                        break;
                    }
                    Err(e) => {
                        why = e;
                        continue;
                    }
                }
            }
            samples.sort_unstable();
            result = Some(samples[samples.len() / 2]);
            break;
        }
        let outcome = result.ok_or(why);
        self.state.lock().table.probed(i, Instant::now(), outcome, self.config.region_down_for);
    }

    /// Whether `node`'s region is fenced (`GET /api/v1/regions`).
    async fn fenced(&self, node: &str) -> Result<bool, String> {
        let url = format!("{node}/api/v1/regions");
        let resp = self
            .http
            .get(&url)
            .timeout(self.config.probe_timeout)
            .send()
            .await
            .map_err(|e| transport_error(&url, &e).to_string())?;
        if !resp.status().is_success() {
            return Err(format!("{url} answered {}", resp.status().as_u16()));
        }
        let body: serde_json::Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
        Ok(body.get("fenced").and_then(serde_json::Value::as_bool).unwrap_or(false))
    }

    /// Fetches region `i`'s ring from the first of its nodes that answers.
    async fn fetch_ring(self: Arc<Self>, i: usize) {
        let (name, nodes) = {
            let st = self.state.lock();
            let r = st.table.get(i);
            (r.name.clone(), r.nodes.clone())
        };
        let mut fetched = None;
        for node in &nodes {
            let url = format!("{node}/api/v1/cluster/ring");
            let answer = match self.http.get(&url).timeout(self.config.probe_timeout).send().await {
                Ok(resp) if resp.status().is_success() => resp.json::<serde_json::Value>().await.ok(),
                _ => None,
            };
            let Some(view) = answer.and_then(|v| RingView::from_json(&v).ok()) else { continue };
            if view.region != name {
                tracing::warn!(configured = %name, answered = %view.region, node = %node,
                    "a node listed under one region belongs to another; its ring is not used");
                continue;
            }
            fetched = Some(view);
            break;
        }
        let mut st = self.state.lock();
        let slot = &mut st.rings[i];
        slot.fetching = false;
        slot.fetched = Some(Instant::now());
        if let Some(view) = fetched {
            ClientMetrics::inc(&self.metrics.ring_fetches);
            slot.ring = Some(Arc::new(view));
            slot.stale = false;
        }
    }
}

/// Probes the regions that are due, until the client is dropped.
async fn background(weak: Weak<Inner>) {
    loop {
        let tick = match weak.upgrade() {
            Some(inner) => BACKGROUND_TICK.min(inner.config.probe_interval),
            None => return,
        };
        tokio::time::sleep(tick).await;
        let Some(inner) = weak.upgrade() else { return };
        let now = Instant::now();
        let due: Vec<usize> = {
            let st = inner.state.lock();
            (0..st.table.regions().len()).filter(|&i| st.table.probe_due(i, now, inner.config.probe_interval)).collect()
        };
        futures::future::join_all(due.into_iter().map(|i| inner.probe_region(i))).await;
    }
}

/// What a register read found.
enum Found {
    Register(Register),
    /// Absent; an `mvr` key that was deleted has a context to write with.
    Absent {
        context: Option<String>,
    },
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("the key is empty".into()));
    }
    Ok(())
}

fn path(keyspace: &str, kind: &str, key: &str) -> String {
    format!("/api/v1/keyspaces/{}/{kind}/{}", encode_segment(keyspace), encode_segment(key))
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The same client (same connections, routing, session and metrics) sending `level` with
    /// its requests.
    pub fn with_consistency(&self, level: Consistency) -> Client {
        Client { inner: Arc::clone(&self.inner), consistency: Some(level) }
    }

    /// The options it was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    fn request(&self, method: Method, path: String, route: Option<(&str, &str)>, safety: Safety) -> Request {
        let mut headers = Vec::new();
        if let Some(h) = self.inner.consistency_header(self.consistency) {
            headers.push(h);
        }
        Request {
            method,
            path,
            route: route.map(|(ks, key)| (ks.to_owned(), key.to_owned())),
            headers,
            body: None,
            safety,
            not_found_ok: false,
        }
    }

    fn read_request(&self, method: Method, path: String, route: (&str, &str)) -> Request {
        let mut req = self.request(method, path, Some(route), Safety::Idempotent);
        if let Some(token) = self.inner.state.lock().session.token() {
            req.headers.push((SESSION_TOKEN_HEADER, token.to_string()));
        }
        req
    }

    fn ack(&self, answer: &Answer, keyspace: &str, key: &str, deleted: bool) -> Result<WriteAck, Error> {
        let (version, acknowledged, consistency) = api::write_answer(&answer.url, &answer.body)?;
        self.inner.state.lock().session.wrote(keyspace, key, version, deleted);
        Ok(WriteAck { version, region: answer.region.clone(), node: answer.node.clone(), acknowledged, consistency })
    }

    async fn read_register_once(&self, keyspace: &str, key: &str) -> Result<(Found, String), Error> {
        let mut req = self.read_request(Method::GET, path(keyspace, "keys", key), (keyspace, key));
        req.not_found_ok = true;
        let answer = self.inner.execute(&req).await?;
        if answer.status == 404 {
            let (_, extra) = api::error_answer(&answer.url, 404, &answer.body);
            return Ok((Found::Absent { context: extra.context }, answer.region));
        }
        Ok((Found::Register(api::register_answer(&answer.url, &answer.body)?), answer.region))
    }

    /// Reads a register until it shows the session's last write of the key (or a later one),
    /// for at most `session_wait`.
    async fn read_register(&self, keyspace: &str, key: &str) -> Result<Found, Error> {
        check_key(key)?;
        let start = Instant::now();
        let mut pause = SESSION_PAUSE_MIN;
        loop {
            let (found, region) = self.read_register_once(keyspace, key).await?;
            let written = self.inner.state.lock().session.written(keyspace, key);
            let seen = match &found {
                Found::Register(r) => r.version(),
                Found::Absent { .. } => None,
            };
            let Some(w) = written.filter(|_| !Session::satisfied(written, seen)) else {
                return Ok(found);
            };
            let waited = start.elapsed();
            if waited >= self.inner.config.session_wait {
                ClientMetrics::inc(&self.inner.metrics.session_failures);
                ClientMetrics::inc(&self.inner.metrics.errors);
                return Err(Error::SessionNotSatisfied { waited, required: w.version, seen, region });
            }
            ClientMetrics::inc(&self.inner.metrics.session_retries);
            tokio::time::sleep(pause.min(self.inner.config.session_wait - waited)).await;
            pause = (pause * 2).min(SESSION_PAUSE_MAX);
        }
    }

    /// Reads an `lww` register: `None` if absent (never written, deleted, expired). A read of a
    /// key this session wrote waits (up to `session_wait`) for the session's write to show,
    /// then fails with [`Error::SessionNotSatisfied`]. On an `mvr` keyspace: `409 wrong_type`
    /// (use [`Client::mvr_get`] or [`Client::get_register`]).
    pub async fn get(&self, keyspace: &str, key: &str) -> Result<Option<Value>, Error> {
        match self.read_register(keyspace, key).await? {
            Found::Register(Register::Lww(v)) => Ok(Some(v)),
            Found::Register(Register::Mvr(_)) => Err(Error::Api {
                status: 409,
                code: "wrong_type".into(),
                message: format!("keyspace {keyspace:?} holds mvr values: use mvr_get"),
                url: path(keyspace, "keys", key),
            }),
            Found::Absent { .. } => Ok(None),
        }
    }

    /// Reads a register of either kind (`lww` or `mvr`), with the session check of
    /// [`Client::get`].
    pub async fn get_register(&self, keyspace: &str, key: &str) -> Result<Option<Register>, Error> {
        match self.read_register(keyspace, key).await? {
            Found::Register(r) => Ok(Some(r)),
            Found::Absent { .. } => Ok(None),
        }
    }

    /// Reads an `mvr` register: its siblings and the context to write with (no siblings if
    /// absent), with the session check of [`Client::get`].
    pub async fn mvr_get(&self, keyspace: &str, key: &str) -> Result<MvrValue, Error> {
        match self.read_register(keyspace, key).await? {
            Found::Register(Register::Mvr(m)) => Ok(m),
            Found::Register(Register::Lww(v)) => Ok(MvrValue {
                siblings: vec![v.bytes],
                context: String::new(),
                version: Some(v.version),
                expires_at: v.expires_at,
            }),
            Found::Absent { context } => Ok(MvrValue {
                siblings: Vec::new(),
                context: context.unwrap_or_default(),
                version: None,
                expires_at: None,
            }),
        }
    }

    /// Writes an `lww` register (replacing its value and its TTL: `None` clears it). Retried
    /// on failure: a second application writes the same bytes again.
    pub async fn put(
        &self,
        keyspace: &str,
        key: &str,
        value: impl Into<Bytes>,
        ttl: Option<Duration>,
    ) -> Result<WriteAck, Error> {
        check_key(key)?;
        let mut req = self.request(Method::PUT, path(keyspace, "keys", key), Some((keyspace, key)), Safety::Idempotent);
        if let Some(ttl) = ttl {
            req.headers.push(("X-TTL", ttl_secs(ttl)?.to_string()));
        }
        req.body = Some((value.into(), "application/octet-stream"));
        let answer = self.inner.execute(&req).await?;
        self.ack(&answer, keyspace, key, false)
    }

    /// Writes a sibling of an `mvr` register, superseding those `context` (from
    /// [`Client::mvr_get`]) covers; without one, a blind write beside every sibling. Retried on
    /// failure: a repeated write leaves the same value (reads return equal siblings once).
    pub async fn mvr_put(
        &self,
        keyspace: &str,
        key: &str,
        value: impl Into<Bytes>,
        context: Option<&str>,
    ) -> Result<WriteAck, Error> {
        check_key(key)?;
        let mut req = self.request(Method::PUT, path(keyspace, "keys", key), Some((keyspace, key)), Safety::Idempotent);
        if let Some(c) = context.filter(|c| !c.is_empty()) {
            req.headers.push(("X-Context", c.to_owned()));
        }
        req.body = Some((value.into(), "application/octet-stream"));
        let answer = self.inner.execute(&req).await?;
        self.ack(&answer, keyspace, key, false)
    }

    /// Deletes a register (a tombstone for `lww`; for `mvr`, supersedes the siblings the
    /// coordinator holds). Retried on failure: deleting twice leaves it deleted.
    pub async fn delete(&self, keyspace: &str, key: &str) -> Result<WriteAck, Error> {
        check_key(key)?;
        let req = self.request(Method::DELETE, path(keyspace, "keys", key), Some((keyspace, key)), Safety::Idempotent);
        let answer = self.inner.execute(&req).await?;
        self.ack(&answer, keyspace, key, true)
    }

    /// Adds `delta` to a counter. **Never retried once it may have been applied**: a timeout, a
    /// lost connection or a 503 after replicas were asked ends in [`Error::Indeterminate`]. It
    /// is sent again (to another node or region) only when it was refused before effect (no
    /// connection, `region_fenced`, `not_enough_nodes`, `unavailable` with `"asked": 0`).
    pub async fn incr(&self, keyspace: &str, key: &str, delta: i64) -> Result<WriteAck, Error> {
        check_key(key)?;
        let mut req =
            self.request(Method::POST, path(keyspace, "counters", key), Some((keyspace, key)), Safety::Increment);
        req.body = Some((Bytes::from(json!({ "delta": delta }).to_string()), "application/json"));
        let answer = self.inner.execute(&req).await?;
        self.ack(&answer, keyspace, key, false)
    }

    /// Reads a counter (`0` if never incremented). Counter reads carry no version, so the
    /// session cannot check them.
    pub async fn counter(&self, keyspace: &str, key: &str) -> Result<i64, Error> {
        check_key(key)?;
        let req = self.read_request(Method::GET, path(keyspace, "counters", key), (keyspace, key));
        let answer = self.inner.execute(&req).await?;
        api::counter_answer(&answer.url, &answer.body)
    }

    /// Adds members to a set. Retried on failure: adding a member twice leaves it a member.
    pub async fn sadd(&self, keyspace: &str, key: &str, members: &[&str]) -> Result<WriteAck, Error> {
        self.set_update(keyspace, key, json!({ "add": members }), members.is_empty()).await
    }

    /// Removes members from a set: the additions `context` (from [`Client::smembers`])
    /// observed, or without one every addition the coordinating replica holds. Retried on
    /// failure: removing twice leaves them removed (a retry may also remove an addition made
    /// between the two attempts, as if the remove had been issued then).
    pub async fn srem(
        &self,
        keyspace: &str,
        key: &str,
        members: &[&str],
        context: Option<&str>,
    ) -> Result<WriteAck, Error> {
        let mut body = json!({ "remove": members });
        if let Some(c) = context.filter(|c| !c.is_empty()) {
            body["context"] = json!(c);
        }
        self.set_update(keyspace, key, body, members.is_empty()).await
    }

    async fn set_update(
        &self,
        keyspace: &str,
        key: &str,
        body: serde_json::Value,
        empty: bool,
    ) -> Result<WriteAck, Error> {
        check_key(key)?;
        if empty {
            return Err(Error::InvalidArgument("give at least one member".into()));
        }
        let mut req =
            self.request(Method::POST, path(keyspace, "sets", key), Some((keyspace, key)), Safety::Idempotent);
        req.body = Some((Bytes::from(body.to_string()), "application/json"));
        let answer = self.inner.execute(&req).await?;
        self.ack(&answer, keyspace, key, false)
    }

    /// Reads a set's members (none if never written, emptied or expired) and its context. Set
    /// reads carry no version, so the session cannot check them.
    pub async fn smembers(&self, keyspace: &str, key: &str) -> Result<SetValue, Error> {
        check_key(key)?;
        let req = self.read_request(Method::GET, path(keyspace, "sets", key), (keyspace, key));
        let answer = self.inner.execute(&req).await?;
        api::set_answer(&answer.url, &answer.body)
    }

    /// The session token: the greatest version of this session's acknowledged writes.
    pub fn session_token(&self) -> Option<Version> {
        self.inner.state.lock().session.token()
    }

    /// The region that served the last successful request.
    pub fn current_region(&self) -> Option<String> {
        let st = self.inner.state.lock();
        st.table.current().map(|i| st.table.get(i).name.clone())
    }

    /// The regions, nearest healthy first (the order requests try them in).
    pub fn regions(&self) -> Vec<RegionInfo> {
        let st = self.inner.state.lock();
        st.table
            .order()
            .into_iter()
            .map(|i| {
                let r = st.table.get(i);
                RegionInfo {
                    name: r.name.clone(),
                    nodes: r.nodes.clone(),
                    rtt: r.rtt,
                    down: r.down.as_ref().map(|d| d.reason.clone()),
                }
            })
            .collect()
    }

    /// Probes every region now (the background task also does, every `probe_interval`).
    pub async fn probe_now(&self) {
        let n = self.inner.state.lock().table.regions().len();
        futures::future::join_all((0..n).map(|i| self.inner.probe_region(i))).await;
    }

    /// The client's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot(self.current_region())
    }

    /// Every change of the region serving requests (the last 1,024), oldest first: failovers
    /// and moves to a nearer region, with when they happened.
    pub fn failover_events(&self) -> Vec<RegionSwitch> {
        self.inner.state.lock().table.switches()
    }
}

/// Whole seconds of a TTL, rounded up (the API takes 1 to 315360000).
fn ttl_secs(ttl: Duration) -> Result<u64, Error> {
    if ttl.is_zero() {
        return Err(Error::InvalidArgument("a TTL must be at least one second".into()));
    }
    Ok(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_seconds() {
        assert_eq!(ttl_secs(Duration::from_secs(3)).expect("ttl"), 3);
        assert_eq!(ttl_secs(Duration::from_millis(1500)).expect("ttl"), 2);
        assert_eq!(ttl_secs(Duration::from_millis(1)).expect("ttl"), 1);
        assert!(ttl_secs(Duration::ZERO).is_err());
    }

    #[test]
    fn paths_encode_keyspace_and_key() {
        assert_eq!(path("default", "keys", "user:1/p"), "/api/v1/keyspaces/default/keys/user%3A1%2Fp");
    }

    #[tokio::test]
    async fn building_refuses_bad_endpoints() {
        let none = Client::builder().build().await.expect_err("no regions");
        assert_eq!(none.code(), "config");
        let empty = Client::builder().region("r", Vec::<String>::new()).build().await.expect_err("no nodes");
        assert!(empty.to_string().contains("lists no nodes"), "{empty}");
        let twice = Client::builder().region("r", ["127.0.0.1:1"]).region("r", ["127.0.0.1:2"]).build().await;
        assert!(twice.is_err_and(|e| e.to_string().contains("twice")));
        let bad = Client::builder().region("r", ["nonsense"]).build().await;
        assert!(bad.is_err_and(|e| e.to_string().contains("HOST:PORT")));
    }
}
