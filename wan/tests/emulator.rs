//! The WAN emulator on real loopback UDP: delays (lower bounds only, plus generous sanity upper
//! bounds), partitions, loss, client mappings, run-time changes, bandwidth, shutdown, and a
//! mutual-TLS QUIC exchange through it.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use meridian_net::{tls, BoxFuture, CertAuthority, Endpoint, Handler, TlsIdentity, TransportOptions, WAN_ALPN};
use meridian_wan::emulator::{Emulator, EmulatorConfig, LinkSpec, LinkStats};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// A bound so that a broken test fails instead of hanging; never a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(30);
/// Generous sanity bound on a round trip whose lower bound is what is being checked.
const SANITY: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn socket() -> UdpSocket {
    UdpSocket::bind(loopback()).await.unwrap()
}

/// A UDP server that answers every datagram with the same bytes (if `echo`) and reports each
/// `(source, payload)` on the channel.
async fn server(echo: bool) -> (SocketAddr, mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>) {
    let sock = socket().await;
    let addr = sock.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((len, from)) = sock.recv_from(&mut buf).await else { continue };
            if echo {
                sock.send_to(&buf[..len], from).await.unwrap();
            }
            if tx.send((from, buf[..len].to_vec())).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

/// Sends `payload` to `to` and waits for the answer; returns it, where it came from, and the
/// round-trip time.
async fn round_trip(client: &UdpSocket, to: SocketAddr, payload: &[u8]) -> (Vec<u8>, SocketAddr, Duration) {
    let mut buf = vec![0u8; 65_536];
    let start = Instant::now();
    client.send_to(payload, to).await.unwrap();
    let (len, from) = timeout(HANG_GUARD, client.recv_from(&mut buf)).await.expect("no answer").unwrap();
    (buf[..len].to_vec(), from, start.elapsed())
}

/// Waits until `stats(from, to)` satisfies `done` (polling; bounded by [`HANG_GUARD`]).
async fn wait_stats(emulator: &Emulator, from: &str, to: &str, done: impl Fn(&LinkStats) -> bool) -> LinkStats {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        let stats = emulator.stats(from, to);
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "stats {from}->{to} never got there: {stats:?}");
        tokio::time::sleep(MS).await;
    }
}

/// Sends `n` datagrams to `to` in bursts of 50, waiting after each burst until the emulator
/// has seen them all, so that no socket buffer on the way overflows (which would make the
/// counts below meaningless).
async fn send_paced(
    emulator: &Emulator,
    client: &UdpSocket,
    to: SocketAddr,
    n: u64,
    from_region: &str,
    to_region: &str,
) {
    let base = emulator.stats(from_region, to_region).packets_done();
    for i in 1..=n {
        client.send_to(&(i - 1).to_le_bytes(), to).await.unwrap();
        if i % 50 == 0 || i == n {
            wait_stats(emulator, from_region, to_region, |s| s.packets_done() >= base + i).await;
        }
    }
}

/// Whether anything arrives on `client` within `window` (used only to check that nothing does).
async fn anything_within(client: &UdpSocket, window: Duration) -> bool {
    let mut buf = vec![0u8; 65_536];
    timeout(window, client.recv_from(&mut buf)).await.is_ok()
}

#[tokio::test]
async fn round_trip_through_a_50ms_link_takes_at_least_100ms_and_the_server_sees_the_upstream() {
    let emulator = Emulator::new(1);
    emulator.set_delay("us-east", "eu-west", 50 * MS);
    let (target, mut seen) = server(true).await;
    let front = emulator.add_link("us-east", "eu-west", target).await.unwrap();
    assert_ne!(front, target);

    let client = socket().await;
    let (answer, from, rtt) = round_trip(&client, front, b"ping").await;
    assert_eq!(answer, b"ping");
    assert_eq!(from, front, "the client sees the front address as its peer");
    assert!(rtt >= 100 * MS, "{rtt:?}");
    assert!(rtt < SANITY, "{rtt:?}");

    let (source, payload) = seen.recv().await.unwrap();
    assert_eq!(payload, b"ping");
    assert_ne!(source, client.local_addr().unwrap(), "the server must not see the client's own address");
    assert_ne!(source, front);
    assert!(source.ip().is_loopback());

    let forward = emulator.stats("us-east", "eu-west");
    let reverse = emulator.stats("eu-west", "us-east");
    assert_eq!((forward.packets_received, forward.packets_forwarded, forward.bytes_forwarded), (1, 1, 4));
    assert_eq!((reverse.packets_received, reverse.packets_forwarded, reverse.bytes_forwarded), (1, 1, 4));
    assert_eq!(forward.mappings_created, 1);
    assert_eq!(forward.packets_dropped(), 0);
    let links = emulator.links();
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].front, links[0].target, links[0].mappings), (front, Some(target), 1));
    emulator.shutdown().await;
}

#[tokio::test]
async fn partition_drops_everything_and_heal_restores() {
    let emulator = Emulator::new(2);
    let (target, mut seen) = server(true).await;
    let front = emulator.add_link("us-east", "eu-west", target).await.unwrap();
    let client = socket().await;
    assert_eq!(round_trip(&client, front, b"before").await.0, b"before");
    assert_eq!(seen.recv().await.unwrap().1, b"before");

    emulator.partition("us-east", "eu-west");
    assert!(emulator.spec("us-east", "eu-west").partitioned && emulator.spec("eu-west", "us-east").partitioned);
    for i in 0..10u8 {
        client.send_to(&[i], front).await.unwrap();
    }
    let stats = wait_stats(&emulator, "us-east", "eu-west", |s| s.packets_dropped_partition == 10).await;
    assert_eq!(stats.packets_forwarded, 1, "{stats:?}");
    assert!(!anything_within(&client, 200 * MS).await, "nothing crosses a partition");
    assert!(seen.try_recv().is_err(), "the server received nothing");

    emulator.heal("us-east", "eu-west");
    assert_eq!(emulator.spec("us-east", "eu-west"), LinkSpec::default());
    assert_eq!(round_trip(&client, front, b"after").await.0, b"after");
    assert_eq!(seen.recv().await.unwrap().1, b"after");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_partitioned_server_side_drops_the_answers() {
    let emulator = Emulator::new(3);
    let (target, mut seen) = server(true).await;
    let front = emulator.add_link("us-east", "eu-west", target).await.unwrap();
    let client = socket().await;
    // Only the answers' direction is cut: the server gets the datagram, the client nothing.
    emulator.update("eu-west", "us-east", |s| s.partitioned = true);
    client.send_to(b"one-way", front).await.unwrap();
    assert_eq!(timeout(HANG_GUARD, seen.recv()).await.unwrap().unwrap().1, b"one-way");
    wait_stats(&emulator, "eu-west", "us-east", |s| s.packets_dropped_partition == 1).await;
    assert!(!anything_within(&client, 100 * MS).await);
    emulator.shutdown().await;
}

#[tokio::test]
async fn partition_region_cuts_every_link_touching_it_and_heal_region_restores() {
    let emulator = Emulator::new(4);
    let (eu, _eu_seen) = server(true).await;
    let (ap, _ap_seen) = server(true).await;
    let us_to_eu = emulator.add_link("us-east", "eu-west", eu).await.unwrap();
    let us_to_ap = emulator.add_link("us-east", "ap-southeast", ap).await.unwrap();
    let eu_to_ap = emulator.add_link("eu-west", "ap-southeast", ap).await.unwrap();
    let client = socket().await;

    emulator.partition_region("ap-southeast");
    for (from, to) in [("us-east", "ap-southeast"), ("ap-southeast", "us-east"), ("eu-west", "ap-southeast")] {
        assert!(emulator.spec(from, to).partitioned, "{from}->{to}");
    }
    assert!(!emulator.spec("us-east", "eu-west").partitioned);
    client.send_to(b"x", us_to_ap).await.unwrap();
    client.send_to(b"x", eu_to_ap).await.unwrap();
    wait_stats(&emulator, "us-east", "ap-southeast", |s| s.packets_dropped_partition == 1).await;
    wait_stats(&emulator, "eu-west", "ap-southeast", |s| s.packets_dropped_partition == 1).await;
    assert_eq!(round_trip(&client, us_to_eu, b"unaffected").await.0, b"unaffected");

    emulator.heal_region("ap-southeast");
    assert_eq!(round_trip(&client, us_to_ap, b"back").await.0, b"back");
    assert_eq!(round_trip(&client, eu_to_ap, b"back").await.0, b"back");
    emulator.shutdown().await;
}

/// Sends 2000 datagrams through a sink link with `loss` and returns how many were lost.
async fn lost_of_2000(seed: u64, loss: f64) -> u64 {
    let emulator = Emulator::new(seed);
    emulator.set("a", "b", LinkSpec::default().loss(loss));
    let (sink, _seen) = server(false).await;
    let front = emulator.add_link("a", "b", sink).await.unwrap();
    let client = socket().await;
    send_paced(&emulator, &client, front, 2000, "a", "b").await;
    let stats = emulator.stats("a", "b");
    assert_eq!(stats.packets_received, 2000, "{stats:?}");
    assert_eq!(stats.packets_forwarded + stats.packets_dropped_loss, 2000, "{stats:?}");
    assert_eq!(stats.packets_dropped() - stats.packets_dropped_loss, 0, "{stats:?}");
    emulator.shutdown().await;
    stats.packets_dropped_loss
}

#[tokio::test]
async fn loss_one_drops_all_and_loss_zero_drops_none() {
    let emulator = Emulator::new(5);
    let (target, mut seen) = server(true).await;
    let front = emulator.add_link("a", "b", target).await.unwrap();
    let client = socket().await;

    emulator.set("a", "b", LinkSpec::default().loss(1.0));
    send_paced(&emulator, &client, front, 100, "a", "b").await;
    let stats = emulator.stats("a", "b");
    assert_eq!((stats.packets_dropped_loss, stats.packets_forwarded), (100, 0), "{stats:?}");
    assert!(seen.try_recv().is_err());

    emulator.set("a", "b", LinkSpec::default().loss(0.0));
    send_paced(&emulator, &client, front, 100, "a", "b").await;
    let stats = emulator.stats("a", "b");
    assert_eq!((stats.packets_dropped_loss, stats.packets_forwarded), (100, 100), "{stats:?}");
    wait_stats(&emulator, "b", "a", |s| s.packets_forwarded == 100).await;
    let mut buf = [0u8; 16];
    for _ in 0..100 {
        timeout(HANG_GUARD, client.recv_from(&mut buf)).await.unwrap().unwrap();
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn half_loss_over_2000_datagrams_is_binomial_and_reproducible() {
    let lost = lost_of_2000(6, 0.5).await;
    // Binomial(2000, 0.5): mean 1000, standard deviation about 22; ±150 is about 6.7 sigma.
    assert!((850..=1150).contains(&lost), "{lost}");
    assert_eq!(lost_of_2000(6, 0.5).await, lost, "the same seed and arrival order give the same losses");
}

#[tokio::test]
async fn out_of_range_loss_is_clamped() {
    let emulator = Emulator::new(7);
    emulator.set("a", "b", LinkSpec::default().loss(3.0));
    assert_eq!(emulator.spec("a", "b").loss, 1.0);
    emulator.set("a", "b", LinkSpec::default().loss(f64::NAN));
    assert_eq!(emulator.spec("a", "b").loss, 0.0);
}

#[tokio::test]
async fn two_clients_get_two_distinct_upstream_mappings() {
    let emulator = Emulator::new(8);
    let (target, mut seen) = server(true).await;
    let front = emulator.add_link("us-east", "eu-west", target).await.unwrap();
    let (one, two) = (socket().await, socket().await);
    for _ in 0..3 {
        assert_eq!(round_trip(&one, front, b"one").await.0, b"one");
        assert_eq!(round_trip(&two, front, b"two").await.0, b"two");
    }
    let mut sources = HashSet::new();
    for _ in 0..6 {
        let (source, payload) = seen.recv().await.unwrap();
        sources.insert((source, payload));
    }
    assert_eq!(sources.len(), 2, "each client keeps its mapping: {sources:?}");
    let upstreams: HashSet<_> = sources.iter().map(|(source, _)| *source).collect();
    assert_eq!(upstreams.len(), 2, "two clients, two upstream sockets: {sources:?}");
    let clients = [one.local_addr().unwrap(), two.local_addr().unwrap()];
    assert!(upstreams.iter().all(|u| !clients.contains(u)));
    assert_eq!(emulator.stats("us-east", "eu-west").mappings_created, 2);
    assert_eq!(emulator.links()[0].mappings, 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn idle_mappings_expire_and_the_next_datagram_opens_a_new_one() {
    let emulator = Emulator::with_config(EmulatorConfig::new(9).mapping_idle_timeout(100 * MS));
    let (target, mut seen) = server(true).await;
    let front = emulator.add_link("a", "b", target).await.unwrap();
    let client = socket().await;
    round_trip(&client, front, b"first").await;
    let first = seen.recv().await.unwrap().0;
    wait_stats(&emulator, "a", "b", |s| s.mappings_expired == 1).await;
    assert_eq!(emulator.links()[0].mappings, 0);
    round_trip(&client, front, b"second").await;
    let second = seen.recv().await.unwrap().0;
    assert_ne!(first, second, "a new mapping has a new upstream socket");
    assert_eq!(emulator.stats("a", "b").mappings_created, 2);
    emulator.shutdown().await;
}

#[tokio::test]
async fn changing_the_delay_at_run_time_affects_later_datagrams() {
    let emulator = Emulator::new(10);
    emulator.set_delay("a", "b", 20 * MS);
    let (target, _seen) = server(true).await;
    let front = emulator.add_link("a", "b", target).await.unwrap();
    let client = socket().await;
    let rtt = round_trip(&client, front, b"x").await.2;
    assert!(rtt >= 40 * MS && rtt < SANITY, "{rtt:?}");

    emulator.set_delay("a", "b", 150 * MS);
    assert_eq!(emulator.spec("b", "a").delay, 150 * MS);
    let rtt = round_trip(&client, front, b"x").await.2;
    assert!(rtt >= 300 * MS && rtt < 2 * SANITY, "{rtt:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_delay_change_leaves_scheduled_datagrams_alone_so_later_ones_overtake() {
    let emulator = Emulator::new(11);
    emulator.set("a", "b", LinkSpec::with_delay(Duration::from_millis(500)));
    let (sink, mut seen) = server(false).await;
    let front = emulator.add_link("a", "b", sink).await.unwrap();
    let client = socket().await;
    client.send_to(b"slow", front).await.unwrap();
    wait_stats(&emulator, "a", "b", |s| s.packets_received == 1).await;
    emulator.set("a", "b", LinkSpec::default());
    client.send_to(b"fast", front).await.unwrap();
    assert_eq!(seen.recv().await.unwrap().1, b"fast");
    assert_eq!(seen.recv().await.unwrap().1, b"slow");
    emulator.shutdown().await;
}

#[tokio::test]
async fn in_order_links_do_not_reorder_under_jitter() {
    let emulator = Emulator::new(12);
    let spec = LinkSpec { in_order: true, ..LinkSpec::with_delay(5 * MS).jitter(4 * MS) };
    emulator.set("a", "b", spec);
    let (sink, mut seen) = server(false).await;
    let front = emulator.add_link("a", "b", sink).await.unwrap();
    let client = socket().await;
    send_paced(&emulator, &client, front, 300, "a", "b").await;
    for i in 0..300u64 {
        let (_, payload) = timeout(HANG_GUARD, seen.recv()).await.unwrap().unwrap();
        assert_eq!(payload, i.to_le_bytes(), "datagram {i} out of order");
    }
    emulator.shutdown().await;
}

#[tokio::test]
async fn bandwidth_spaces_datagrams_and_a_full_queue_drops() {
    let emulator = Emulator::new(13);
    // 20 kB/s: ten 1000-byte datagrams need at least 500 ms to get through.
    emulator.set("a", "b", LinkSpec::default().bandwidth(20_000));
    let (sink, mut seen) = server(false).await;
    let front = emulator.add_link("a", "b", sink).await.unwrap();
    let client = socket().await;
    let start = Instant::now();
    for _ in 0..10 {
        client.send_to(&[0u8; 1000], front).await.unwrap();
    }
    for _ in 0..10 {
        timeout(HANG_GUARD, seen.recv()).await.unwrap().unwrap();
    }
    assert!(start.elapsed() >= 500 * MS, "{:?}", start.elapsed());

    // A queue of 2000 bytes holds two of them; a burst of ten loses most.
    emulator.set("a", "b", LinkSpec { queue_limit_bytes: 2000, ..LinkSpec::default().bandwidth(20_000) });
    for _ in 0..10 {
        client.send_to(&[0u8; 1000], front).await.unwrap();
    }
    let stats = wait_stats(&emulator, "a", "b", |s| s.packets_done() == 20).await;
    assert!(stats.packets_dropped_queue >= 1, "{stats:?}");
    assert_eq!(stats.packets_forwarded + stats.packets_dropped_queue, 20, "{stats:?}");
    emulator.shutdown().await;
}

#[tokio::test]
async fn retarget_sends_later_datagrams_to_the_new_target() {
    let emulator = Emulator::new(16);
    let (old, mut old_seen) = server(true).await;
    let (new, mut new_seen) = server(true).await;
    let front = emulator.add_link("a", "b", old).await.unwrap();
    let client = socket().await;
    assert_eq!(round_trip(&client, front, b"to-old").await.0, b"to-old");
    assert_eq!(old_seen.recv().await.unwrap().1, b"to-old");

    emulator.retarget(front, new).unwrap();
    assert_eq!(emulator.links()[0].target, Some(new));
    assert_eq!(emulator.links()[0].mappings, 0, "the old mapping is closed");
    let (answer, from, _) = round_trip(&client, front, b"to-new").await;
    assert_eq!((answer.as_slice(), from), (&b"to-new"[..], front));
    assert_eq!(new_seen.recv().await.unwrap().1, b"to-new");
    assert!(old_seen.try_recv().is_err());
    assert_eq!(emulator.stats("a", "b").mappings_created, 2);

    let unknown: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert_eq!(emulator.retarget(unknown, new).unwrap_err().kind(), std::io::ErrorKind::NotFound);
    // A link to a front of the same emulator would loop.
    assert_eq!(emulator.retarget(front, front).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(emulator.add_link("b", "a", front).await.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_pending_link_drops_until_it_is_given_a_target() {
    let emulator = Emulator::new(18);
    emulator.set_delay("a", "b", 10 * MS);
    let front = emulator.add_pending_link("a", "b").await.unwrap();
    assert_eq!(emulator.links()[0].target, None);
    let client = socket().await;
    client.send_to(b"early", front).await.unwrap();
    wait_stats(&emulator, "a", "b", |s| s.packets_dropped_no_target == 1).await;
    let (target, mut seen) = server(true).await;
    emulator.retarget(front, target).unwrap();
    let (answer, _, rtt) = round_trip(&client, front, b"late").await;
    assert_eq!(answer, b"late");
    assert!(rtt >= 20 * MS, "{rtt:?}");
    assert_eq!(seen.recv().await.unwrap().1, b"late", "the early datagram was dropped, not kept");
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_dead_target_is_silence_and_the_link_keeps_working() {
    let emulator = Emulator::new(17);
    let dead = {
        let sock = socket().await;
        sock.local_addr().unwrap()
    };
    let front = emulator.add_link("a", "b", dead).await.unwrap();
    let client = socket().await;
    send_paced(&emulator, &client, front, 20, "a", "b").await;
    let stats = emulator.stats("a", "b");
    assert_eq!(stats.packets_forwarded + stats.send_errors, 20, "{stats:?}");
    assert!(!anything_within(&client, 100 * MS).await);
    // The server comes back elsewhere: the same front and client still work.
    let (alive, _seen) = server(true).await;
    emulator.retarget(front, alive).unwrap();
    assert_eq!(round_trip(&client, front, b"alive").await.0, b"alive");
    emulator.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_every_socket_and_refuses_new_links() {
    let emulator = Emulator::new(14);
    let (target, _seen) = server(true).await;
    let front = emulator.add_link("a", "b", target).await.unwrap();
    let client = socket().await;
    round_trip(&client, front, b"x").await;
    let clone = emulator.clone();
    clone.shutdown().await;
    assert!(emulator.links().is_empty());
    // The front port is free again: its socket is closed.
    UdpSocket::bind(front).await.expect("the front socket is closed after shutdown");
    assert!(emulator.add_link("a", "b", target).await.is_err());
    emulator.shutdown().await; // idempotent
}

#[test]
fn default_delays_cover_the_three_dev_regions_in_one_direction_each() {
    let delays = meridian_wan::emulator::default_delays();
    assert_eq!(delays.len(), 3);
    let pairs: HashSet<_> = delays.iter().map(|(a, b, _)| (*a, *b)).collect();
    assert!(pairs.contains(&("us-east", "eu-west")));
    assert!(pairs.contains(&("us-east", "ap-southeast")));
    assert!(pairs.contains(&("eu-west", "ap-southeast")));
    let get = |a, b| delays.iter().find(|d| (d.0, d.1) == (a, b)).unwrap().2;
    assert!(get("us-east", "eu-west") < get("eu-west", "ap-southeast"));
    assert!(get("eu-west", "ap-southeast") < get("us-east", "ap-southeast"));
}

/// Answers `echo:` + the request and records the peer address it saw.
struct Echo {
    peers: mpsc::UnboundedSender<SocketAddr>,
}

impl Handler for Echo {
    fn request(&self, peer: SocketAddr, payload: Bytes) -> BoxFuture<'static, Bytes> {
        let _ = self.peers.send(peer);
        Box::pin(async move {
            let mut out = b"echo:".to_vec();
            out.extend_from_slice(&payload);
            Bytes::from(out)
        })
    }

    fn message(&self, _peer: SocketAddr, _payload: Bytes) {}
}

/// The WAN identity of `region`, dialing and accepting `peer`'s.
fn wan_identity(ca: &CertAuthority, region: &str, peer: &str) -> TlsIdentity {
    let issued = ca.issue_region(region, &[], 1).unwrap();
    TlsIdentity::from_pem(
        ca.cert_pem().as_bytes(),
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
        &tls::wan_name(peer).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_mutual_tls_quic_request_goes_through_a_30ms_link() {
    let ca = CertAuthority::generate("emulator test").unwrap();
    let server =
        Endpoint::bind(loopback(), &wan_identity(&ca, "eu-west", "us-east"), WAN_ALPN, TransportOptions::wan())
            .unwrap();
    let (peers_tx, mut peers) = mpsc::unbounded_channel();
    server.serve(Arc::new(Echo { peers: peers_tx }));
    let client =
        Endpoint::bind(loopback(), &wan_identity(&ca, "us-east", "eu-west"), WAN_ALPN, TransportOptions::wan())
            .unwrap();

    let emulator = Emulator::new(15);
    emulator.set_delay("us-east", "eu-west", 30 * MS);
    let front = emulator.add_link("us-east", "eu-west", server.local_addr()).await.unwrap();

    // Handshake (client → server → client) then the request and its response: four crossings.
    let start = Instant::now();
    let response = client.request(front, Bytes::from_static(b"ping"), HANG_GUARD).await.unwrap();
    let first = start.elapsed();
    assert_eq!(&response[..], b"echo:ping");
    assert!(first >= 120 * MS, "{first:?}");

    // On the established connection: one round trip.
    let start = Instant::now();
    let response = client.request(front, Bytes::from_static(b"again"), HANG_GUARD).await.unwrap();
    let second = start.elapsed();
    assert_eq!(&response[..], b"echo:again");
    assert!(second >= 60 * MS && second < SANITY, "{second:?}");
    assert_eq!(client.stats().connects, 1);

    let peer = peers.recv().await.unwrap();
    assert_ne!(peer, client.local_addr(), "the server sees the emulator's upstream socket");
    assert_eq!(peers.recv().await.unwrap(), peer, "one mapping for the connection");
    let forward = emulator.stats("us-east", "eu-west");
    let reverse = emulator.stats("eu-west", "us-east");
    assert_eq!(forward.mappings_created, 1);
    assert!(forward.packets_forwarded >= 2 && reverse.packets_forwarded >= 2, "{forward:?} {reverse:?}");
    assert_eq!(forward.packets_dropped() + reverse.packets_dropped(), 0);

    client.shutdown().await;
    server.shutdown().await;
    emulator.shutdown().await;
}
