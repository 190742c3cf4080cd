//! `meridian bench --peer redis|etcd`: the same load generator, workloads, key names, value
//! sizes and histograms against a peer store, so figures compare within one run.
//!
//! - **Redis** (RESP2 over TCP, written here: `GET`/`SET`): a pool of connections, one request
//!   in flight per connection; a connection that fails is dropped and reopened on next use.
//! - **etcd** v3 through its JSON gateway: `POST /v3/kv/put` and `POST /v3/kv/range` (a
//!   linearizable read, etcd's default) with base64 keys and values, round-robin over the
//!   members given.
//!
//! Only the register workloads (`a`, `b`, `c`, `write`) run against peers: they have no
//! counters or sets with Meridian's semantics.

use std::sync::atomic::{AtomicUsize, Ordering};

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// A peer store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerKind {
    /// Redis (RESP2).
    Redis,
    /// etcd v3 (JSON gateway).
    Etcd,
}

impl PeerKind {
    /// The name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerKind::Redis => "redis",
            PeerKind::Etcd => "etcd",
        }
    }
}

/// An operation's failure against a peer, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerError {
    /// `timeout`, `connection`, `protocol` or `server`.
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

impl PeerError {
    fn new(code: &'static str, message: impl ToString) -> PeerError {
        PeerError { code, message: message.to_string() }
    }
}

/// A connected peer.
#[derive(Debug)]
pub enum Peer {
    /// Redis connections.
    Redis(Redis),
    /// etcd members.
    Etcd(Etcd),
}

impl Peer {
    /// Connects to `kind` at `addrs` with up to `pool` connections (Redis) and `timeout` per
    /// request. Errors if the first member does not answer.
    pub async fn connect(kind: PeerKind, addrs: &[String], pool: usize, timeout: Duration) -> Result<Peer, PeerError> {
        if addrs.is_empty() {
            return Err(PeerError::new("usage", "--peer needs --peer-addr HOST:PORT"));
        }
        let peer = match kind {
            PeerKind::Redis => Peer::Redis(Redis::new(addrs[0].clone(), pool.max(1), timeout)),
            PeerKind::Etcd => Peer::Etcd(Etcd::new(addrs, timeout)?),
        };
        // One read to check the address before the measured phase.
        peer.get(b"meridian-bench-probe").await?;
        Ok(peer)
    }

    /// Reads `key`; `Ok(false)` if it is absent.
    pub async fn get(&self, key: &[u8]) -> Result<bool, PeerError> {
        match self {
            Peer::Redis(r) => r.get(key).await,
            Peer::Etcd(e) => e.get(key).await,
        }
    }

    /// Writes `value` at `key`.
    pub async fn put(&self, key: &[u8], value: &Bytes) -> Result<(), PeerError> {
        match self {
            Peer::Redis(r) => r.set(key, value).await,
            Peer::Etcd(e) => e.put(key, value).await,
        }
    }
}

/// A pool of Redis connections.
#[derive(Debug)]
pub struct Redis {
    addr: String,
    conns: Vec<tokio::sync::Mutex<Option<BufStream<TcpStream>>>>,
    next: AtomicUsize,
    timeout: Duration,
}

/// One RESP2 reply, as far as `GET` and `SET` need.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Bulk(Option<Vec<u8>>),
    Error(String),
    Integer(i64),
}

/// A command as a RESP2 array of bulk strings.
fn encode_command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply (no nested arrays: `GET` and `SET` never answer one).
async fn read_reply<R: AsyncBufReadExt + AsyncReadExt + Unpin>(r: &mut R) -> Result<Reply, PeerError> {
    let mut line = String::new();
    let n = r.read_line(&mut line).await.map_err(|e| PeerError::new("connection", e))?;
    if n == 0 {
        return Err(PeerError::new("connection", "connection closed"));
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (tag, rest) = line.split_at(line.len().min(1));
    match tag {
        "+" => Ok(Reply::Simple(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => {
            rest.parse().map(Reply::Integer).map_err(|_| PeerError::new("protocol", format!("bad integer {rest:?}")))
        }
        "$" => {
            let len: i64 = rest.parse().map_err(|_| PeerError::new("protocol", format!("bad length {rest:?}")))?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let mut buf = vec![0u8; len as usize + 2];
            r.read_exact(&mut buf).await.map_err(|e| PeerError::new("connection", e))?;
            buf.truncate(len as usize);
            Ok(Reply::Bulk(Some(buf)))
        }
        _ => Err(PeerError::new("protocol", format!("unexpected reply {line:?}"))),
    }
}

impl Redis {
    fn new(addr: String, pool: usize, timeout: Duration) -> Redis {
        Redis {
            addr,
            conns: (0..pool).map(|_| tokio::sync::Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            timeout,
        }
    }

    async fn call(&self, parts: &[&[u8]]) -> Result<Reply, PeerError> {
        let slot = &self.conns[self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len()];
        let mut conn = slot.lock().await;
        let cmd = encode_command(parts);
        let res = tokio::time::timeout(self.timeout, async {
            if conn.is_none() {
                let s = TcpStream::connect(&self.addr).await.map_err(|e| PeerError::new("connection", e))?;
                let _ = s.set_nodelay(true);
                *conn = Some(BufStream::new(s));
            }
            let Some(c) = conn.as_mut() else { return Err(PeerError::new("connection", "not connected")) };
            c.write_all(&cmd).await.map_err(|e| PeerError::new("connection", e))?;
            c.flush().await.map_err(|e| PeerError::new("connection", e))?;
            read_reply(c).await
        })
        .await
        .unwrap_or_else(|_| Err(PeerError::new("timeout", format!("no answer within {:?}", self.timeout))));
        if res.is_err() {
            // The stream may hold half a reply: never reuse it.
            *conn = None;
        }
        match res? {
            Reply::Error(e) => Err(PeerError::new("server", e)),
            other => Ok(other),
        }
    }

    async fn get(&self, key: &[u8]) -> Result<bool, PeerError> {
        match self.call(&[b"GET", key]).await? {
            Reply::Bulk(v) => Ok(v.is_some()),
            other => Err(PeerError::new("protocol", format!("GET answered {other:?}"))),
        }
    }

    async fn set(&self, key: &[u8], value: &[u8]) -> Result<(), PeerError> {
        match self.call(&[b"SET", key, value]).await? {
            Reply::Simple(s) if s == "OK" => Ok(()),
            other => Err(PeerError::new("protocol", format!("SET answered {other:?}"))),
        }
    }
}

/// etcd members behind their JSON gateways.
#[derive(Debug)]
pub struct Etcd {
    http: reqwest::Client,
    urls: Vec<String>,
    next: AtomicUsize,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

impl Etcd {
    fn new(addrs: &[String], timeout: Duration) -> Result<Etcd, PeerError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| PeerError::new("usage", e))?;
        let urls =
            addrs.iter().map(|a| if a.starts_with("http") { a.clone() } else { format!("http://{a}") }).collect();
        Ok(Etcd { http, urls, next: AtomicUsize::new(0) })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, PeerError> {
        let base = &self.urls[self.next.fetch_add(1, Ordering::Relaxed) % self.urls.len()];
        let resp = self
            .http
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .map_err(|e| PeerError::new(if e.is_timeout() { "timeout" } else { "connection" }, e))?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| PeerError::new("protocol", e))?;
        if !status.is_success() {
            return Err(PeerError::new("server", format!("HTTP {}: {v}", status.as_u16())));
        }
        Ok(v)
    }

    async fn get(&self, key: &[u8]) -> Result<bool, PeerError> {
        let v = self.post("/v3/kv/range", json!({"key": b64(key)})).await?;
        Ok(v["kvs"].as_array().is_some_and(|a| !a.is_empty()))
    }

    async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), PeerError> {
        self.post("/v3/kv/put", json!({"key": b64(key), "value": b64(value)})).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_resp_arrays_of_bulk_strings() {
        assert_eq!(encode_command(&[b"SET", b"k", b"v1"]), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n".to_vec());
    }

    #[tokio::test]
    async fn replies_parse_and_garbage_is_an_error() {
        async fn parse(bytes: &[u8]) -> Result<Reply, PeerError> {
            read_reply(&mut tokio::io::BufReader::new(bytes)).await
        }
        assert_eq!(parse(b"+OK\r\n").await, Ok(Reply::Simple("OK".into())));
        assert_eq!(parse(b"$-1\r\n").await, Ok(Reply::Bulk(None)));
        assert_eq!(parse(b"$3\r\nabc\r\n").await, Ok(Reply::Bulk(Some(b"abc".to_vec()))));
        assert_eq!(parse(b":12\r\n").await, Ok(Reply::Integer(12)));
        assert_eq!(parse(b"-ERR wrong\r\n").await, Ok(Reply::Error("ERR wrong".into())));
        assert_eq!(parse(b"?what\r\n").await.map_err(|e| e.code), Err("protocol"));
        assert_eq!(parse(b"$5\r\nab").await.map_err(|e| e.code), Err("connection"));
        assert_eq!(parse(b"").await.map_err(|e| e.code), Err("connection"));
    }
}
