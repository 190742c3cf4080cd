//! What a [`Client`](crate::Client) is built from: the regions and their nodes
//! ([`RegionEndpoints`], or an endpoints file as `meridian dev` writes it), and the options
//! ([`ClientConfig`]: timeouts, the [`RetryPolicy`], the default [`Consistency`], probing,
//! token-aware routing, the session bounds).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// A consistency level of the local region (`X-Consistency-Level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consistency {
    /// One replica.
    One,
    /// A majority of the key's replicas in the region.
    Quorum,
    /// Every replica of the key in the region.
    All,
}

impl Consistency {
    /// The header value (`ONE`, `QUORUM`, `ALL`).
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::One => "ONE",
            Consistency::Quorum => "QUORUM",
            Consistency::All => "ALL",
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Consistency {
    type Err = String;

    /// `ONE`, `QUORUM` or `ALL`, case-insensitive.
    fn from_str(s: &str) -> Result<Consistency, String> {
        match s.to_ascii_uppercase().as_str() {
            "ONE" => Ok(Consistency::One),
            "QUORUM" => Ok(Consistency::Quorum),
            "ALL" => Ok(Consistency::All),
            _ => Err(format!("{s:?} is not a consistency level (ONE, QUORUM or ALL)")),
        }
    }
}

/// How failed attempts are retried: at most `max_attempts` attempts per operation, the `k`-th
/// retry after a pause drawn uniformly from `[d/2, d]` with `d = min(max_backoff,
/// initial_backoff * 2^k)` (exponential backoff with "equal jitter": never zero, never in step
/// with other clients).
///
/// Which failures are retried at all depends on the operation (see `docs/client.md`): a
/// counter increment whose outcome is unknown is never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per operation, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The pause before the first retry (upper bound).
    pub initial_backoff: Duration,
    /// The largest pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy { max_attempts: 4, initial_backoff: Duration::from_millis(25), max_backoff: Duration::from_secs(1) }
    }
}

impl RetryPolicy {
    /// No retries: every operation is attempted once.
    pub fn none() -> RetryPolicy {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// The pause before retry number `retry` (0 for the first retry), for `unit` drawn
    /// uniformly from `[0, 1)`.
    pub fn backoff(&self, retry: u32, unit: f64) -> Duration {
        let factor = 2f64.powi(retry.min(30) as i32);
        let ceiling = self.initial_backoff.mul_f64(factor).min(self.max_backoff);
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        ceiling.mul_f64(0.5 + 0.5 * unit)
    }
}

/// The options of a client. [`ClientConfig::default`] suits clients on the same network as the
/// regions; every field can be set through the [`ClientBuilder`](crate::ClientBuilder).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// Time allowed for one HTTP request (connection, request and answer).
    pub request_timeout: Duration,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// How failed attempts are retried.
    pub retry: RetryPolicy,
    /// The level sent with every data request (`None`: the keyspace's or the cluster's default).
    pub consistency: Option<Consistency>,
    /// How often every region's RTT is measured (`GET /healthz` on one node, median of 3).
    pub probe_interval: Duration,
    /// Time allowed for one probe request.
    pub probe_timeout: Duration,
    /// RTTs within this much of the nearest region's count as equally near; the configured
    /// order of the regions breaks the tie (so the choice does not follow probe jitter).
    pub rtt_tolerance: Duration,
    /// How long a region that failed is avoided before it is probed again.
    pub region_down_for: Duration,
    /// How long a node that refused a connection is avoided inside its region.
    pub node_down_for: Duration,
    /// Send each request to the key's first live replica, from the region's ring.
    pub token_aware: bool,
    /// Age after which a region's ring is fetched again (it is also fetched after errors).
    pub ring_refresh: Duration,
    /// How long a read waits for a region to show the session's own write before
    /// [`Error::SessionNotSatisfied`].
    pub session_wait: Duration,
    /// How many keys the session remembers its last write version of (least recently written
    /// forgotten first).
    pub session_keys: usize,
    /// Addresses to use instead of those the nodes publish in their ring (`published HOST:PORT`
    /// → `reachable HOST:PORT`), for clients behind a NAT or a proxy.
    pub address_map: HashMap<String, String>,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            request_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            retry: RetryPolicy::default(),
            consistency: None,
            probe_interval: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(1),
            rtt_tolerance: Duration::from_millis(2),
            region_down_for: Duration::from_secs(5),
            node_down_for: Duration::from_secs(2),
            token_aware: true,
            ring_refresh: Duration::from_secs(5),
            session_wait: Duration::from_secs(2),
            session_keys: 10_000,
            address_map: HashMap::new(),
        }
    }
}

impl ClientConfig {
    /// Refuses settings the client cannot work with.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("probe_interval", self.probe_interval),
            ("probe_timeout", self.probe_timeout),
            ("ring_refresh", self.ring_refresh),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, d)| d.is_zero()) {
            return Err(Error::Config(format!("{name} must be greater than zero")));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::Config("retry.max_attempts must be at least 1".into()));
        }
        if self.retry.initial_backoff > self.retry.max_backoff {
            return Err(Error::Config("retry.initial_backoff must not exceed retry.max_backoff".into()));
        }
        if self.session_keys == 0 {
            return Err(Error::Config("session_keys must be at least 1".into()));
        }
        for (from, to) in &self.address_map {
            base_url(from)?;
            base_url(to)?;
        }
        Ok(())
    }
}

/// One region and the HTTP addresses (`HOST:PORT`) of some of its nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionEndpoints {
    /// The region's name.
    pub name: String,
    /// HTTP addresses of its nodes (`HOST:PORT`, or `http://HOST:PORT`).
    pub nodes: Vec<String>,
}

impl RegionEndpoints {
    /// A region and its nodes.
    pub fn new(name: impl Into<String>, nodes: impl IntoIterator<Item = impl Into<String>>) -> RegionEndpoints {
        RegionEndpoints { name: name.into(), nodes: nodes.into_iter().map(Into::into).collect() }
    }
}

/// An endpoints file as `meridian dev` writes it:
/// `{"regions": [{"name", "nodes": [{"id", "http", "rpc", "wan", "pid", "data_dir"}]}], "token"}`
/// (only `name`, `id`, `http` and `token` are read; other fields are ignored).
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct EndpointsFile {
    /// The regions, in the file's order.
    pub regions: Vec<EndpointsRegion>,
    /// A bearer token for the API (`meridian dev` writes one with every scope), if the file
    /// holds one.
    #[serde(default)]
    pub token: Option<String>,
}

impl fmt::Debug for EndpointsFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointsFile")
            .field("regions", &self.regions)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A region of an [`EndpointsFile`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EndpointsRegion {
    /// The region's name.
    pub name: String,
    /// Its nodes.
    pub nodes: Vec<EndpointsNode>,
}

/// A node of an [`EndpointsFile`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EndpointsNode {
    /// The node's name.
    pub id: String,
    /// Its HTTP address.
    pub http: String,
}

impl EndpointsFile {
    /// Parses the JSON text of an endpoints file.
    pub fn parse(text: &str) -> Result<EndpointsFile, Error> {
        serde_json::from_str(text)
            .map_err(|e| Error::Config(format!("not an endpoints file (as `meridian dev` writes): {e}")))
    }

    /// Reads and parses an endpoints file.
    pub fn read(path: &Path) -> Result<EndpointsFile, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read the endpoints file {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// The regions as a client takes them (nodes without an HTTP address left out).
    pub fn to_regions(&self) -> Vec<RegionEndpoints> {
        self.regions
            .iter()
            .map(|r| RegionEndpoints {
                name: r.name.clone(),
                nodes: r.nodes.iter().filter(|n| !n.http.is_empty()).map(|n| n.http.clone()).collect(),
            })
            .collect()
    }
}

/// `http://HOST:PORT` from `HOST:PORT` (an `http://` prefix and a trailing `/` are accepted),
/// or `https://HOST:PORT` from `https://HOST:PORT` (an API served over TLS).
pub fn base_url(node: &str) -> Result<String, Error> {
    let https = node.trim().starts_with("https://");
    base_url_as(node, https)
}

/// Whether `node` names its scheme, and which: `Some(true)` for `https://`, `Some(false)` for
/// `http://`, `None` for a bare `HOST:PORT`.
pub(crate) fn explicit_https(node: &str) -> Option<bool> {
    let text = node.trim();
    if text.starts_with("https://") {
        Some(true)
    } else if text.starts_with("http://") {
        Some(false)
    } else {
        None
    }
}

/// The base URL of `node` (`HOST:PORT`, with or without a scheme) with the scheme `https`
/// chooses: a client speaks one scheme to every node, including the addresses the nodes
/// publish in their ring (bare `HOST:PORT`).
pub(crate) fn base_url_as(node: &str, https: bool) -> Result<String, Error> {
    let text = node.trim().trim_end_matches('/');
    let addr = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://")).unwrap_or(text);
    let valid = match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && !addr.contains('/') && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    };
    if !valid {
        return Err(Error::Config(format!("{node:?} is not HOST:PORT (a node's HTTP address)")));
    }
    Ok(format!("{}://{addr}", if https { "https" } else { "http" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_parses_case_insensitively() {
        assert_eq!("quorum".parse::<Consistency>(), Ok(Consistency::Quorum));
        assert_eq!("ONE".parse::<Consistency>(), Ok(Consistency::One));
        assert_eq!("All".parse::<Consistency>(), Ok(Consistency::All));
        assert!("two".parse::<Consistency>().is_err());
        assert_eq!(Consistency::Quorum.to_string(), "QUORUM");
    }

    #[test]
    fn backoff_grows_is_capped_and_never_zero() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        assert_eq!(p.backoff(0, 0.0), Duration::from_millis(50));
        assert_eq!(p.backoff(0, 1.0), Duration::from_millis(100));
        assert_eq!(p.backoff(1, 1.0), Duration::from_millis(200));
        assert_eq!(p.backoff(2, 0.0), Duration::from_millis(200));
        assert_eq!(p.backoff(3, 1.0), Duration::from_millis(500));
        assert_eq!(p.backoff(u32::MAX, 0.5), Duration::from_millis(375));
        assert_eq!(p.backoff(0, f64::NAN), Duration::from_millis(50));
    }

    #[test]
    fn defaults_are_valid_and_bad_settings_are_refused() {
        ClientConfig::default().validate().expect("defaults");
        let zero = ClientConfig { request_timeout: Duration::ZERO, ..ClientConfig::default() };
        assert!(zero.validate().is_err_and(|e| e.to_string().contains("request_timeout")));
        let mut no_attempts = ClientConfig::default();
        no_attempts.retry.max_attempts = 0;
        assert!(no_attempts.validate().is_err());
        let mut map = ClientConfig::default();
        map.address_map.insert("10.0.0.1:80".into(), "nonsense".into());
        assert!(map.validate().is_err());
    }

    #[test]
    fn endpoints_files_give_regions_and_nodes() {
        let text = r#"{"regions": [
            {"name": "us-east", "nodes": [
                {"id": "node1", "http": "127.0.0.1:8081", "rpc": "127.0.0.1:7001", "wan": null, "pid": 1,
                 "data_dir": "/d"},
                {"id": "node2", "http": "", "rpc": "127.0.0.1:7002", "pid": 2, "data_dir": "/d"}]},
            {"name": "eu-west", "nodes": [{"id": "node1", "http": "127.0.0.1:9081"}]}]}"#;
        let file = EndpointsFile::parse(text).expect("parse");
        assert_eq!(
            file.to_regions(),
            vec![
                RegionEndpoints::new("us-east", ["127.0.0.1:8081"]),
                RegionEndpoints::new("eu-west", ["127.0.0.1:9081"])
            ]
        );
        assert!(EndpointsFile::parse("{\"nodes\": []}").is_err());
        assert_eq!(file.token, None);
        let with_token = EndpointsFile::parse(r#"{"regions": [], "token": "mrd_x"}"#).expect("parse");
        assert_eq!(with_token.token.as_deref(), Some("mrd_x"));
        assert!(!format!("{with_token:?}").contains("mrd_x"), "the token is not in Debug output");
        assert!(EndpointsFile::read(Path::new("/nonexistent/endpoints.json")).is_err());
    }

    #[test]
    fn base_url_takes_host_port_with_or_without_the_scheme() {
        assert_eq!(base_url("127.0.0.1:8081").expect("ok"), "http://127.0.0.1:8081");
        assert_eq!(base_url("http://localhost:8081/").expect("ok"), "http://localhost:8081");
        assert_eq!(base_url("[::1]:8081").expect("ok"), "http://[::1]:8081");
        assert_eq!(base_url("https://h:1/").expect("ok"), "https://h:1");
        assert_eq!(base_url_as("h:1", true).expect("ok"), "https://h:1");
        assert_eq!(base_url_as("http://h:1", true).expect("ok"), "https://h:1");
        assert_eq!(explicit_https("https://h:1"), Some(true));
        assert_eq!(explicit_https("h:1"), None);
        for bad in ["", "localhost", ":8081", "host:", "host:0", "host:70000", "host:80/x", "https://h:0"] {
            assert!(base_url(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
