//! `meridian bench --lag`: the cross-region replication lag of the changes one measured phase
//! wrote.
//!
//! Every node reports, per peer region, the all-time histogram of the lag of that region's
//! changes it applied (`lag_buckets` in `GET /api/v1/regions`: write HLC to applied here, 1 ms
//! buckets below 1 s). The bench snapshots every node of every region before the phase; after
//! it, waits until no node has a WAN backlog (so every change the phase wrote has been applied
//! somewhere, or the wait timed out, which the report says), snapshots again, and subtracts.
//! Each change is applied in a destination region by the one node its stream reached, so the
//! per-node differences summed over a region's nodes count each change once per destination
//! (plus redeliveries after a reconnect, which at-least-once delivery allows).
//!
//! Invariants: a pair's figures come only from samples recorded between the two snapshots; a
//! node whose total went down between them (it restarted) contributes its second snapshot
//! alone; a node that did not answer is named in the report, never silently skipped.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use meridian_client::RegionEndpoints;
use serde_json::{json, Value};

/// Lags at or above this (ms) share the histogram's overflow bucket, whose bound moves with
/// the largest lag seen; they are subtracted as one bucket.
const OVERFLOW_MS: u64 = 100_000;

/// Interval of the backlog polls while waiting for the streams to drain.
const DRAIN_POLL: Duration = Duration::from_millis(250);

/// Histogram buckets (upper bound ms -> count) per (destination region, node, source region).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LagSnapshot {
    nodes: BTreeMap<(String, String, String), BTreeMap<u64, u64>>,
    /// Nodes that did not answer, with the reason.
    pub failed: Vec<(String, String)>,
}

impl LagSnapshot {
    /// Adds one node's `GET /api/v1/regions` answer.
    pub fn add_node(&mut self, region: &str, node: &str, status: &Value) {
        for peer in status["peers"].as_array().into_iter().flatten() {
            let Some(source) = peer["region"].as_str() else { continue };
            let mut buckets = BTreeMap::new();
            for b in peer["lag_buckets"].as_array().into_iter().flatten() {
                if let (Some(le), Some(n)) = (b[0].as_u64(), b[1].as_u64()) {
                    *buckets.entry(le.min(OVERFLOW_MS)).or_insert(0) += n;
                }
            }
            self.nodes.insert((region.to_owned(), node.to_owned(), source.to_owned()), buckets);
        }
    }
}

/// The lag of one region pair over the phase.
#[derive(Debug, Clone, PartialEq)]
pub struct PairLag {
    /// Where the changes were written.
    pub source: String,
    /// Where they were applied.
    pub destination: String,
    /// Changes applied in the destination during the phase.
    pub samples: u64,
    /// Quantiles (ms), each the upper bound of its bucket.
    pub p50_ms: Option<u64>,
    /// p99.
    pub p99_ms: Option<u64>,
    /// p99.9.
    pub p999_ms: Option<u64>,
    /// The largest bucket with a sample (`OVERFLOW_MS` means "100 s or more").
    pub max_ms: Option<u64>,
}

/// The `p`-quantile of `(upper bound, count)` buckets in increasing order.
fn quantile(buckets: &BTreeMap<u64, u64>, total: u64, p: f64) -> Option<u64> {
    if total == 0 {
        return None;
    }
    let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (le, n) in buckets {
        seen += n;
        if seen >= rank {
            return Some(*le);
        }
    }
    buckets.keys().next_back().copied()
}

/// What `after` recorded beyond `before`, per (source, destination) pair with samples.
pub fn delta(before: &LagSnapshot, after: &LagSnapshot) -> Vec<PairLag> {
    let mut pairs: BTreeMap<(String, String), BTreeMap<u64, u64>> = BTreeMap::new();
    for ((dest, node, source), now) in &after.nodes {
        let then = before.nodes.get(&(dest.clone(), node.clone(), source.clone()));
        let restarted = then.is_some_and(|t| t.values().sum::<u64>() > now.values().sum::<u64>());
        let acc = pairs.entry((source.clone(), dest.clone())).or_default();
        for (le, n) in now {
            let old = if restarted { 0 } else { then.and_then(|t| t.get(le)).copied().unwrap_or(0) };
            let d = n.saturating_sub(old);
            if d > 0 {
                *acc.entry(*le).or_insert(0) += d;
            }
        }
    }
    pairs
        .into_iter()
        .filter(|(_, b)| !b.is_empty())
        .map(|((source, destination), b)| {
            let total = b.values().sum();
            PairLag {
                source,
                destination,
                samples: total,
                p50_ms: quantile(&b, total, 0.5),
                p99_ms: quantile(&b, total, 0.99),
                p999_ms: quantile(&b, total, 0.999),
                max_ms: b.keys().next_back().copied(),
            }
        })
        .collect()
}

async fn regions_status(http: &reqwest::Client, node: &str) -> Result<Value, String> {
    let base = if node.starts_with("http") { node.to_owned() } else { format!("http://{node}") };
    let resp = http.get(format!("{base}/api/v1/regions")).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {}: {}", status.as_u16(), body["message"].as_str().unwrap_or("")));
    }
    Ok(body)
}

/// Every node's lag histograms.
pub async fn snapshot(http: &reqwest::Client, regions: &[RegionEndpoints]) -> LagSnapshot {
    let mut snap = LagSnapshot::default();
    for r in regions {
        for node in &r.nodes {
            match regions_status(http, node).await {
                Ok(v) => snap.add_node(&r.name, node, &v),
                Err(e) => snap.failed.push((format!("{}/{node}", r.name), e)),
            }
        }
    }
    snap
}

/// Waits until no node of any region has a WAN backlog, at most `timeout`. Returns whether
/// it drained, and how long it waited.
pub async fn wait_drained(http: &reqwest::Client, regions: &[RegionEndpoints], timeout: Duration) -> (bool, Duration) {
    let start = Instant::now();
    loop {
        let mut backlog = 0u64;
        let mut unanswered = false;
        for r in regions {
            for node in &r.nodes {
                match regions_status(http, node).await {
                    Ok(v) => {
                        backlog += v["peers"]
                            .as_array()
                            .map_or(0, |a| a.iter().map(|p| p["backlog"].as_u64().unwrap_or(0)).sum())
                    }
                    Err(_) => unanswered = true,
                }
            }
        }
        if backlog == 0 && !unanswered {
            return (true, start.elapsed());
        }
        if start.elapsed() >= timeout {
            return (false, start.elapsed());
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

/// The report section.
pub fn report(pairs: &[PairLag], drained: bool, waited: Duration, failed: &[(String, String)]) -> Value {
    json!({
        "drained": drained,
        "drain_wait_ms": waited.as_secs_f64() * 1000.0,
        "pairs": pairs.iter().map(|p| json!({
            "source": p.source, "destination": p.destination, "samples": p.samples,
            "p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "p999_ms": p.p999_ms, "max_ms": p.max_ms,
        })).collect::<Vec<_>>(),
        "unanswered": failed.iter().map(|(n, e)| json!({"node": n, "error": e})).collect::<Vec<_>>(),
    })
}

/// The report section as table lines.
pub fn table(section: &Value) -> String {
    let mut out = String::from("replication lag (write HLC to applied in the other region) of the phase's changes:\n");
    let ms = |v: &Value| v.as_u64().map_or_else(|| "-".to_owned(), |x| x.to_string());
    let mut t = crate::cli::ctl::Table::new(&["From", "To", "Changes", "p50 ms", "p99 ms", "p99.9 ms", "max ms"]);
    for p in section["pairs"].as_array().into_iter().flatten() {
        t.row(vec![
            p["source"].as_str().unwrap_or("?").to_owned(),
            p["destination"].as_str().unwrap_or("?").to_owned(),
            p["samples"].to_string(),
            ms(&p["p50_ms"]),
            ms(&p["p99_ms"]),
            ms(&p["p999_ms"]),
            ms(&p["max_ms"]),
        ]);
    }
    out.push_str(&t.render());
    if section["drained"].as_bool() != Some(true) {
        out.push_str(&format!(
            "  WARNING: the WAN backlog had not drained after {:.0} ms: changes still in flight are missing\n",
            section["drain_wait_ms"].as_f64().unwrap_or(0.0)
        ));
    }
    for n in section["unanswered"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} did not answer: {}\n",
            n["node"].as_str().unwrap_or("?"),
            n["error"].as_str().unwrap_or("?")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(peers: &[(&str, &[(u64, u64)])]) -> Value {
        json!({"peers": peers.iter().map(|(r, b)| json!({"region": r, "backlog": 0, "lag_buckets": b})).collect::<Vec<_>>()})
    }

    #[test]
    fn the_delta_counts_only_samples_recorded_between_the_snapshots() {
        let mut before = LagSnapshot::default();
        before.add_node("eu-west", "n1", &status(&[("us-east", &[(40, 5), (900, 1)])]));
        let mut after = LagSnapshot::default();
        after.add_node("eu-west", "n1", &status(&[("us-east", &[(40, 5), (51, 60), (52, 30), (60, 9), (900, 1)])]));
        after.add_node("eu-west", "n2", &status(&[("us-east", &[(75, 1)])]));
        let pairs = delta(&before, &after);
        assert_eq!(pairs.len(), 1);
        let p = &pairs[0];
        assert_eq!((p.source.as_str(), p.destination.as_str()), ("us-east", "eu-west"));
        assert_eq!(p.samples, 100, "the 6 older samples are not counted; n2 is new");
        assert_eq!(p.p50_ms, Some(51));
        assert_eq!(p.p99_ms, Some(60));
        assert_eq!(p.p999_ms, Some(75));
        assert_eq!(p.max_ms, Some(75));
    }

    #[test]
    fn a_restarted_node_contributes_its_second_snapshot_and_overflow_is_one_bucket() {
        let mut before = LagSnapshot::default();
        before.add_node("eu-west", "n1", &status(&[("us-east", &[(50, 100)])]));
        before.add_node("us-east", "n1", &status(&[("eu-west", &[(120_000, 1)])]));
        let mut after = LagSnapshot::default();
        after.add_node("eu-west", "n1", &status(&[("us-east", &[(50, 3)])]));
        after.add_node("us-east", "n1", &status(&[("eu-west", &[(150_000, 2)])]));
        let pairs = delta(&before, &after);
        let by: BTreeMap<_, _> = pairs.iter().map(|p| (p.destination.as_str(), p)).collect();
        assert_eq!(by["eu-west"].samples, 3);
        assert_eq!(by["us-east"].samples, 1, "two overflow samples minus the one before");
        assert_eq!(by["us-east"].max_ms, Some(OVERFLOW_MS));
    }

    #[test]
    fn no_new_samples_no_pair() {
        let mut s = LagSnapshot::default();
        s.add_node("eu-west", "n1", &status(&[("us-east", &[(50, 100)])]));
        assert!(delta(&s, &s).is_empty());
        assert_eq!(quantile(&BTreeMap::new(), 0, 0.5), None);
    }
}
