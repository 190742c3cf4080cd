//! The client library against real `meridian server` processes.
//!
//! The WAN emulator relays UDP (the QUIC between regions); the client speaks HTTP over TCP, so
//! these tests put a small TCP relay ([`relay`]) in front of every node: the client knows the
//! relays' addresses (the nodes' published ones are mapped to them with
//! `ClientBuilder::map_address`), and each region's relays share one link state that delays
//! bytes by a one-way delay, cuts them (a partition: bytes are dropped, connections hang) or
//! drops only the answers (requests arrive and are applied, their answers are lost). Each relay
//! also records the request heads it forwarded, so a test sees which node a request went to.
//!
//! - [`token_aware_routing_sends_each_request_to_the_keys_first_live_replica`]: one region of
//!   four nodes (N = 3); every request for a key reaches the key's primary (an independent
//!   oracle: `meridian_region::Ring` over the ring the node serves), and once the primary is
//!   killed, the second replica.
//! - [`nearest_region_and_the_session_across_a_failover`]: two regions; the client uses the
//!   region with the smaller RTT and moves when the delays swap; a write in us-east, then
//!   us-east cut off: the read in eu-west does not return the older value (it fails with
//!   `session_not_satisfied`, and a client without the session does read the old value), and
//!   returns the session's write once replication heals.
//! - [`failover_on_a_cut_or_fenced_region_without_double_increments`]: the client fails over
//!   when its region is cut and when it is fenced; increments whose answers are lost end
//!   indeterminate and are not applied twice (the final counter lies within [acknowledged,
//!   acknowledged + indeterminate] in both regions); increments refused by a fenced region are
//!   sent to the other one and counted exactly.
//!
//! The tests take one lock, so their clusters never run at the same time. Waits are bounded
//! polls; nothing asserts a duration.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::multi::MultiCluster;
use common::procs::{http_get_json, Cluster, ClusterSpec, NodeProc};
use meridian_client::{Client, ClientConfig, Consistency, Error, RetryPolicy, SwitchReason};
use meridian_crdt::NodeId;
use meridian_region::ring::Ring;

use relay::{LinkState, Mode, Relay};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Options that make failures and recoveries visible within a test's patience.
fn test_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(1500),
        connect_timeout: Duration::from_millis(500),
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
        consistency: Some(Consistency::Quorum),
        probe_interval: Duration::from_millis(500),
        probe_timeout: Duration::from_millis(500),
        region_down_for: Duration::from_secs(1),
        node_down_for: Duration::from_secs(1),
        ring_refresh: Duration::from_secs(1),
        session_wait: Duration::from_secs(2),
        // Loopback RTTs of regions without an emulated delay are equal: keep the configured
        // order however the probes jitter on a busy machine.
        rtt_tolerance: Duration::from_millis(50),
        ..ClientConfig::default()
    }
}

/// Polls `pred` every 100 ms for at most `timeout`; panics naming `what`.
fn wait_until(timeout: Duration, what: &str, mut pred: impl FnMut() -> bool) {
    let start = Instant::now();
    while !pred() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One relay per node of `nodes`, all sharing `link`.
fn relays_for(rt: &tokio::runtime::Runtime, nodes: &[NodeProc], link: &Arc<LinkState>) -> Vec<Relay> {
    nodes
        .iter()
        .map(|p| {
            let target = p.http().parse().expect("node address");
            rt.block_on(Relay::start(target, Arc::clone(link))).expect("relay")
        })
        .collect()
}

/// A client of `regions` (name, nodes, relays), every node reached through its relay.
fn client_through(rt: &tokio::runtime::Runtime, regions: &[(&str, &[NodeProc], &[Relay])]) -> Client {
    let mut b = Client::builder().config(test_config());
    for (name, nodes, relays) in regions {
        b = b.region(*name, relays.iter().map(|r| r.addr.to_string()));
        for (p, r) in nodes.iter().zip(relays.iter()) {
            b = b.map_address(p.http(), r.addr.to_string());
        }
    }
    rt.block_on(b.build()).expect("client")
}

/// The key of a data request head (`PUT /api/v1/keyspaces/default/keys/k7 HTTP/1.1...`).
fn data_key(head: &str, keyspace: &str, kind: &str) -> Option<String> {
    let line = head.lines().next()?;
    let path = line.split(' ').nth(1)?;
    path.strip_prefix(&format!("/api/v1/keyspaces/{keyspace}/{kind}/")).map(str::to_owned)
}

#[test]
fn token_aware_routing_sends_each_request_to_the_keys_first_live_replica() {
    let _serial = serial();
    let mut cluster = Cluster::start(ClusterSpec { nodes: 4, replication_factor: 3, ..ClusterSpec::default() });
    let rt = runtime();
    let link = LinkState::new(Duration::ZERO);
    let relays = relays_for(&rt, &cluster.nodes, &link);
    let client = client_through(&rt, &[("test", &cluster.nodes, &relays)]);

    // The oracle: the region's own ring type over the tokens node1 serves.
    let body = http_get_json(&cluster.nodes[0].url("/api/v1/cluster/ring")).expect("ring");
    let names: Vec<String> = cluster.nodes.iter().map(|p| p.name.clone()).collect();
    let members = body["nodes"].as_array().expect("nodes").iter().map(|n| {
        let i = names.iter().position(|name| n["id"] == name.as_str()).expect("a known node");
        let tokens: Vec<u64> = n["tokens"].as_array().expect("tokens").iter().filter_map(|t| t.as_u64()).collect();
        (NodeId(i as u64 + 1), tokens)
    });
    let ring = Ring::new(1, members);
    let replicas = |key: &str| -> Vec<usize> {
        let token = meridian_local::token_of("default", key.as_bytes());
        ring.replicas(token, 3).into_iter().map(|n| n.0 as usize - 1).collect()
    };

    let keys: Vec<String> = (0..24).map(|i| format!("k{i}")).collect();
    for k in &keys {
        rt.block_on(client.put("default", k, format!("v-{k}"), None)).expect("put");
        let got = rt.block_on(client.get("default", k)).expect("get").expect("a value");
        assert_eq!(got.bytes, format!("v-{k}").into_bytes());
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (j, r) in relays.iter().enumerate() {
        for head in r.heads() {
            let Some(k) = data_key(&head, "default", "keys") else { continue };
            assert_eq!(j, replicas(&k)[0], "{k} went to {} instead of its primary", names[j]);
            *seen.entry(k).or_default() += 1;
        }
    }
    for k in &keys {
        assert!(seen.get(k).is_some_and(|n| *n >= 2), "the put and the get of {k} reached its primary: {seen:?}");
    }
    let primaries: std::collections::BTreeSet<usize> = keys.iter().map(|k| replicas(k)[0]).collect();
    assert!(primaries.len() > 1, "the keys have different primaries, so routing had a choice");

    // Kill the primary of k0: requests go to its second replica.
    let key = &keys[0];
    let list = replicas(key);
    cluster.nodes[list[0]].kill9();
    for r in &relays {
        r.clear();
    }
    for i in 0..5 {
        rt.block_on(client.put("default", key, format!("after-{i}"), None)).expect("put with the primary dead");
    }
    // Once the ring shows the primary down, requests go straight to the second replica.
    wait_until(Duration::from_secs(30), "puts of k0 succeed without retries", || {
        let before = client.metrics().retries;
        rt.block_on(client.put("default", key, "steady", None)).is_ok() && client.metrics().retries == before
    });
    let got = rt.block_on(client.get("default", key)).expect("get").expect("value");
    assert_eq!(got.bytes, b"steady");
    for (j, r) in relays.iter().enumerate() {
        for head in r.heads() {
            if data_key(&head, "default", "keys").as_deref() == Some(key.as_str()) && j != list[0] {
                assert_eq!(
                    j, list[1],
                    "with its primary dead, {key} went to {} instead of its second replica",
                    names[j]
                );
            }
        }
    }
    assert!(relays[list[1]].heads().iter().any(|h| data_key(h, "default", "keys").as_deref() == Some(key.as_str())));
}

/// GET of an lww key on one node, as bytes.
fn value_on(p: &NodeProc, key: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let v = http_get_json(&p.url(&format!("/api/v1/keys/{key}")))?;
    base64::engine::general_purpose::STANDARD.decode(v["value"].as_str()?).ok()
}

#[test]
fn nearest_region_and_the_session_across_a_failover() {
    let _serial = serial();
    let mc = MultiCluster::start(&["us-east", "eu-west"], ClusterSpec::default(), Duration::from_millis(20));
    let rt = runtime();
    let east_link = LinkState::new(Duration::ZERO);
    let west_link = LinkState::new(Duration::from_millis(100));
    let east = relays_for(&rt, mc.region("us-east"), &east_link);
    let west = relays_for(&rt, mc.region("eu-west"), &west_link);
    // eu-west first in the configuration: only the RTT makes us-east the nearest.
    let client =
        client_through(&rt, &[("eu-west", mc.region("eu-west"), &west), ("us-east", mc.region("us-east"), &east)]);

    // Nearest region: us-east (no delay) before eu-west (100 ms each way).
    assert_eq!(client.regions()[0].name, "us-east", "{:?}", client.regions());
    let ack = rt.block_on(client.put("default", "near", "1", None)).expect("put");
    assert_eq!(ack.region, "us-east");
    // The delays swap (the emulator's WAN delay changes too): the client moves.
    east_link.set_delay(Duration::from_millis(100));
    west_link.set_delay(Duration::ZERO);
    mc.emulator.set_delay("us-east", "eu-west", Duration::from_millis(30));
    wait_until(Duration::from_secs(20), "the client finds eu-west nearer", || client.regions()[0].name == "eu-west");
    let ack = rt.block_on(client.put("default", "near", "2", None)).expect("put");
    assert_eq!(ack.region, "eu-west");
    let switch = client.failover_events().last().cloned().expect("a region switch");
    assert_eq!((switch.from.as_str(), switch.to.as_str(), switch.reason), ("us-east", "eu-west", SwitchReason::Nearer));
    east_link.set_delay(Duration::ZERO);
    west_link.set_delay(Duration::from_millis(100));
    wait_until(Duration::from_secs(20), "us-east is the nearest again", || client.regions()[0].name == "us-east");

    // The session: v0 everywhere, then v1 in us-east only.
    let v0 = rt.block_on(client.put("default", "s", "v0", None)).expect("put v0");
    assert_eq!(v0.region, "us-east");
    wait_until(Duration::from_secs(30), "eu-west has v0", || {
        mc.region("eu-west").iter().all(|p| value_on(p, "s").as_deref() == Some(b"v0"))
    });
    mc.cut("us-east");
    let v1 = rt.block_on(client.put("default", "s", "v1", None)).expect("put v1");
    assert_eq!(v1.region, "us-east");
    assert!(v1.version > v0.version);
    assert_eq!(client.session_token(), Some(v1.version));
    // us-east is cut off from the client too: the read fails over to eu-west, which has v0.
    east_link.set_mode(Mode::Cut);
    match rt.block_on(client.get("default", "s")) {
        Err(Error::SessionNotSatisfied { required, seen, region, .. }) => {
            assert_eq!((required, seen, region.as_str()), (v1.version, Some(v0.version), "eu-west"));
        }
        other => panic!("a read in eu-west must not return the session's older value: {other:?}"),
    }
    let switch = client.failover_events().last().cloned().expect("a region switch");
    assert_eq!(
        (switch.from.as_str(), switch.to.as_str(), switch.reason),
        ("us-east", "eu-west", SwitchReason::Failover)
    );
    assert!(client.metrics().session_retries > 0);
    // The reads in eu-west carried the session token.
    let token = format!("x-session-token: {}", v1.version).to_lowercase();
    assert!(west.iter().any(|r| r.heads().iter().any(|h| h.to_lowercase().contains(&token))), "no session token sent");
    // Without the session, eu-west's answer is the old value: the check above is what refused it.
    let fresh = rt
        .block_on(
            Client::builder()
                .config(test_config())
                .region("eu-west", west.iter().map(|r| r.addr.to_string()))
                .token_aware(false)
                .build(),
        )
        .expect("client");
    let old = rt.block_on(fresh.get("default", "s")).expect("get").expect("value");
    assert_eq!(old.bytes, b"v0");
    // Replication heals: the session's write arrives, and reads never return v0 meanwhile.
    mc.heal("us-east");
    wait_until(Duration::from_secs(60), "the session reads its write in eu-west", || {
        match rt.block_on(client.get("default", "s")) {
            Ok(Some(v)) => {
                assert_eq!(v.bytes, b"v1", "the session read an older value");
                assert_eq!(v.version, v1.version);
                true
            }
            Err(Error::SessionNotSatisfied { .. }) => false,
            other => panic!("unexpected {other:?}"),
        }
    });
    assert_eq!(client.current_region().as_deref(), Some("eu-west"));
    east_link.set_mode(Mode::Open);
}

/// The value of counter `key` in every node of `nodes` (`None` if one did not answer).
fn counter_on(nodes: &[NodeProc], key: &str) -> Option<Vec<i64>> {
    nodes.iter().map(|p| http_get_json(&p.url(&format!("/api/v1/counters/{key}")))?["value"].as_i64()).collect()
}

/// Waits until every node of both regions shows the same value of `key`, and returns it.
fn converged_counter(mc: &MultiCluster, key: &str) -> i64 {
    let mut last = Vec::new();
    let start = Instant::now();
    loop {
        let all: Option<Vec<i64>> = ["us-east", "eu-west"]
            .iter()
            .map(|r| counter_on(mc.region(r), key))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.concat());
        if let Some(values) = all {
            if values.windows(2).all(|w| w[0] == w[1]) {
                return values[0];
            }
            last = values;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{key} did not converge: {last:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Increments `key` `n` times by 1: (acknowledged, indeterminate).
fn increments(rt: &tokio::runtime::Runtime, client: &Client, key: &str, n: usize) -> (i64, i64) {
    let (mut acked, mut maybe) = (0, 0);
    for _ in 0..n {
        match rt.block_on(client.incr("counters", key, 1)) {
            Ok(_) => acked += 1,
            Err(Error::Indeterminate { .. }) => maybe += 1,
            Err(e) => panic!("an increment failed without being indeterminate: {e}"),
        }
    }
    (acked, maybe)
}

#[test]
fn failover_on_a_cut_or_fenced_region_without_double_increments() {
    let _serial = serial();
    let mc = MultiCluster::start(&["us-east", "eu-west"], ClusterSpec::default(), Duration::from_millis(20));
    let rt = runtime();
    let east_link = LinkState::new(Duration::ZERO);
    let west_link = LinkState::new(Duration::ZERO);
    let east = relays_for(&rt, mc.region("us-east"), &east_link);
    let west = relays_for(&rt, mc.region("eu-west"), &west_link);
    // Equal RTTs: the configuration order makes us-east the first choice.
    let client =
        client_through(&rt, &[("us-east", mc.region("us-east"), &east), ("eu-west", mc.region("eu-west"), &west)]);
    let ack = rt.block_on(client.put("default", "k", "0", None)).expect("put");
    assert_eq!(ack.region, "us-east");

    // 1. us-east cut off (WAN and clients): writes go on in eu-west.
    mc.cut("us-east");
    east_link.set_mode(Mode::Cut);
    let ack = rt.block_on(client.put("default", "k", "1", None)).expect("put during the cut");
    assert_eq!(ack.region, "eu-west");
    let switch = client.failover_events().last().cloned().expect("a region switch");
    assert_eq!(
        (switch.from.as_str(), switch.to.as_str(), switch.reason),
        ("us-east", "eu-west", SwitchReason::Failover)
    );
    let down_since = switch.down_since.expect("the failed region's down time");
    assert!(switch.at >= down_since);
    assert!(client.metrics().failovers >= 1);
    mc.heal("us-east");
    east_link.set_mode(Mode::Open);
    wait_until(Duration::from_secs(30), "the client is back in us-east", || {
        rt.block_on(client.put("default", "k", "2", None)).is_ok_and(|a| a.region == "us-east")
    });

    // 2. us-east receives and applies increments but its answers are lost: each is
    // indeterminate, none is sent again; the others are acknowledged by eu-west.
    east_link.set_mode(Mode::DropAnswers);
    let (acked, maybe) = increments(&rt, &client, "lost-answers", 12);
    east_link.set_mode(Mode::Open);
    let total = converged_counter(&mc, "lost-answers");
    assert!(
        (acked..=acked + maybe).contains(&total),
        "final counter {total} outside [acknowledged {acked}, acknowledged + indeterminate {}]: \
         an increment was applied twice",
        acked + maybe
    );
    assert!(maybe >= 1, "an increment whose answer was lost is indeterminate (acked {acked})");
    assert!(acked >= 1, "the increments after the failover are acknowledged");
    let last = client.failover_events().last().cloned().expect("switch");
    assert_eq!(last.to, "eu-west");
    wait_until(Duration::from_secs(30), "the client is back in us-east", || {
        rt.block_on(client.put("default", "k", "3", None)).is_ok_and(|a| a.region == "us-east")
    });

    // 3. us-east fenced: refused before effect, so every increment goes to eu-west, exactly once.
    let fence = common::procs::http("POST", &mc.region("us-east")[0].url("/api/v1/regions/us-east/fence"), &[], None);
    assert_eq!(fence.0, 200, "{:?}", fence.1);
    wait_until(Duration::from_secs(15), "every us-east node refuses", || {
        mc.region("us-east").iter().all(|p| common::procs::http("GET", &p.url("/api/v1/keys/k"), &[], None).0 == 503)
    });
    let (acked, maybe) = increments(&rt, &client, "fenced", 10);
    assert_eq!((acked, maybe), (10, 0), "a fenced region refuses before effect: nothing is indeterminate");
    assert_eq!(client.current_region().as_deref(), Some("eu-west"));
    let unfence =
        common::procs::http("POST", &mc.region("us-east")[0].url("/api/v1/regions/us-east/unfence"), &[], None);
    assert_eq!(unfence.0, 200, "{:?}", unfence.1);
    assert_eq!(converged_counter(&mc, "fenced"), 10, "each increment applied exactly once");
}

/// A TCP relay for tests: delays, cuts or drops the answers of the connections through it.
mod relay {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
    use std::sync::{Arc, Mutex, PoisonError};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    /// What the relays of a link do with bytes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Mode {
        /// Forward both ways after the delay.
        Open,
        /// Drop every byte both ways (connections stay open and hang).
        Cut,
        /// Forward requests, drop answers.
        DropAnswers,
    }

    /// The state shared by the relays of one region.
    #[derive(Debug)]
    pub struct LinkState {
        delay_us: AtomicU64,
        mode: AtomicU8,
    }

    impl LinkState {
        pub fn new(delay: Duration) -> Arc<LinkState> {
            Arc::new(LinkState { delay_us: AtomicU64::new(delay.as_micros() as u64), mode: AtomicU8::new(0) })
        }

        pub fn set_delay(&self, delay: Duration) {
            self.delay_us.store(delay.as_micros() as u64, Ordering::Relaxed);
        }

        pub fn set_mode(&self, mode: Mode) {
            self.mode.store(mode as u8, Ordering::Relaxed);
        }

        fn mode(&self) -> Mode {
            match self.mode.load(Ordering::Relaxed) {
                1 => Mode::Cut,
                2 => Mode::DropAnswers,
                _ => Mode::Open,
            }
        }

        fn delay(&self) -> Duration {
            Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
        }
    }

    /// One relay: a front address standing for one node.
    #[derive(Debug)]
    pub struct Relay {
        pub addr: SocketAddr,
        heads: Arc<Mutex<Vec<String>>>,
    }

    impl Relay {
        pub async fn start(target: SocketAddr, link: Arc<LinkState>) -> std::io::Result<Relay> {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let heads = Arc::new(Mutex::new(Vec::new()));
            let recorded = Arc::clone(&heads);
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    let (link, recorded) = (Arc::clone(&link), Arc::clone(&recorded));
                    tokio::spawn(async move {
                        // A dead target: close at once, reading nothing (nothing recorded).
                        let Ok(upstream) = TcpStream::connect(target).await else { return };
                        let _ = inbound.set_nodelay(true);
                        let _ = upstream.set_nodelay(true);
                        let (cr, cw) = inbound.into_split();
                        let (ur, uw) = upstream.into_split();
                        let up = pump(cr, uw, Arc::clone(&link), false, Some(recorded));
                        let down = pump(ur, cw, link, true, None);
                        let _ = tokio::join!(up, down);
                    });
                }
            });
            Ok(Relay { addr, heads })
        }

        /// The request heads forwarded so far.
        pub fn heads(&self) -> Vec<String> {
            self.heads.lock().unwrap_or_else(PoisonError::into_inner).clone()
        }

        pub fn clear(&self) {
            self.heads.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// Splits a client's byte stream into request heads, skipping bodies by `Content-Length`.
    #[derive(Debug, Default)]
    struct Heads {
        pending: Vec<u8>,
        skip: usize,
    }

    impl Heads {
        fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
            self.pending.extend_from_slice(bytes);
            let mut out = Vec::new();
            loop {
                let k = self.skip.min(self.pending.len());
                self.pending.drain(..k);
                self.skip -= k;
                if self.skip > 0 {
                    return out;
                }
                let Some(end) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") else { return out };
                let head = String::from_utf8_lossy(&self.pending[..end + 4]).into_owned();
                self.pending.drain(..end + 4);
                self.skip = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                out.push(head);
            }
        }
    }

    /// Copies `from` to `to`, each chunk delivered `delay` after it arrived, unless the mode
    /// drops it; records request heads when asked to.
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        link: Arc<LinkState>,
        answers: bool,
        recorded: Option<Arc<Mutex<Vec<String>>>>,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        let writer = tokio::spawn(async move {
            while let Some((at, bytes)) = rx.recv().await {
                tokio::time::sleep_until(at).await;
                if to.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            let _ = to.shutdown().await;
        });
        let mut heads = Heads::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let drop = match link.mode() {
                Mode::Open => false,
                Mode::Cut => true,
                Mode::DropAnswers => answers,
            };
            if drop {
                continue;
            }
            if let Some(recorded) = &recorded {
                for head in heads.feed(&buf[..n]) {
                    recorded.lock().unwrap_or_else(PoisonError::into_inner).push(head);
                }
            }
            if tx.send((Instant::now() + link.delay(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
    }
}
