//! HLC laws: ticks are strictly monotonic under arbitrary (even decreasing) physical times,
//! ticks after an accepted observe are above the observed timestamp, and observe rejects
//! exactly the timestamps beyond the max offset, counting each rejection.

use meridian_crdt::{CrdtError, Hlc, HlcClock, NodeId};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Event {
    Tick { now: u64 },
    Observe { now: u64, remote_ms: u64, remote_node: u64, logical: u64 },
}

const BASE: u64 = 1_700_000_000_000;

fn event() -> impl Strategy<Value = Event> {
    // Physical time jumps around a base, backwards as often as forwards.
    let now = (0u64..5_000).prop_map(|d| BASE + d);
    prop_oneof![
        3 => now.clone().prop_map(|now| Event::Tick { now }),
        2 => (now, 0u64..7_000, 1u64..5, 0u64..16)
            .prop_map(|(now, r, remote_node, logical)| Event::Observe { now, remote_ms: BASE + r, remote_node, logical }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn tick_is_strictly_monotonic_and_observe_is_bounded(
        max_offset in 0u64..2_000,
        events in proptest::collection::vec(event(), 1..40),
    ) {
        let mut clock = HlcClock::new(NodeId(9), max_offset);
        let mut high = Hlc::ZERO; // greatest timestamp issued or accepted
        let mut rejections = 0u64;
        for e in events {
            match e {
                Event::Tick { now } => {
                    let t = clock.tick(now);
                    prop_assert!(t > high, "tick {} not above {}", t, high);
                    prop_assert!(t.physical_ms() >= now, "tick behind physical time");
                    prop_assert_eq!(t.node(), NodeId(9));
                    high = t;
                }
                Event::Observe { now, remote_ms, remote_node, logical } => {
                    let remote = Hlc::new(Hlc::from_physical_ms(remote_ms, NodeId(remote_node)).time_ntp64() + logical, NodeId(remote_node));
                    let before = clock.clone();
                    match clock.observe(remote, now) {
                        Ok(()) => {
                            prop_assert!(remote_ms <= now + max_offset);
                            if remote.time_ntp64() > high.time_ntp64() {
                                high = remote;
                            }
                        }
                        Err(CrdtError::ClockTooFarAhead { remote_ms: r, now_ms, max_offset_ms }) => {
                            prop_assert!(remote_ms > now + max_offset);
                            prop_assert_eq!((r, now_ms, max_offset_ms), (remote_ms, now, max_offset));
                            rejections += 1;
                            // A rejection leaves the clock as it was, apart from the counter.
                            prop_assert_eq!(clock.last(), before.last());
                        }
                        Err(other) => prop_assert!(false, "unexpected error {:?}", other),
                    }
                    prop_assert_eq!(clock.rejected(), rejections);
                }
            }
        }
        let t = clock.tick(BASE);
        prop_assert!(t > high);
    }

    #[test]
    fn physical_ms_round_trips(ms in 0u64..(u32::MAX as u64 * 1000), node in any::<u64>()) {
        let h = Hlc::from_physical_ms(ms, NodeId(node));
        prop_assert_eq!(h.physical_ms(), ms);
        prop_assert_eq!(h.node(), NodeId(node));
        // Later ms, greater timestamp, whatever the node ids.
        prop_assert!(Hlc::from_physical_ms(ms + 1, NodeId(0)) > Hlc::from_physical_ms(ms, NodeId(u64::MAX)));
    }

    #[test]
    fn uhlc_conversion_round_trips_and_preserves_time(time in any::<u64>(), node in any::<u64>()) {
        let h = Hlc::new(time, NodeId(node));
        let u = h.to_uhlc();
        prop_assert_eq!(u.get_time().as_u64(), time);
        prop_assert_eq!(Hlc::from_uhlc(&u), Ok(h));
    }

    #[test]
    fn hlc_order_is_time_then_numeric_node(a in (any::<u64>(), any::<u64>()), b in (any::<u64>(), any::<u64>())) {
        let (x, y) = (Hlc::new(a.0, NodeId(a.1)), Hlc::new(b.0, NodeId(b.1)));
        prop_assert_eq!(x.cmp(&y), a.cmp(&b));
    }
}

#[test]
fn tick_keeps_increasing_when_physical_time_jumps_back_an_hour() {
    let mut c = HlcClock::new(NodeId(1), 500);
    let a = c.tick(BASE + 3_600_000);
    let b = c.tick(BASE);
    assert!(b > a);
    assert_eq!(b.physical_ms(), BASE + 3_600_000);
}

#[test]
fn observe_exactly_at_the_offset_is_accepted() {
    let mut c = HlcClock::new(NodeId(1), 500);
    assert!(c.observe(Hlc::from_physical_ms(BASE + 500, NodeId(2)), BASE).is_ok());
    assert!(c.observe(Hlc::from_physical_ms(BASE + 501, NodeId(2)), BASE).is_err());
    assert_eq!(c.rejected(), 1);
}
