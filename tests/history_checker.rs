//! Unit tests of the history recorder and the contract checker (`tests/common/history.rs`),
//! without a cluster: histories and final states are built by hand, and each test shows that
//! one rule catches what it must (or lets through what it must), so each can fail.

mod common;

use std::collections::BTreeSet;

use meridian_history::{
    check, classify, parse_read, Completion, Event, EventKind, FinalState, History, Observed, Op, OpResult,
    ReadFailure, Report, Transport,
};
use serde_json::json;

const KS: &str = "default";

fn put(key: &str, value: &str) -> Op {
    Op::Put { keyspace: KS.into(), key: key.into(), value: value.into() }
}

fn del(key: &str) -> Op {
    Op::Delete { keyspace: KS.into(), key: key.into() }
}

fn get(key: &str) -> Op {
    Op::Get { keyspace: KS.into(), key: key.into() }
}

fn mvr_put(key: &str, value: &str, context: Option<&str>) -> Op {
    Op::MvrPut { keyspace: "carts".into(), key: key.into(), value: value.into(), context: context.map(String::from) }
}

fn incr(key: &str, delta: i64) -> Op {
    Op::Incr { keyspace: "counters".into(), key: key.into(), delta }
}

fn counter_get(key: &str) -> Op {
    Op::CounterGet { keyspace: "counters".into(), key: key.into() }
}

fn sadd(key: &str, members: &[&str]) -> Op {
    Op::Sadd { keyspace: "sets".into(), key: key.into(), members: members.iter().map(|m| m.to_string()).collect() }
}

fn srem(key: &str, members: &[&str], context: Option<&str>) -> Op {
    Op::Srem {
        keyspace: "sets".into(),
        key: key.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        context: context.map(String::from),
    }
}

fn lww(value: &str, version: &str) -> Observed {
    Observed::Lww { value: value.into(), version: version.into() }
}

fn set(members: &[&str]) -> Observed {
    Observed::Set(members.iter().map(|m| m.to_string()).collect())
}

fn siblings(values: &[&str]) -> Observed {
    Observed::Mvr { siblings: values.iter().map(|m| m.to_string()).collect() }
}

const REGIONS: [&str; 2] = ["eu", "us"];

/// Every region (at ALL) and both nodes of each region (at ONE) return the same values.
fn converged(values: &[(&str, &str, Observed)]) -> FinalState {
    let mut f = FinalState::default();
    for region in REGIONS {
        for (ks, key, obs) in values {
            f.set_region(region, ks, key, obs.clone());
            for node in ["n1", "n2"] {
                f.set_node(region, &format!("{region}-{node}"), ks, key, obs.clone());
            }
        }
    }
    f
}

/// Op `op` acknowledged with `result`.
fn acked(h: &History, op: Op, result: OpResult) -> u64 {
    let id = h.invoke("c1", "eu", op);
    h.ok(id, result);
    id
}

fn written(h: &History, op: Op, version: &str) -> u64 {
    acked(h, op, OpResult::written(version))
}

fn indeterminate(h: &History, op: Op) -> u64 {
    let id = h.invoke("c1", "eu", op);
    h.info(id, "timed out");
    id
}

fn failed(h: &History, op: Op) -> u64 {
    let id = h.invoke("c1", "eu", op);
    h.fail(id, "503 unavailable: not sent to any replica");
    id
}

fn run(h: &History, f: &FinalState) -> Report {
    let report = check(&h.events(), f);
    println!("{report:#}");
    report
}

/// The contracts with violations, each once.
fn contracts(r: &Report) -> BTreeSet<u8> {
    r.violations.iter().map(|v| v.contract).collect()
}

/// Asserts a violation of `contract` whose message contains `needle`.
fn assert_violation(r: &Report, contract: u8, needle: &str) {
    assert!(!r.ok, "expected a violation of contract {contract}:\n{r}");
    assert!(
        r.violations.iter().any(|v| v.contract == contract && v.message.contains(needle)),
        "expected a violation of contract {contract} mentioning {needle:?}:\n{r:#}"
    );
}

/// A history touching every type, with every outcome, that the final state honours.
fn mixed_history() -> (History, FinalState) {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    written(&h, put("k", "b"), "200/1");
    failed(&h, put("k", "never"));
    acked(&h, get("k"), OpResult::lww(Some(("b", "200/1"))));
    written(&h, incr("hits", 5), "100/1");
    indeterminate(&h, incr("hits", 2));
    failed(&h, incr("hits", 100));
    acked(&h, counter_get("hits"), OpResult::counter(5));
    written(&h, sadd("tags", &["x", "y"]), "100/1");
    written(&h, srem("tags", &["y"], Some("ctx")), "101/1");
    indeterminate(&h, sadd("tags", &["z"]));
    written(&h, mvr_put("cart", "apple", None), "100/1");
    written(&h, mvr_put("cart", "pear", None), "100/2");
    let f = converged(&[
        (KS, "k", lww("b", "200/1")),
        ("counters", "hits", Observed::Counter(7)),
        ("sets", "tags", set(&["x", "z"])),
        ("carts", "cart", siblings(&["pear", "apple"])),
    ]);
    (h, f)
}

// --- the recorder and the format -----------------------------------------------------------

#[test]
fn a_correct_history_passes_and_counts_ops_by_outcome() {
    let (h, f) = mixed_history();
    let r = run(&h, &f);
    r.assert_ok();
    assert_eq!(r.stats.keys, 4);
    let put = r.stats.by_op["put"];
    assert_eq!((put.invoked, put.ok, put.fail, put.info, put.pending), (3, 2, 1, 0, 0));
    let incr = r.stats.by_op["incr"];
    assert_eq!((incr.invoked, incr.ok, incr.fail, incr.info), (3, 1, 1, 1));
    assert!(r.to_string().starts_with("history check OK"), "{r}");
}

#[test]
fn jsonl_round_trip_keeps_every_event_and_the_verdict() {
    let (h, f) = mixed_history();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    h.write_jsonl(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["kind"], "invoke");
    assert_eq!(first["op"], json!({"type": "put", "keyspace": "default", "key": "k", "value": "a"}));
    let second: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!((second["kind"].as_str(), second["version"].as_str()), (Some("ok"), Some("100/1")));
    assert_eq!(first["id"], second["id"]);

    let back = History::read_jsonl(&path).unwrap();
    assert_eq!(back.events(), h.events());
    check(&back.events(), &f).assert_ok();
    // A history read back goes on with fresh ids.
    let id = back.invoke("c2", "us", get("k"));
    assert!(h.events().iter().all(|e| e.id != id));
}

#[test]
fn a_bad_history_line_names_its_line_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "\n{\"t\": 0}\n").unwrap();
    let err = History::read_jsonl(&path).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn concurrent_clients_record_a_consistent_history() {
    let h = History::new();
    std::thread::scope(|s| {
        for c in 0..4 {
            let h = &h;
            s.spawn(move || {
                for i in 0..50 {
                    let id = h.invoke(&format!("c{c}"), "eu", incr("n", 1));
                    if i % 2 == 0 {
                        h.ok(id, OpResult::written("1/1"));
                    } else {
                        h.info(id, "timeout");
                    }
                }
            });
        }
    });
    let events = h.events();
    assert_eq!(events.len(), 400);
    let ids: BTreeSet<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 200, "ids are unique per op");
    assert!(events.windows(2).all(|w| w[0].t <= w[1].t), "times follow the order of the lines");
    // 100 acknowledged +1, 100 indeterminate +1: [100, 200].
    check(&events, &converged(&[("counters", "n", Observed::Counter(150))])).assert_ok();
    assert_violation(&check(&events, &converged(&[("counters", "n", Observed::Counter(99))])), 4, "outside [100, 200]");
}

#[test]
#[should_panic(expected = "not an open invocation")]
fn completing_an_op_twice_is_a_bug_of_the_workload() {
    let h = History::new();
    let id = h.invoke("c1", "eu", get("k"));
    h.ok(id, OpResult::lww(None));
    h.info(id, "again");
}

#[test]
fn a_completion_without_invoke_is_a_malformed_history() {
    let h = History::new();
    let mut events = h.events();
    events.push(Event {
        t: 0,
        client: "c1".into(),
        region: "eu".into(),
        kind: EventKind::Ok,
        op: put("k", "a"),
        id: 7,
        result: OpResult::written("1/1"),
        reason: None,
    });
    let r = check(&events, &converged(&[(KS, "k", Observed::Absent)]));
    assert_violation(&r, 0, "without an invoke");
}

// --- contracts 2 and 3: convergence --------------------------------------------------------

#[test]
fn divergent_nodes_of_a_region_violate_contract_2() {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    written(&h, put("k", "b"), "200/1");
    let mut f = converged(&[(KS, "k", lww("b", "200/1"))]);
    f.set_node("us", "us-n2", KS, "k", lww("a", "100/1"));
    let r = run(&h, &f);
    assert_violation(&r, 2, "nodes of region us disagree");
    assert!(!contracts(&r).contains(&3), "the regions agree at ALL:\n{r}");
    // The stale node is also checked on its own: it lost the latest acknowledged write.
    assert_violation(&r, 5, "node us-n2 of region us");
}

#[test]
fn a_node_that_could_not_be_read_violates_contract_2() {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    let mut f = converged(&[(KS, "k", lww("a", "100/1"))]);
    f.by_node.get_mut("eu").unwrap().get_mut("eu-n1").unwrap().clear();
    f.errors.push(ReadFailure {
        region: "eu".into(),
        node: Some("eu-n1".into()),
        keyspace: KS.into(),
        key: "k".into(),
        reason: "connection refused".into(),
    });
    let r = run(&h, &f);
    assert_violation(&r, 2, "final read failed: connection refused");
    assert_eq!(r.violations.len(), 1, "the failure is reported once, not also as a missing reading:\n{r}");
}

#[test]
fn divergent_regions_violate_contract_3_even_when_each_is_plausible() {
    let h = History::new();
    written(&h, incr("n", 5), "1/1");
    indeterminate(&h, incr("n", 2));
    // Both 5 and 7 lie in [5, 7]: only convergence can be broken.
    let mut f = converged(&[("counters", "n", Observed::Counter(5))]);
    f.set_region("us", "counters", "n", Observed::Counter(7));
    f.set_node("us", "us-n1", "counters", "n", Observed::Counter(7));
    f.set_node("us", "us-n2", "counters", "n", Observed::Counter(7));
    let r = run(&h, &f);
    assert_violation(&r, 3, "regions disagree: eu: counter 5; us: counter 7");
    assert_eq!(contracts(&r), BTreeSet::from([3]));
}

#[test]
fn a_key_the_history_touched_but_a_region_did_not_report_violates_contract_3() {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    written(&h, put("other", "b"), "100/1");
    let r = run(&h, &converged(&[(KS, "k", lww("a", "100/1"))]));
    assert_violation(&r, 3, "region eu: no final reading");
    assert!(r.violations.iter().all(|v| v.key == "other"), "{r}");
}

#[test]
fn an_empty_final_state_is_not_a_pass() {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    assert_violation(&run(&h, &FinalState::default()), 0, "no region");
}

// --- contract 4: counters ------------------------------------------------------------------

#[test]
fn a_counter_below_the_acknowledged_sum_lost_an_update() {
    let h = History::new();
    written(&h, incr("n", 5), "1/1");
    written(&h, incr("n", 3), "2/1");
    check(&h.events(), &converged(&[("counters", "n", Observed::Counter(8))])).assert_ok();
    let r = run(&h, &converged(&[("counters", "n", Observed::Counter(7))]));
    assert_violation(&r, 4, "counter 7 outside [8, 8]");
    assert_violation(&r, 4, "acknowledged increments lost");
}

#[test]
fn indeterminate_positive_deltas_widen_the_upper_bound_only() {
    let h = History::new();
    written(&h, incr("n", 5), "1/1");
    indeterminate(&h, incr("n", 2));
    for ok in [5, 6, 7] {
        check(&h.events(), &converged(&[("counters", "n", Observed::Counter(ok))])).assert_ok();
    }
    assert_violation(&run(&h, &converged(&[("counters", "n", Observed::Counter(4))])), 4, "outside [5, 7]");
    assert_violation(&run(&h, &converged(&[("counters", "n", Observed::Counter(8))])), 4, "outside [5, 7]");
}

#[test]
fn indeterminate_negative_deltas_widen_the_lower_bound() {
    let h = History::new();
    written(&h, incr("n", 10), "1/1");
    written(&h, incr("n", -1), "2/1");
    indeterminate(&h, incr("n", -3));
    indeterminate(&h, incr("n", 4));
    // Acknowledged 9; maybe -3, maybe +4: [6, 13].
    for ok in [6, 9, 13] {
        check(&h.events(), &converged(&[("counters", "n", Observed::Counter(ok))])).assert_ok();
    }
    assert_violation(&run(&h, &converged(&[("counters", "n", Observed::Counter(5))])), 4, "outside [6, 13]");
    assert_violation(&run(&h, &converged(&[("counters", "n", Observed::Counter(14))])), 4, "outside [6, 13]");
}

#[test]
fn failed_deltas_are_excluded_and_pending_ones_are_indeterminate() {
    let h = History::new();
    written(&h, incr("n", 1), "1/1");
    failed(&h, incr("n", 100));
    h.invoke("c9", "eu", incr("n", 10)); // never completed: the client died
    check(&h.events(), &converged(&[("counters", "n", Observed::Counter(11))])).assert_ok();
    assert_violation(&run(&h, &converged(&[("counters", "n", Observed::Counter(101))])), 4, "outside [1, 11]");
}

#[test]
fn a_counter_read_outside_what_earlier_increments_allow_is_reported() {
    let h = History::new();
    written(&h, incr("n", 2), "1/1");
    acked(&h, counter_get("n"), OpResult::counter(3));
    written(&h, incr("n", 1), "2/1");
    // The final value is fine; the read saw 3 before the +1 was sent.
    let r = run(&h, &converged(&[("counters", "n", Observed::Counter(3))]));
    assert_violation(&r, 4, "returned 3, outside what earlier increments allow [0, 2]");
}

// --- contract 4: sets ----------------------------------------------------------------------

#[test]
fn a_lost_acknowledged_set_add_is_reported() {
    let h = History::new();
    written(&h, sadd("s", &["a", "b"]), "1/1");
    let r = run(&h, &converged(&[("sets", "s", set(&["a"]))]));
    assert_violation(&r, 4, "member \"b\" lost");
}

#[test]
fn an_add_followed_by_a_remove_that_may_have_observed_it_is_not_required() {
    for remove in [
        |h: &History| written(h, srem("s", &["a"], Some("ctx")), "2/1"),
        |h: &History| written(h, srem("s", &["a"], None), "2/1"),
        |h: &History| indeterminate(h, srem("s", &["a"], Some("ctx"))),
    ] {
        let h = History::new();
        written(&h, sadd("s", &["a"]), "1/1");
        remove(&h);
        check(&h.events(), &converged(&[("sets", "s", set(&[]))])).assert_ok();
        check(&h.events(), &converged(&[("sets", "s", set(&["a"]))])).assert_ok();
    }
}

#[test]
fn a_remove_with_a_context_invoked_before_the_add_cannot_have_observed_it() {
    let h = History::new();
    let rem = h.invoke("c2", "us", srem("s", &["a"], Some("ctx-from-an-earlier-read")));
    written(&h, sadd("s", &["a"]), "1/1");
    h.ok(rem, OpResult::written("2/2"));
    assert_violation(&run(&h, &converged(&[("sets", "s", set(&[]))])), 4, "member \"a\" lost");
}

#[test]
fn a_remove_without_context_overlapping_the_add_may_have_observed_it() {
    let h = History::new();
    let rem = h.invoke("c2", "us", srem("s", &["a"], None));
    written(&h, sadd("s", &["a"]), "1/1");
    h.ok(rem, OpResult::written("2/2"));
    check(&h.events(), &converged(&[("sets", "s", set(&[]))])).assert_ok();
    // But one that finished before the add started cannot have.
    let h = History::new();
    written(&h, srem("s", &["a"], None), "1/2");
    written(&h, sadd("s", &["a"]), "2/1");
    assert_violation(&run(&h, &converged(&[("sets", "s", set(&[]))])), 4, "member \"a\" lost");
}

#[test]
fn a_failed_remove_does_not_excuse_a_lost_add() {
    let h = History::new();
    written(&h, sadd("s", &["a"]), "1/1");
    failed(&h, srem("s", &["a"], None));
    assert_violation(&run(&h, &converged(&[("sets", "s", set(&[]))])), 4, "member \"a\" lost");
}

#[test]
fn a_set_member_never_added_is_reported_and_indeterminate_adds_may_appear() {
    let h = History::new();
    written(&h, sadd("s", &["a"]), "1/1");
    indeterminate(&h, sadd("s", &["maybe"]));
    failed(&h, sadd("s", &["refused"]));
    check(&h.events(), &converged(&[("sets", "s", set(&["a", "maybe"]))])).assert_ok();
    let r = run(&h, &converged(&[("sets", "s", set(&["a", "ghost", "refused"]))]));
    assert_violation(&r, 4, "member \"ghost\" was never added");
    assert_violation(&r, 4, "member \"refused\" was never added");
}

// --- contract 5: LWW -----------------------------------------------------------------------

#[test]
fn lww_final_value_is_the_acknowledged_write_with_the_greatest_version() {
    let h = History::new();
    // Recorded out of version order: versions, not the order of acknowledgements, decide.
    written(&h, put("k", "late-clock"), "300/1");
    written(&h, put("k", "early-clock"), "200/1");
    check(&h.events(), &converged(&[(KS, "k", lww("late-clock", "300/1"))])).assert_ok();
    let r = run(&h, &converged(&[(KS, "k", lww("early-clock", "200/1"))]));
    assert_violation(&r, 5, "older than the latest acknowledged write");
}

#[test]
fn lww_versions_compare_as_numbers_time_then_node_id() {
    let h = History::new();
    written(&h, put("k", "t99"), "99/1");
    written(&h, put("k", "t100-node2"), "100/2");
    written(&h, put("k", "t100-node10"), "100/10");
    // As strings, "99/1" and then "100/2" would sort last.
    check(&h.events(), &converged(&[(KS, "k", lww("t100-node10", "100/10"))])).assert_ok();
    assert_violation(&run(&h, &converged(&[(KS, "k", lww("t100-node2", "100/2"))])), 5, "older");
    assert_violation(&run(&h, &converged(&[(KS, "k", lww("t99", "99/1"))])), 5, "older");
}

#[test]
fn lww_an_indeterminate_write_may_win_but_only_with_a_greater_version() {
    let h = History::new();
    written(&h, put("k", "acked"), "200/1");
    indeterminate(&h, put("k", "maybe"));
    check(&h.events(), &converged(&[(KS, "k", lww("acked", "200/1"))])).assert_ok();
    check(&h.events(), &converged(&[(KS, "k", lww("maybe", "250/3"))])).assert_ok();
    assert_violation(&run(&h, &converged(&[(KS, "k", lww("maybe", "150/3"))])), 5, "older");
    // A failed write may not win at all.
    let h = History::new();
    written(&h, put("k", "acked"), "200/1");
    failed(&h, put("k", "refused"));
    assert_violation(&run(&h, &converged(&[(KS, "k", lww("refused", "250/3"))])), 7, "never written");
}

#[test]
fn lww_absent_after_an_acknowledged_put_is_a_lost_write_unless_a_delete_may_have_won() {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    assert_violation(&run(&h, &converged(&[(KS, "k", Observed::Absent)])), 5, "absent, but the latest");
    indeterminate(&h, del("k"));
    check(&h.events(), &converged(&[(KS, "k", Observed::Absent)])).assert_ok();
}

#[test]
fn lww_the_acknowledged_version_with_another_value_is_reported() {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    written(&h, put("k", "b"), "200/1");
    let r = run(&h, &converged(&[(KS, "k", lww("a", "200/1"))]));
    assert_violation(&r, 5, "carries the version of op");
}

#[test]
fn lww_a_newer_version_no_attempted_write_can_explain_is_reported() {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    written(&h, put("k", "b"), "200/1");
    let r = run(&h, &converged(&[(KS, "k", lww("a", "300/1"))]));
    assert_violation(&r, 5, "no indeterminate write wrote it");
}

#[test]
fn lww_an_acknowledged_write_without_a_version_is_reported() {
    let h = History::new();
    acked(&h, put("k", "a"), OpResult::default());
    assert_violation(&run(&h, &converged(&[(KS, "k", lww("a", "100/1"))])), 5, "no readable version");
}

// --- contract 6: MVR -----------------------------------------------------------------------

#[test]
fn a_missing_mvr_sibling_is_reported() {
    let h = History::new();
    written(&h, mvr_put("cart", "apple", None), "100/1");
    written(&h, mvr_put("cart", "pear", None), "100/2");
    let r = run(&h, &converged(&[("carts", "cart", siblings(&["pear"]))]));
    assert_violation(&r, 6, "sibling \"apple\" lost");
}

#[test]
fn a_later_write_with_a_context_may_supersede_and_a_failed_one_does_not() {
    let h = History::new();
    written(&h, mvr_put("cart", "apple", None), "100/1");
    written(&h, mvr_put("cart", "pear", None), "100/2");
    written(&h, mvr_put("cart", "apple,pear", Some("ctx")), "200/1");
    check(&h.events(), &converged(&[("carts", "cart", siblings(&["apple,pear"]))])).assert_ok();

    let h = History::new();
    written(&h, mvr_put("cart", "apple", None), "100/1");
    failed(&h, mvr_put("cart", "apple,pear", Some("ctx")));
    assert_violation(&run(&h, &converged(&[("carts", "cart", Observed::Absent)])), 6, "sibling \"apple\" lost");

    // A blind write (no context) supersedes nothing.
    let h = History::new();
    written(&h, mvr_put("cart", "apple", None), "100/1");
    written(&h, mvr_put("cart", "pear", None), "200/1");
    assert_violation(&run(&h, &converged(&[("carts", "cart", siblings(&["pear"]))])), 6, "lost");
}

#[test]
fn an_mvr_sibling_never_written_is_reported() {
    let h = History::new();
    written(&h, mvr_put("cart", "apple", None), "100/1");
    let r = run(&h, &converged(&[("carts", "cart", siblings(&["apple", "plum"]))]));
    assert_violation(&r, 6, "sibling \"plum\" was never written");
}

// --- contract 7: no resurrection -----------------------------------------------------------

#[test]
fn a_resurrected_deleted_key_is_reported() {
    let h = History::new();
    written(&h, put("k", "v1"), "100/1");
    written(&h, del("k"), "200/1");
    check(&h.events(), &converged(&[(KS, "k", Observed::Absent)])).assert_ok();
    let r = run(&h, &converged(&[(KS, "k", lww("v1", "100/1"))]));
    assert_violation(&r, 7, "older than the latest acknowledged write (op 1, a delete");
    assert!(!contracts(&r).contains(&5), "a resurrection is contract 7:\n{r}");
}

#[test]
fn a_deleted_key_resurrected_on_one_node_is_reported_for_that_node() {
    let h = History::new();
    written(&h, put("k", "v1"), "100/1");
    written(&h, del("k"), "200/1");
    let mut f = converged(&[(KS, "k", Observed::Absent)]);
    f.set_node("eu", "eu-n2", KS, "k", lww("v1", "100/1"));
    let r = run(&h, &f);
    assert_violation(&r, 7, "node eu-n2 of region eu");
    assert_violation(&r, 2, "nodes of region eu disagree");
}

#[test]
fn after_a_delete_only_an_indeterminate_put_with_a_greater_version_may_come_back() {
    let h = History::new();
    written(&h, put("k", "v1"), "100/1");
    written(&h, del("k"), "200/1");
    indeterminate(&h, put("k", "v2"));
    check(&h.events(), &converged(&[(KS, "k", lww("v2", "300/2"))])).assert_ok();
    assert_violation(&run(&h, &converged(&[(KS, "k", lww("v1", "300/2"))])), 7, "no indeterminate write wrote it");
}

#[test]
fn values_never_written_are_reported_in_final_state_and_reads() {
    let h = History::new();
    written(&h, put("k", "a"), "100/1");
    acked(&h, get("k"), OpResult::lww(Some(("garbage", "100/1"))));
    let r = run(&h, &converged(&[(KS, "k", lww("a", "100/1"))]));
    assert_violation(&r, 7, "returned \"garbage\", which no earlier put wrote");
    // A key no history wrote that comes up with a value.
    let r = run(&History::new(), &converged(&[(KS, "stray", lww("x", "1/1"))]));
    assert_violation(&r, 7, "value \"x\" was never written");
}

#[test]
fn a_read_may_not_see_a_write_invoked_after_it_finished() {
    let h = History::new();
    acked(&h, get("k"), OpResult::lww(Some(("a", "100/1"))));
    written(&h, put("k", "a"), "100/1");
    assert_violation(&run(&h, &converged(&[(KS, "k", lww("a", "100/1"))])), 7, "no earlier put wrote");
}

// --- talking to nodes ----------------------------------------------------------------------

#[test]
fn http_answers_are_classified_by_what_they_say_about_the_effect() {
    let w = put("k", "v");
    assert_eq!(classify(&w, 200, &json!({"version": "7/1"}), None), Completion::Ok(OpResult::written("7/1")));
    assert!(matches!(classify(&w, 400, &json!({"error": "invalid_ttl"}), None), Completion::Fail(_)));
    assert!(matches!(classify(&w, 409, &json!({"error": "conflict"}), None), Completion::Fail(_)));
    let not_sent = json!({"error": "unavailable", "asked": 0, "answered": 0, "required": 2});
    assert!(matches!(classify(&w, 503, &not_sent, None), Completion::Fail(_)));
    assert!(matches!(classify(&w, 503, &json!({"error": "not_enough_nodes"}), None), Completion::Fail(_)));
    let sent = json!({"error": "unavailable", "asked": 3, "answered": 1, "required": 2});
    assert!(matches!(classify(&w, 503, &sent, None), Completion::Info(_)));
    assert!(matches!(classify(&w, 500, &json!({"error": "internal"}), None), Completion::Info(_)));
    let refused = Transport::NotSent("connection refused".into());
    assert!(matches!(classify(&w, 0, &serde_json::Value::Null, Some(&refused)), Completion::Fail(_)));
    let lost = Transport::Lost("timed out reading response".into());
    assert!(matches!(classify(&w, 0, &serde_json::Value::Null, Some(&lost)), Completion::Info(_)));
    // A 404 to a read is an absent key, unless the keyspace is unknown.
    assert_eq!(classify(&get("k"), 404, &json!({"error": "not_found"}), None), Completion::Ok(OpResult::lww(None)));
    assert!(matches!(classify(&get("k"), 404, &json!({"error": "unknown_keyspace"}), None), Completion::Fail(_)));
}

#[test]
fn read_answers_parse_into_observations() {
    use meridian_history::Kind;
    let body = json!({"key": "k", "value": "aGVsbG8=", "version": "7/1"});
    assert_eq!(parse_read(Kind::Lww, 200, &body), Ok(lww("hello", "7/1")));
    let binary = json!({"key": "k", "value": "/w==", "version": "7/1"});
    assert_eq!(parse_read(Kind::Lww, 200, &binary), Ok(lww("base64:/w==", "7/1")));
    assert_eq!(parse_read(Kind::Lww, 404, &json!({"error": "not_found"})), Ok(Observed::Absent));
    let mvr = json!({"siblings": ["YXBwbGU=", "cGVhcg=="], "context": "AQ"});
    assert_eq!(parse_read(Kind::Mvr, 200, &mvr), Ok(siblings(&["apple", "pear"])));
    assert_eq!(parse_read(Kind::Counter, 200, &json!({"value": -4})), Ok(Observed::Counter(-4)));
    assert_eq!(parse_read(Kind::Set, 200, &json!({"members": ["a", "b"]})), Ok(set(&["a", "b"])));
    let b64 = json!({"members": ["/w=="], "members_encoding": "base64"});
    assert_eq!(parse_read(Kind::Set, 200, &b64), Ok(set(&["base64:/w=="])));
    // Errors and malformed bodies are errors, not panics.
    assert!(parse_read(Kind::Counter, 404, &json!({"error": "not_found"})).is_err());
    assert!(parse_read(Kind::Lww, 503, &json!({"error": "unavailable"})).is_err());
    assert!(parse_read(Kind::Counter, 200, &json!({"value": "7"})).is_err());
    assert!(parse_read(Kind::Set, 200, &json!({"members": [1]})).is_err());
}

// --- the report ----------------------------------------------------------------------------

#[test]
fn the_report_shows_the_first_violations_and_all_of_them_in_alternate_form() {
    let h = History::new();
    let members: Vec<String> = (0..30).map(|i| format!("m{i:02}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    written(&h, sadd("s", &refs), "1/1");
    let mut f = FinalState::default();
    f.set_region("eu", "sets", "s", set(&[]));
    let r = check(&h.events(), &f);
    assert_eq!(r.violations.len(), 30);
    let short = r.to_string();
    assert!(short.starts_with("history check FAILED (30 violations)"), "{short}");
    assert!(short.contains("[contract 4] sets/s: region eu: member \"m00\" lost"), "{short}");
    assert!(short.contains("... and 10 more"), "{short}");
    assert!(!short.contains("\"m29\""), "{short}");
    assert!(format!("{r:#}").contains("\"m29\""));
    assert_eq!(r.of_contract(4).len(), 30);
}
