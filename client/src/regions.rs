//! [`RegionTable`]: which region a request goes to. A state machine without I/O or clock
//! reads: the client's driver feeds it probe results and failures with the time they happened.
//!
//! - Each region has a measured **RTT** (the median of a probe's `GET /healthz` round trips)
//!   and may be **down** until some instant (it failed a request or a probe). Requests go to
//!   the regions in [`RegionTable::order`]: the regions that are up by RTT (unmeasured ones
//!   after measured ones), then the down ones, soonest back first, so a client whose every
//!   region failed still tries them.
//! - RTTs within a **tolerance** of the best one count as equal, and the configured order
//!   breaks the tie: equidistant regions (all of `meridian dev` on loopback, two zones of one
//!   metro) do not take turns with the jitter of each probe, which would send a client's
//!   consecutive requests to regions that have not replicated each other's writes yet.
//! - A down region comes back only through a successful probe made after its down time ran
//!   out, so a region that keeps failing is not hammered by live traffic; a failed probe keeps
//!   (or puts) it down for another period.
//! - The **current** region is the one that served the last successful request; every change
//!   of it is a [`RegionSwitch`], a failover if the previous region was down at that moment,
//!   else a move to a nearer region. The last [`MAX_SWITCHES`] are kept (for RTO measurement).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Region switches kept.
pub const MAX_SWITCHES: usize = 1024;

/// Why the current region changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchReason {
    /// The previous region had failed (requests, or a probe).
    Failover,
    /// The previous region was up; this one is nearer (or came back).
    Nearer,
}

impl SwitchReason {
    /// `failover` or `nearer`.
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchReason::Failover => "failover",
            SwitchReason::Nearer => "nearer",
        }
    }
}

/// A change of the region serving the client's requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSwitch {
    /// When the first request succeeded in the new region.
    pub at: Instant,
    /// The same instant, in ms since the UNIX epoch.
    pub unix_ms: u64,
    /// The region before.
    pub from: String,
    /// The region after.
    pub to: String,
    /// Why.
    pub reason: SwitchReason,
    /// When the previous region was marked down (for a failover): `at - down_since` is the
    /// client's recovery time.
    pub down_since: Option<Instant>,
}

/// A region that failed, and until when it is avoided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// When it was first marked down (kept while it stays down).
    pub since: Instant,
    /// Until when it is avoided; then a probe may bring it back.
    pub until: Instant,
    /// The last failure.
    pub reason: String,
}

/// One region as the table knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionState {
    /// Its name.
    pub name: String,
    /// Base URLs (`http://HOST:PORT`) of the nodes it was configured with.
    pub nodes: Vec<String>,
    /// The last measured RTT.
    pub rtt: Option<Duration>,
    /// Whether (and why) it is down.
    pub down: Option<Down>,
    /// When it was last probed.
    pub last_probe: Option<Instant>,
}

/// The regions, their health and the current one.
#[derive(Debug, Clone)]
pub struct RegionTable {
    regions: Vec<RegionState>,
    tolerance: Duration,
    current: Option<usize>,
    switches: VecDeque<RegionSwitch>,
}

impl RegionTable {
    /// A table of these regions (name, node base URLs), none measured yet; RTTs within
    /// `tolerance` of the best count as equal.
    pub fn new(regions: Vec<(String, Vec<String>)>, tolerance: Duration) -> RegionTable {
        let regions = regions
            .into_iter()
            .map(|(name, nodes)| RegionState { name, nodes, rtt: None, down: None, last_probe: None })
            .collect();
        RegionTable { regions, tolerance, current: None, switches: VecDeque::new() }
    }

    /// The regions.
    pub fn regions(&self) -> &[RegionState] {
        &self.regions
    }

    /// Region `i`.
    pub fn get(&self, i: usize) -> &RegionState {
        &self.regions[i]
    }

    /// The region that served the last successful request.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The regions in the order requests should try them (see the module documentation).
    pub fn order(&self) -> Vec<usize> {
        let (mut up, mut down): (Vec<usize>, Vec<usize>) =
            (0..self.regions.len()).partition(|&i| self.regions[i].down.is_none());
        let best = up.iter().filter_map(|&i| self.regions[i].rtt).min();
        up.sort_by_key(|&i| {
            let rtt = self.regions[i].rtt;
            let near = matches!((best, rtt), (Some(b), Some(r)) if r <= b.saturating_add(self.tolerance));
            // The near ones in configuration order, then the others by RTT, unmeasured last.
            let class = if near {
                0
            } else if rtt.is_some() {
                1
            } else {
                2
            };
            (class, if near { Duration::ZERO } else { rtt.unwrap_or(Duration::MAX) }, i)
        });
        down.sort_by_key(|&i| (self.regions[i].down.as_ref().map(|d| d.until), i));
        up.extend(down);
        up
    }

    /// Marks region `i` down until `now + down_for` (extending a down period it is already
    /// in).
    pub fn mark_down(&mut self, i: usize, now: Instant, down_for: Duration, reason: impl Into<String>) {
        let r = &mut self.regions[i];
        let until = now + down_for;
        match &mut r.down {
            Some(d) => {
                d.until = d.until.max(until);
                d.reason = reason.into();
            }
            None => r.down = Some(Down { since: now, until, reason: reason.into() }),
        }
    }

    /// Whether region `i` should be probed at `now`: never probed, or its last probe is
    /// `interval` old, or it is down and its down time ran out after its last probe.
    pub fn probe_due(&self, i: usize, now: Instant, interval: Duration) -> bool {
        let r = &self.regions[i];
        let Some(last) = r.last_probe else { return true };
        if now.saturating_duration_since(last) >= interval {
            return true;
        }
        r.down.as_ref().is_some_and(|d| now >= d.until && last < d.until)
    }

    /// Records a probe of region `i` that ended at `now`: its RTT, or why it failed. A
    /// success brings a down region back if its down time has run out; a failure puts it
    /// down for `down_for`.
    pub fn probed(&mut self, i: usize, now: Instant, result: Result<Duration, String>, down_for: Duration) {
        self.regions[i].last_probe = Some(now);
        match result {
            Ok(rtt) => {
                let r = &mut self.regions[i];
                r.rtt = Some(rtt);
                if r.down.as_ref().is_some_and(|d| now >= d.until) {
                    r.down = None;
                }
            }
            Err(reason) => self.mark_down(i, now, down_for, format!("probe failed: {reason}")),
        }
    }

    /// Records a successful request in region `i` at `now` (`unix_ms` the same instant on the
    /// wall clock); returns the switch if the current region changed.
    pub fn served(&mut self, i: usize, now: Instant, unix_ms: u64) -> Option<RegionSwitch> {
        let previous = self.current.replace(i);
        let from = previous.filter(|&p| p != i)?;
        let down_since = self.regions[from].down.as_ref().map(|d| d.since);
        let switch = RegionSwitch {
            at: now,
            unix_ms,
            from: self.regions[from].name.clone(),
            to: self.regions[i].name.clone(),
            reason: if down_since.is_some() { SwitchReason::Failover } else { SwitchReason::Nearer },
            down_since,
        };
        if self.switches.len() == MAX_SWITCHES {
            self.switches.pop_front();
        }
        self.switches.push_back(switch.clone());
        Some(switch)
    }

    /// The region switches so far (the last [`MAX_SWITCHES`]), oldest first.
    pub fn switches(&self) -> Vec<RegionSwitch> {
        self.switches.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOWN: Duration = Duration::from_secs(5);

    fn table() -> RegionTable {
        table_with(Duration::ZERO)
    }

    fn table_with(tolerance: Duration) -> RegionTable {
        RegionTable::new(
            vec![
                ("a".into(), vec!["http://a:1".into()]),
                ("b".into(), vec!["http://b:1".into()]),
                ("c".into(), vec!["http://c:1".into()]),
            ],
            tolerance,
        )
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn regions_are_ordered_by_rtt_unmeasured_last() {
        let t0 = Instant::now();
        let mut t = table();
        assert_eq!(t.order(), [0, 1, 2], "nothing measured: configuration order");
        t.probed(2, t0, Ok(ms(5)), DOWN);
        t.probed(0, t0, Ok(ms(80)), DOWN);
        assert_eq!(t.order(), [2, 0, 1]);
        t.probed(1, t0, Ok(ms(1)), DOWN);
        assert_eq!(t.order(), [1, 2, 0]);
    }

    #[test]
    fn rtts_within_the_tolerance_tie_and_the_configured_order_breaks_it() {
        let t0 = Instant::now();
        let mut t = table_with(ms(2));
        t.probed(0, t0, Ok(ms(3)), DOWN);
        t.probed(1, t0, Ok(ms(40)), DOWN);
        t.probed(2, t0, Ok(ms(2)), DOWN);
        assert_eq!(t.order(), [0, 2, 1], "a (3 ms) is within 2 ms of c (2 ms): configuration order");
        t.probed(0, t0, Ok(ms(5)), DOWN);
        assert_eq!(t.order(), [2, 0, 1], "a (5 ms) is not");
    }

    #[test]
    fn a_down_region_goes_last_and_returns_only_through_a_late_enough_probe() {
        let t0 = Instant::now();
        let mut t = table();
        for (i, rtt) in [(0, 1), (1, 2), (2, 3)] {
            t.probed(i, t0, Ok(ms(rtt)), DOWN);
        }
        t.mark_down(0, t0, DOWN, "timeout");
        assert_eq!(t.order(), [1, 2, 0]);
        // A probe that succeeds before the down time ran out does not bring it back.
        t.probed(0, t0 + ms(1000), Ok(ms(1)), DOWN);
        assert!(t.get(0).down.is_some());
        assert!(!t.probe_due(0, t0 + ms(2000), Duration::from_secs(10)));
        assert!(t.probe_due(0, t0 + DOWN, Duration::from_secs(10)), "due once the down time ran out");
        t.probed(0, t0 + DOWN, Ok(ms(1)), DOWN);
        assert!(t.get(0).down.is_none());
        assert_eq!(t.order(), [0, 1, 2]);
    }

    #[test]
    fn a_failed_probe_keeps_a_region_down_and_all_down_still_gives_an_order() {
        let t0 = Instant::now();
        let mut t = table();
        t.mark_down(1, t0, DOWN, "x");
        t.mark_down(0, t0 + ms(10), DOWN, "y");
        t.mark_down(2, t0 + ms(20), DOWN, "z");
        assert_eq!(t.order(), [1, 0, 2], "soonest back first");
        t.probed(1, t0 + DOWN, Err("refused".into()), DOWN);
        let d = t.get(1).down.clone().expect("still down");
        assert_eq!(d.since, t0, "the first failure is kept");
        assert_eq!(d.until, t0 + DOWN + DOWN);
        assert!(d.reason.contains("refused"));
        assert_eq!(t.order(), [0, 2, 1]);
    }

    #[test]
    fn probes_are_due_every_interval() {
        let t0 = Instant::now();
        let mut t = table();
        assert!(t.probe_due(0, t0, Duration::from_secs(10)));
        t.probed(0, t0, Ok(ms(1)), DOWN);
        assert!(!t.probe_due(0, t0 + ms(9_999), Duration::from_secs(10)));
        assert!(t.probe_due(0, t0 + ms(10_000), Duration::from_secs(10)));
    }

    #[test]
    fn switches_record_failovers_and_moves_to_nearer_regions() {
        let t0 = Instant::now();
        let mut t = table();
        assert_eq!(t.served(0, t0, 1), None, "the first region is not a switch");
        assert_eq!(t.served(0, t0, 2), None);
        t.mark_down(0, t0 + ms(5), DOWN, "timeout");
        let s = t.served(1, t0 + ms(30), 3).expect("switch");
        assert_eq!((s.from.as_str(), s.to.as_str(), s.reason), ("a", "b", SwitchReason::Failover));
        assert_eq!(s.down_since, Some(t0 + ms(5)));
        assert_eq!(s.at - s.down_since.expect("down"), ms(25), "the recovery time");
        let s = t.served(2, t0 + ms(40), 4).expect("switch");
        assert_eq!(s.reason, SwitchReason::Nearer);
        assert_eq!(t.current(), Some(2));
        assert_eq!(t.switches().len(), 2);
    }

    #[test]
    fn switches_are_bounded() {
        let t0 = Instant::now();
        let mut t = table();
        for n in 0..(MAX_SWITCHES as u64 + 10) {
            t.served((n % 2) as usize, t0, n);
        }
        let s = t.switches();
        assert_eq!(s.len(), MAX_SWITCHES);
        assert_eq!(s[0].unix_ms, 10, "the oldest were dropped (n = 0 was not a switch)");
    }
}
