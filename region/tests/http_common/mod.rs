//! Shared helpers of the HTTP API tests: a fake [`KvService`] that is a real single-replica
//! store, and a small client that drives the router with `tower::ServiceExt::oneshot` (no
//! sockets).

#![allow(dead_code)] // each test binary uses a different part of this module

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use futures::future::BoxFuture;
use meridian_config::ConsistencyLevel;
use meridian_crdt::{HlcClock, Limits, NodeId, Op, OpContext, ReadValue, ValueKind};
use meridian_local::{MemoryEngine, NodeStore, Store};
use meridian_region::service::{
    version_of, ClusterStatus, DigestStatus, Health, HintQueue, HintsStatus, IngressLimits, KeyspaceInfo, KvService,
    NodeStatus, ReadOutcome, RegionDigest, RegionLink, RegionsStatus, RepairStatus, RingNode, RingStatus,
    StreamingStatus, WriteOutcome, WriteRequest,
};
use meridian_region::RegionError;
use serde_json::Value;
use tower::ServiceExt;

/// Start of simulated wall-clock time (2023-11-14).
pub const T0: u64 = 1_700_000_000_000;

/// The fake node's id.
pub const NODE: NodeId = NodeId(0x2a);

/// The node that "fails" in `unavailable` answers.
pub const FAILED_NODE: NodeId = NodeId(0xbeef);

/// A single-replica [`KvService`] over a real [`NodeStore`] on the in-memory engine, with a
/// hand-driven wall clock, switches for unavailability and readiness, and call counters.
#[derive(Debug)]
pub struct FakeService {
    store: NodeStore<MemoryEngine>,
    clock: Mutex<HlcClock>,
    now: AtomicU64,
    keyspaces: Mutex<BTreeMap<String, KeyspaceInfo>>,
    unavailable: AtomicBool,
    ready: AtomicBool,
    write_calls: AtomicUsize,
    read_calls: AtomicUsize,
    last_write: Mutex<Option<WriteRequest>>,
    last_read_level: Mutex<Option<Option<ConsistencyLevel>>>,
    limits: IngressLimits,
    admin: Mutex<AdminState>,
    /// The region fence and the peer regions, for the regions endpoints.
    fenced: AtomicBool,
    sync_requests: Mutex<Vec<Option<String>>>,
}

/// The fake's administration state: members, hints, repair, streaming, and what was asked.
#[derive(Debug, Clone)]
struct AdminState {
    /// `(name, status)` of every member, sorted by name; `node-a` is this node.
    members: Vec<(String, String)>,
    /// Pending hint queues.
    hint_queues: Vec<HintQueue>,
    /// The current or last repair pass.
    repair: RepairStatus,
    /// This node's streaming.
    streaming: StreamingStatus,
    /// Every range `start_repair` was called with, in order.
    repair_calls: Vec<Option<(u64, u64)>>,
    /// Every name `decommission` was called with, in order.
    decommission_calls: Vec<String>,
    /// Calls to `hints`.
    hints_calls: usize,
    /// Calls to `digest`.
    digest_calls: usize,
    /// The error every administration call fails with, if set.
    fail_with: Option<RegionError>,
}

impl AdminState {
    fn new() -> AdminState {
        AdminState {
            members: ["node-a", "node-b", "node-c"].iter().map(|n| ((*n).to_owned(), "healthy".to_owned())).collect(),
            hint_queues: Vec::new(),
            repair: RepairStatus { state: "idle".into(), ..RepairStatus::default() },
            streaming: StreamingStatus { state: "idle".into(), ..StreamingStatus::default() },
            repair_calls: Vec::new(),
            decommission_calls: Vec::new(),
            hints_calls: 0,
            digest_calls: 0,
            fail_with: None,
        }
    }
}

/// The fake's replication factor (`decommission` refuses to go below it).
pub const FAKE_RF: usize = 1;

/// The fake's HTTP address of the member at `index` (`node-a` 8081, `node-b` 8082, ...).
pub fn member_http(index: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8081 + index as u16))
}

fn config_keyspace(name: &str, kind: ValueKind) -> (String, KeyspaceInfo) {
    (name.to_owned(), KeyspaceInfo { name: name.to_owned(), kind, consistency: None, source: "config" })
}

impl FakeService {
    /// The full syncs asked for, in order (`None`: every peer).
    pub fn sync_requests(&self) -> Vec<Option<String>> {
        self.sync_requests.lock().expect("lock").clone()
    }

    /// A service with the default limits and the keyspaces `default` (lww), `counters`
    /// (counter), `sets` (set) and `carts` (mvr).
    pub fn new() -> FakeService {
        FakeService::with_limits(IngressLimits::default())
    }

    /// The same with other ingress limits.
    pub fn with_limits(limits: IngressLimits) -> FakeService {
        let keyspaces = BTreeMap::from([
            config_keyspace("default", ValueKind::Lww),
            config_keyspace("counters", ValueKind::Counter),
            config_keyspace("sets", ValueKind::Set),
            config_keyspace("carts", ValueKind::Mvr),
        ]);
        FakeService {
            store: NodeStore::open(MemoryEngine::new()).expect("open the in-memory store"),
            clock: Mutex::new(HlcClock::new(NODE, 500)),
            now: AtomicU64::new(T0),
            keyspaces: Mutex::new(keyspaces),
            unavailable: AtomicBool::new(false),
            ready: AtomicBool::new(true),
            write_calls: AtomicUsize::new(0),
            read_calls: AtomicUsize::new(0),
            last_write: Mutex::new(None),
            last_read_level: Mutex::new(None),
            limits,
            admin: Mutex::new(AdminState::new()),
            fenced: AtomicBool::new(false),
            sync_requests: Mutex::new(Vec::new()),
        }
    }

    /// Sets the pending hint queues `hints` reports.
    pub fn set_hint_queues(&self, queues: Vec<HintQueue>) {
        self.admin.lock().expect("lock").hint_queues = queues;
    }

    /// Makes every administration call (`hints`, `start_repair`, `decommission`, `digest`)
    /// fail with `err` (or stop failing).
    pub fn fail_admin(&self, err: Option<RegionError>) {
        self.admin.lock().expect("lock").fail_with = err;
    }

    /// Every range `start_repair` was called with, in order.
    pub fn repair_calls(&self) -> Vec<Option<(u64, u64)>> {
        self.admin.lock().expect("lock").repair_calls.clone()
    }

    /// Ends the running repair pass: `done` with `keys` repaired, or `failed` with `error`.
    pub fn finish_repair(&self, keys: u64, error: Option<&str>) {
        let now = self.now_ms();
        let mut admin = self.admin.lock().expect("lock");
        let r = &mut admin.repair;
        r.peers_done = r.peers_total - usize::from(error.is_some());
        r.peers_failed = usize::from(error.is_some());
        r.keys_repaired = keys;
        r.bytes_transferred = keys * 100;
        r.finished_ms = Some(now);
        match error {
            Some(e) => {
                r.state = "failed".into();
                r.error = Some(e.to_owned());
            }
            None => {
                r.state = "done".into();
                r.last_complete_ms = r.started_ms;
            }
        }
    }

    /// Every name `decommission` was called with, in order.
    pub fn decommission_calls(&self) -> Vec<String> {
        self.admin.lock().expect("lock").decommission_calls.clone()
    }

    /// Calls to `hints` and to `digest`.
    pub fn hints_and_digest_calls(&self) -> (usize, usize) {
        let admin = self.admin.lock().expect("lock");
        (admin.hints_calls, admin.digest_calls)
    }

    fn admin_error(admin: &AdminState) -> Result<(), RegionError> {
        match &admin.fail_with {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn do_start_repair(&self, range: Option<(u64, u64)>) -> Result<RepairStatus, RegionError> {
        let now = self.now_ms();
        let mut admin = self.admin.lock().expect("lock");
        admin.repair_calls.push(range);
        Self::admin_error(&admin)?;
        if admin.repair.state != "running" {
            let last_complete_ms = admin.repair.last_complete_ms;
            admin.repair = RepairStatus {
                state: "running".into(),
                trigger: Some("api".into()),
                range,
                peers_total: admin.members.len() - 1,
                started_ms: Some(now),
                last_complete_ms,
                ..RepairStatus::default()
            };
        }
        Ok(admin.repair.clone())
    }

    fn do_decommission(&self, name: String) -> Result<StreamingStatus, RegionError> {
        let now = self.now_ms();
        let mut admin = self.admin.lock().expect("lock");
        admin.decommission_calls.push(name.clone());
        Self::admin_error(&admin)?;
        let staying = admin.members.iter().filter(|(_, s)| s != "leaving").count();
        let Some(member) = admin.members.iter_mut().find(|(n, _)| *n == name) else {
            return Err(RegionError::InvalidRequest(format!("unknown node {name:?}")));
        };
        if member.1 == "leaving" {
            return Err(RegionError::InvalidRequest(format!("node {name:?} is already leaving")));
        }
        if staying <= FAKE_RF {
            return Err(RegionError::InvalidRequest(format!(
                "decommissioning {name:?} would leave {} nodes, fewer than the replication factor {FAKE_RF}",
                staying - 1
            )));
        }
        member.1 = "leaving".into();
        let status =
            StreamingStatus { state: "leaving".into(), ranges_total: 8, started_ms: Some(now), ..Default::default() };
        if name == "node-a" {
            admin.streaming = status.clone();
        }
        Ok(status)
    }

    /// Moves the wall clock forward.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }

    /// Makes every read and write fail with [`RegionError::Unavailable`] (or stop failing).
    pub fn set_unavailable(&self, on: bool) {
        self.unavailable.store(on, Ordering::SeqCst);
    }

    /// Makes the node ready or not (`/healthz`).
    pub fn set_ready(&self, on: bool) {
        self.ready.store(on, Ordering::SeqCst);
    }

    /// How many writes reached the service (successful or not).
    pub fn write_calls(&self) -> usize {
        self.write_calls.load(Ordering::SeqCst)
    }

    /// How many reads reached the service.
    pub fn read_calls(&self) -> usize {
        self.read_calls.load(Ordering::SeqCst)
    }

    /// The last write request the service received.
    pub fn last_write(&self) -> Option<WriteRequest> {
        self.last_write.lock().expect("lock").clone()
    }

    /// The level the last read asked for.
    pub fn last_read_level(&self) -> Option<Option<ConsistencyLevel>> {
        *self.last_read_level.lock().expect("lock")
    }

    /// What the store holds for `key`, read directly (bypassing HTTP).
    pub fn stored(&self, keyspace: &str, key: &[u8]) -> ReadValue {
        match self.store.get(keyspace, key).expect("store get") {
            Some(r) => r.read(self.now_ms()),
            None => ReadValue::Absent,
        }
    }

    /// Applies a write directly (bypassing HTTP), e.g. to plant data the API cannot write.
    pub fn apply_direct(&self, keyspace: &str, key: &[u8], op: Op) {
        let kind = self.keyspace(keyspace).expect("keyspace").kind;
        let now = self.now_ms();
        let ts = self.clock.lock().expect("lock").tick(now);
        let ctx = OpContext { actor: NODE, ts, now_ms: now };
        self.store.apply(keyspace, key, kind, &op, &ctx, &Limits::default()).expect("apply");
    }

    fn unavailable_error(&self, level: Option<ConsistencyLevel>) -> Result<(), RegionError> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(RegionError::Unavailable {
                level: level.unwrap_or(ConsistencyLevel::Quorum),
                required: 2,
                answered: 1,
                asked: 3,
                failures: vec![(FAILED_NODE, "timed out after 2000 ms".into())],
            });
        }
        Ok(())
    }

    fn check_key(&self, key: &[u8]) -> Result<(), RegionError> {
        if key.is_empty() {
            return Err(RegionError::InvalidRequest("empty key".into()));
        }
        if key.len() > self.limits.max_key_bytes {
            return Err(RegionError::KeyTooLarge { len: key.len(), max: self.limits.max_key_bytes });
        }
        Ok(())
    }

    fn do_write(&self, req: WriteRequest) -> Result<WriteOutcome, RegionError> {
        self.write_calls.fetch_add(1, Ordering::SeqCst);
        *self.last_write.lock().expect("lock") = Some(req.clone());
        self.unavailable_error(req.consistency)?;
        let info = self.keyspace(&req.keyspace)?;
        if let Some(kind) = req.op.kind() {
            if kind != info.kind {
                return Err(RegionError::WrongType {
                    keyspace: req.keyspace.clone(),
                    actual: info.kind,
                    endpoint: kind,
                });
            }
        }
        self.check_key(&req.key)?;
        let now = self.now_ms();
        if let Some(expected) = &req.if_match {
            if expected.is_empty() {
                return Err(RegionError::InvalidRequest("empty If-Match version".into()));
            }
            let current = self.store.get(&req.keyspace, &req.key)?.filter(|r| r.is_live(now)).map(|r| version_of(&r));
            if current.as_deref() != Some(expected.as_str()) {
                return Err(RegionError::VersionConflict { expected: expected.clone(), current });
            }
        }
        let ts = self.clock.lock().expect("lock").tick(now);
        let ctx = OpContext { actor: NODE, ts, now_ms: now };
        let out = self.store.apply(&req.keyspace, &req.key, info.kind, &req.op, &ctx, &Limits::default())?;
        Ok(WriteOutcome {
            kind: info.kind,
            record: out.record,
            ts,
            consistency: req.consistency.or(info.consistency).unwrap_or(ConsistencyLevel::Quorum),
            acknowledged: 1,
            replicas: 1,
        })
    }

    fn do_read(&self, keyspace: &str, key: &[u8], level: Option<ConsistencyLevel>) -> Result<ReadOutcome, RegionError> {
        self.read_calls.fetch_add(1, Ordering::SeqCst);
        *self.last_read_level.lock().expect("lock") = Some(level);
        self.unavailable_error(level)?;
        let info = self.keyspace(keyspace)?;
        self.check_key(key)?;
        let record = self.store.get(keyspace, key)?;
        let value = record.as_ref().map_or(ReadValue::Absent, |r| r.read(self.now_ms()));
        Ok(ReadOutcome {
            kind: info.kind,
            record,
            value,
            consistency: level.or(info.consistency).unwrap_or(ConsistencyLevel::Quorum),
            responders: 1,
        })
    }
}

impl Default for FakeService {
    fn default() -> Self {
        FakeService::new()
    }
}

impl KvService for FakeService {
    fn write(&self, req: WriteRequest) -> BoxFuture<'_, Result<WriteOutcome, RegionError>> {
        Box::pin(async move { self.do_write(req) })
    }

    fn read<'a>(
        &'a self,
        keyspace: &'a str,
        key: &'a [u8],
        consistency: Option<ConsistencyLevel>,
    ) -> BoxFuture<'a, Result<ReadOutcome, RegionError>> {
        Box::pin(async move { self.do_read(keyspace, key, consistency) })
    }

    fn keyspace(&self, name: &str) -> Result<KeyspaceInfo, RegionError> {
        self.keyspaces
            .lock()
            .expect("lock")
            .get(name)
            .cloned()
            .ok_or_else(|| RegionError::UnknownKeyspace(name.to_owned()))
    }

    fn keyspaces(&self) -> Vec<KeyspaceInfo> {
        self.keyspaces.lock().expect("lock").values().cloned().collect()
    }

    fn create_keyspace(&self, name: String, kind: ValueKind) -> BoxFuture<'_, Result<KeyspaceInfo, RegionError>> {
        Box::pin(async move {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if !valid {
                return Err(RegionError::InvalidRequest(format!("bad keyspace name {name:?}")));
            }
            let mut all = self.keyspaces.lock().expect("lock");
            match all.get(&name) {
                Some(info) if info.kind == kind => Ok(info.clone()),
                Some(info) => Err(RegionError::KeyspaceExists { name, existing: info.kind, requested: kind }),
                None => {
                    let info = KeyspaceInfo { name: name.clone(), kind, consistency: None, source: "api" };
                    all.insert(name, info.clone());
                    Ok(info)
                }
            }
        })
    }

    fn cluster_status(&self) -> ClusterStatus {
        let admin = self.admin.lock().expect("lock");
        let records = self.store.record_count();
        let nodes = admin
            .members
            .iter()
            .enumerate()
            .map(|(i, (name, status))| {
                let is_self = i == 0;
                NodeStatus {
                    id: name.clone(),
                    number: format!("{:016x}", NODE.0 + i as u64),
                    status: status.clone(),
                    rpc: SocketAddr::from(([127, 0, 0, 1], 7000 + i as u16)),
                    http: Some(member_http(i)),
                    load: FAKE_RF as f64 / admin.members.len() as f64,
                    ownership: 1.0 / admin.members.len() as f64,
                    tokens: 256,
                    tokens_sample: vec![1 + i as u64, 2 + i as u64, 3 + i as u64],
                    keys: Some(if is_self { records } else { 0 }),
                    version: Some("0.1.0".into()),
                    is_self,
                }
            })
            .collect();
        ClusterStatus {
            region: "eu-west".into(),
            node: "node-a".into(),
            replication_factor: FAKE_RF,
            ring_version: 7,
            nodes,
            total_keys: records,
            repair: admin.repair.clone(),
            streaming: admin.streaming.clone(),
        }
    }

    fn health(&self) -> Health {
        Health {
            status: if self.ready.load(Ordering::SeqCst) { "ok" } else { "starting" },
            node: "node-a".into(),
            region: "eu-west".into(),
            live_nodes: 1,
            known_nodes: 1,
        }
    }

    fn limits(&self) -> IngressLimits {
        self.limits
    }

    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn hints(&self) -> BoxFuture<'_, Result<HintsStatus, RegionError>> {
        Box::pin(async move {
            let mut admin = self.admin.lock().expect("lock");
            admin.hints_calls += 1;
            Self::admin_error(&admin)?;
            let pending: u64 = admin.hint_queues.iter().map(|q| q.pending).sum();
            Ok(HintsStatus {
                node: "node-a".into(),
                queues: admin.hint_queues.clone(),
                stored: pending + 5,
                replayed: 5,
                dropped: 0,
            })
        })
    }

    fn start_repair(&self, range: Option<(u64, u64)>) -> Result<RepairStatus, RegionError> {
        self.do_start_repair(range)
    }

    fn repair_status(&self) -> RepairStatus {
        self.admin.lock().expect("lock").repair.clone()
    }

    fn decommission(&self, name: String) -> BoxFuture<'_, Result<StreamingStatus, RegionError>> {
        Box::pin(async move { self.do_decommission(name) })
    }

    fn metrics_text(&self) -> BoxFuture<'_, String> {
        Box::pin(async { "# TYPE meridian_up gauge\nmeridian_up 1\n".to_owned() })
    }

    fn ring(&self) -> RingStatus {
        RingStatus {
            region: "test".into(),
            version: 1,
            replication_factor: 3,
            nodes: vec![RingNode { id: "node-a".into(), http: None, live: true, tokens: vec![1, 2, 3] }],
        }
    }

    fn regions(&self) -> RegionsStatus {
        RegionsStatus {
            region: "test".into(),
            node: "node-a".into(),
            fenced: self.fenced.load(Ordering::SeqCst),
            peers: vec![RegionLink {
                region: "eu-west".into(),
                link: if self.fenced.load(Ordering::SeqCst) { "fenced" } else { "up" }.into(),
                backlog: 3,
                lag_p50_ms: Some(41),
                lag_p99_ms: Some(57),
                lag_buckets: vec![(41, 6), (57, 4)],
                applied: 10,
                last_applied_ms: Some(T0),
                shipped: 12,
                last_ack_ms: Some(T0),
                ..RegionLink::default()
            }],
            ..RegionsStatus::default()
        }
    }

    fn fence(&self, region: String, fenced: bool) -> BoxFuture<'_, Result<RegionsStatus, RegionError>> {
        Box::pin(async move {
            if region != "test" {
                return Err(RegionError::InvalidRequest(format!("fence region {region} through one of its own nodes")));
            }
            self.fenced.store(fenced, Ordering::SeqCst);
            Ok(self.regions())
        })
    }

    fn sync_region(&self, region: Option<String>) -> Result<RegionsStatus, RegionError> {
        if region.as_deref().is_some_and(|r| r != "eu-west") {
            return Err(RegionError::InvalidRequest(format!("{} is not a peer region", region.unwrap_or_default())));
        }
        self.sync_requests.lock().expect("lock").push(region);
        Ok(self.regions())
    }

    fn region_digest(&self) -> BoxFuture<'_, Result<RegionDigest, RegionError>> {
        Box::pin(async move {
            let records = self.store.record_count();
            Ok(RegionDigest {
                region: "local".into(),
                node: "node-a".into(),
                root: format!("{:016x}", records.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                records,
                nodes: vec!["node-a".into()],
            })
        })
    }

    fn digest(&self) -> BoxFuture<'_, Result<DigestStatus, RegionError>> {
        Box::pin(async move {
            let mut admin = self.admin.lock().expect("lock");
            admin.digest_calls += 1;
            Self::admin_error(&admin)?;
            let records = self.store.record_count();
            Ok(DigestStatus {
                node: "node-a".into(),
                root: format!("{:032x}", u128::from(records).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                records,
                ranges: vec![(u64::MAX - 10, 5), (100, 200)],
            })
        })
    }
}

/// An answer: status, headers and body bytes.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as JSON (panics with the body text if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The `error` code of an error body.
    pub fn code(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error code in {}", self.json())).to_owned()
    }

    /// Asserts the status and the error code, and that the body has the one error shape.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        let json = self.json();
        assert_eq!(self.status.as_u16(), status, "status of {json}");
        assert_eq!(json["error"], code, "code of {json}");
        assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "message of {json}");
        assert_eq!(
            self.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "content type of {json}"
        );
    }
}

/// The router over a [`FakeService`], and the service for inspection.
#[derive(Debug, Clone)]
pub struct Api {
    pub svc: Arc<FakeService>,
    pub app: Router,
}

impl Api {
    /// A router over a fresh [`FakeService`].
    pub fn new() -> Api {
        Api::over(FakeService::new())
    }

    /// A router over `svc`.
    pub fn over(svc: FakeService) -> Api {
        let svc = Arc::new(svc);
        let app = meridian_region::http::router(svc.clone());
        Api { svc, app }
    }

    /// Sends a request.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.app.clone().oneshot(req).await.expect("the router is infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("read body").to_vec();
        Resp { status, headers, body }
    }

    /// Sends `method path` with `headers` and `body`.
    pub async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(body.into()).expect("request")).await
    }

    /// `PUT` of raw bytes (no content type unless `headers` gives one).
    pub async fn put(&self, path: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Resp {
        self.call(Method::PUT, path, headers, body).await
    }

    /// `GET`.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.call(Method::GET, path, headers, Body::empty()).await
    }

    /// `DELETE`.
    pub async fn delete(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.call(Method::DELETE, path, headers, Body::empty()).await
    }

    /// `POST` of a JSON document.
    pub async fn post_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.call(Method::POST, path, &h, body.to_string()).await
    }

    /// `PUT` of a JSON document.
    pub async fn put_json(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
        let mut h = vec![("content-type", "application/json")];
        h.extend_from_slice(headers);
        self.call(Method::PUT, path, &h, body.to_string()).await
    }
}

impl Default for Api {
    fn default() -> Self {
        Api::new()
    }
}

/// Standard base64 (what the API uses for values).
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The inverse of [`b64`].
pub fn unb64(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).expect("base64")
}
