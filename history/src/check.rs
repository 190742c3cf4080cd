//! The checker: a history and a final state → a [`Report`] of [`Violation`]s.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use meridian_crdt::Hlc;

use crate::format::{Event, EventKind, FinalState, Key, Kind, Observed, Op, OpResult};

/// One broken promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The contract of `design.md` §5 (2–7); 0: the history or final state is malformed.
    pub contract: u8,
    /// The keyspace.
    pub keyspace: String,
    /// The key.
    pub key: String,
    /// What was expected and what was seen.
    pub message: String,
}

/// Counts of one op type by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpStats {
    /// Invocations.
    pub invoked: u64,
    /// Acknowledged.
    pub ok: u64,
    /// Known not applied.
    pub fail: u64,
    /// Indeterminate.
    pub info: u64,
    /// Invoked and never completed (counted as indeterminate).
    pub pending: u64,
}

/// What the history holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines of the history.
    pub events: usize,
    /// Distinct `(keyspace, key)` checked.
    pub keys: usize,
    /// Per op type (`put`, `incr`, ...).
    pub by_op: BTreeMap<String, OpStats>,
}

/// The checker's verdict. `Display` prints a summary with the first [`Report::SHOWN`]
/// violations; the alternate form (`{:#}`) prints all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// No violation.
    pub ok: bool,
    /// Every violation found.
    pub violations: Vec<Violation>,
    /// Counts of ops.
    pub stats: Stats,
}

impl Report {
    /// Violations printed by `{}`.
    pub const SHOWN: usize = 20;

    /// Violations of contract `n`.
    pub fn of_contract(&self, n: u8) -> Vec<&Violation> {
        self.violations.iter().filter(|v| v.contract == n).collect()
    }

    /// Panics with the report unless it is ok.
    pub fn assert_ok(&self) {
        assert!(self.ok, "{self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.ok { "OK".to_owned() } else { format!("FAILED ({} violations)", self.violations.len()) };
        writeln!(f, "history check {verdict}: {} events, {} keys", self.stats.events, self.stats.keys)?;
        writeln!(f, "  {:<12} {:>8} {:>8} {:>6} {:>6} {:>8}", "op", "invoked", "ok", "fail", "info", "pending")?;
        for (name, s) in &self.stats.by_op {
            writeln!(f, "  {name:<12} {:>8} {:>8} {:>6} {:>6} {:>8}", s.invoked, s.ok, s.fail, s.info, s.pending)?;
        }
        let shown = if f.alternate() { self.violations.len() } else { Report::SHOWN };
        for v in self.violations.iter().take(shown) {
            writeln!(f, "  [contract {}] {}/{}: {}", v.contract, v.keyspace, v.key, v.message)?;
        }
        if self.violations.len() > shown {
            writeln!(f, "  ... and {} more (print with {{:#}} for all)", self.violations.len() - shown)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pending,
    Ok,
    Fail,
    Info,
}

/// One op with its positions in the (sorted) history.
#[derive(Debug)]
struct Rec<'a> {
    id: u64,
    op: &'a Op,
    inv: usize,
    /// Position of the completion.
    done: Option<usize>,
    outcome: Outcome,
    result: Option<&'a OpResult>,
}

impl Rec<'_> {
    /// Not known to have failed: it may have taken effect.
    fn maybe_applied(&self) -> bool {
        self.outcome != Outcome::Fail
    }

    fn indeterminate(&self) -> bool {
        matches!(self.outcome, Outcome::Info | Outcome::Pending)
    }

    /// The completion position, or "never" for an op that may still take effect.
    fn done_or_never(&self) -> usize {
        match (self.outcome, self.done) {
            (Outcome::Ok | Outcome::Fail, Some(d)) => d,
            _ => usize::MAX,
        }
    }
}

/// A value as compared between replicas: the final observation normalized for its type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Norm {
    Lww(Option<(String, String)>),
    Mvr(Vec<String>),
    Counter(i64),
    Set(BTreeSet<String>),
}

impl fmt::Display for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Norm::Lww(None) => write!(f, "absent"),
            Norm::Lww(Some((v, ver))) => write!(f, "{} @ {ver}", short(v)),
            Norm::Mvr(s) => write!(f, "siblings [{}]", s.iter().map(|s| short(s)).collect::<Vec<_>>().join(", ")),
            Norm::Counter(n) => write!(f, "counter {n}"),
            Norm::Set(m) => write!(f, "members {{{}}}", m.iter().map(|s| short(s)).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// A value for a message: quoted, cut at 40 characters.
fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{:?}…", s.chars().take(40).collect::<String>())
    } else {
        format!("{s:?}")
    }
}

fn normalize(obs: &Observed, kind: Option<Kind>) -> Result<Norm, String> {
    let kind = kind.unwrap_or(match obs {
        Observed::Absent | Observed::Lww { .. } => Kind::Lww,
        Observed::Mvr { .. } => Kind::Mvr,
        Observed::Counter(_) => Kind::Counter,
        Observed::Set(_) => Kind::Set,
    });
    match (kind, obs) {
        (Kind::Lww, Observed::Absent) => Ok(Norm::Lww(None)),
        (Kind::Lww, Observed::Lww { value, version }) => Ok(Norm::Lww(Some((value.clone(), version.clone())))),
        (Kind::Mvr, Observed::Absent) => Ok(Norm::Mvr(Vec::new())),
        (Kind::Mvr, Observed::Mvr { siblings }) => {
            let mut s = siblings.clone();
            s.sort();
            Ok(Norm::Mvr(s))
        }
        (Kind::Counter, Observed::Absent) => Ok(Norm::Counter(0)),
        (Kind::Counter, Observed::Counter(n)) => Ok(Norm::Counter(*n)),
        (Kind::Set, Observed::Absent) => Ok(Norm::Set(BTreeSet::new())),
        (Kind::Set, Observed::Set(m)) => Ok(Norm::Set(m.clone())),
        (kind, obs) => Err(format!("observed {obs:?} for a key of type {kind:?}")),
    }
}

/// Collects violations.
#[derive(Debug, Default)]
struct Checker {
    violations: Vec<Violation>,
}

impl Checker {
    fn flag(&mut self, contract: u8, key: &Key, message: String) {
        self.violations.push(Violation { contract, keyspace: key.0.clone(), key: key.1.clone(), message });
    }
}

/// Turns the events into ops with positions; malformed sequences are contract-0 violations.
fn ops_of<'a>(events: &'a [Event], c: &mut Checker) -> Vec<Rec<'a>> {
    let mut order: Vec<&Event> = events.iter().collect();
    order.sort_by_key(|e| e.t); // stable: a recorded history keeps its order
    let mut recs: Vec<Rec<'a>> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    for (pos, e) in order.into_iter().enumerate() {
        let key = e.op.key();
        if e.kind == EventKind::Invoke {
            if index.contains_key(&e.id) {
                c.flag(0, &key, format!("op {} invoked twice", e.id));
                continue;
            }
            index.insert(e.id, recs.len());
            recs.push(Rec { id: e.id, op: &e.op, inv: pos, done: None, outcome: Outcome::Pending, result: None });
            continue;
        }
        let Some(&i) = index.get(&e.id) else {
            c.flag(0, &key, format!("op {} completed ({:?}) without an invoke", e.id, e.kind));
            continue;
        };
        let rec = &mut recs[i];
        if rec.done.is_some() {
            c.flag(0, &key, format!("op {} completed twice", e.id));
            continue;
        }
        if rec.op != &e.op {
            c.flag(0, &key, format!("op {}: the completion names another op than the invoke", e.id));
        }
        rec.done = Some(pos);
        rec.outcome = match e.kind {
            EventKind::Ok => Outcome::Ok,
            EventKind::Fail => Outcome::Fail,
            _ => Outcome::Info,
        };
        rec.result = Some(&e.result);
    }
    recs
}

fn version_of(s: &str) -> Option<Hlc> {
    s.parse().ok()
}

/// What the history allows for one LWW key.
struct LwwRule {
    /// The acknowledged write with the greatest version: (version, value (None: delete), id).
    max: Option<(Hlc, Option<String>, u64)>,
    /// Values (None: delete) of writes that may have any version: indeterminate writes, and
    /// acknowledged writes without a readable version.
    free: BTreeSet<Option<String>>,
    /// Every value a non-failed put wrote.
    written: BTreeSet<String>,
}

fn lww_rule(ops: &[&Rec<'_>], key: &Key, c: &mut Checker) -> LwwRule {
    let mut rule = LwwRule { max: None, free: BTreeSet::new(), written: BTreeSet::new() };
    for r in ops.iter().filter(|r| r.maybe_applied()) {
        let value = match r.op {
            Op::Put { value, .. } => Some(value.clone()),
            Op::Delete { .. } => None,
            _ => continue,
        };
        if let Some(v) = &value {
            rule.written.insert(v.clone());
        }
        if r.indeterminate() {
            rule.free.insert(value);
            continue;
        }
        let version = r.result.and_then(|res| res.version.as_deref());
        let Some(hlc) = version.and_then(version_of) else {
            c.flag(5, key, format!("acknowledged {} (op {}) has no readable version: {version:?}", r.op.name(), r.id));
            rule.free.insert(value);
            continue;
        };
        match &rule.max {
            Some((m, mv, mid)) if *m == hlc && *mv != value => {
                c.flag(5, key, format!("acknowledged writes {mid} and {} share version {hlc} with other values", r.id));
            }
            Some((m, ..)) if *m >= hlc => {}
            _ => rule.max = Some((hlc, value, r.id)),
        }
    }
    rule
}

fn check_lww(rule: &LwwRule, obs: Option<&(String, String)>, at: &str, key: &Key, c: &mut Checker) {
    let what = |v: &Option<String>| v.as_deref().map_or("a delete".to_owned(), |v| format!("value {}", short(v)));
    match obs {
        None => {
            if let Some((ver, Some(v), id)) = &rule.max {
                if !rule.free.contains(&None) {
                    c.flag(
                        5,
                        key,
                        format!(
                            "{at}: absent, but the latest acknowledged write (op {id}, {ver}) is value {} \
                             and no indeterminate delete could have won",
                            short(v)
                        ),
                    );
                }
            }
        }
        Some((value, version)) => {
            if !rule.written.contains(value) {
                c.flag(7, key, format!("{at}: value {} was never written", short(value)));
                return;
            }
            let Some(seen) = version_of(version) else {
                c.flag(5, key, format!("{at}: unreadable version {version:?}"));
                return;
            };
            let Some((max, max_value, id)) = &rule.max else {
                return; // only indeterminate writes: any of their values may win
            };
            let from_free = rule.free.contains(&Some(value.clone()));
            let contract = if max_value.is_none() { 7 } else { 5 };
            if seen < *max {
                c.flag(
                    contract,
                    key,
                    format!(
                        "{at}: value {} @ {seen} is older than the latest acknowledged write (op {id}, {}, {max})",
                        short(value),
                        what(max_value)
                    ),
                );
            } else if seen == *max && max_value.as_ref() != Some(value) {
                c.flag(
                    5,
                    key,
                    format!(
                        "{at}: value {} carries the version of op {id} ({max}), which wrote {}",
                        short(value),
                        what(max_value)
                    ),
                );
            } else if seen > *max && !from_free {
                c.flag(
                    contract,
                    key,
                    format!(
                        "{at}: value {} @ {seen} is newer than the latest acknowledged write (op {id}, {}, {max}) \
                         but no indeterminate write wrote it",
                        short(value),
                        what(max_value)
                    ),
                );
            }
        }
    }
}

/// What the history allows for one counter: (sum of acknowledged deltas, lo, hi), where
/// `[lo, hi]` = acknowledged sum plus the indeterminate negatives / positives.
fn counter_bounds(ops: &[&Rec<'_>]) -> (i128, i128, i128) {
    let (mut acked, mut neg, mut pos) = (0i128, 0i128, 0i128);
    for r in ops.iter().filter(|r| r.maybe_applied()) {
        if let Op::Incr { delta, .. } = r.op {
            let d = i128::from(*delta);
            if r.indeterminate() {
                if d < 0 {
                    neg += d;
                } else {
                    pos += d;
                }
            } else {
                acked += d;
            }
        }
    }
    (acked, acked + neg, acked + pos)
}

/// Whether remove `rem` may have observed add `add` (see `docs/history-checker.md`): with a
/// context, only if it was invoked after the add was (the context came from a read that
/// finished after the add started); without one, if it may have reached its coordinator
/// after the add started (it finished after the add's invoke, or never finished).
fn may_observe(rem: &Rec<'_>, add: &Rec<'_>) -> bool {
    match rem.op {
        Op::Srem { context: Some(_), .. } | Op::MvrPut { context: Some(_), .. } => rem.inv > add.inv,
        Op::Srem { context: None, .. } => rem.done_or_never() > add.inv,
        _ => false,
    }
}

fn set_rule(ops: &[&Rec<'_>]) -> (BTreeSet<String>, BTreeMap<String, u64>) {
    let mut added = BTreeSet::new();
    let mut required = BTreeMap::new();
    for add in ops.iter().filter(|r| r.maybe_applied()) {
        let Op::Sadd { members, .. } = add.op else { continue };
        added.extend(members.iter().cloned());
        if add.outcome != Outcome::Ok {
            continue;
        }
        for m in members {
            let removed = ops.iter().any(|rem| {
                rem.maybe_applied()
                    && matches!(rem.op, Op::Srem { members, .. } if members.contains(m))
                    && may_observe(rem, add)
            });
            if !removed {
                required.entry(m.clone()).or_insert(add.id);
            }
        }
    }
    (added, required)
}

fn mvr_rule(ops: &[&Rec<'_>]) -> (BTreeSet<String>, BTreeMap<String, u64>) {
    let mut written = BTreeSet::new();
    let mut required = BTreeMap::new();
    for w in ops.iter().filter(|r| r.maybe_applied()) {
        let Op::MvrPut { value, .. } = w.op else { continue };
        written.insert(value.clone());
        if w.outcome == Outcome::Ok
            && !ops.iter().any(|later| later.id != w.id && later.maybe_applied() && may_observe(later, w))
        {
            required.entry(value.clone()).or_insert(w.id);
        }
    }
    (written, required)
}

/// Checks the final value `norm` seen at `at` against the history of its key.
fn check_value(ops: &[&Rec<'_>], norm: &Norm, at: &str, key: &Key, c: &mut Checker, lww: Option<&LwwRule>) {
    match norm {
        Norm::Lww(obs) => {
            if let Some(rule) = lww {
                check_lww(rule, obs.as_ref(), at, key, c);
            }
        }
        Norm::Counter(n) => {
            let (acked, lo, hi) = counter_bounds(ops);
            let n = i128::from(*n);
            if n < lo || n > hi {
                let why = if n < lo { "acknowledged increments lost" } else { "more than every attempt adds" };
                c.flag(4, key, format!("{at}: counter {n} outside [{lo}, {hi}] (acknowledged sum {acked}): {why}"));
            }
        }
        Norm::Set(members) => {
            let (added, required) = set_rule(ops);
            for m in members.difference(&added) {
                c.flag(4, key, format!("{at}: member {} was never added", short(m)));
            }
            for (m, id) in &required {
                if !members.contains(m) {
                    c.flag(
                        4,
                        key,
                        format!("{at}: member {} lost: acknowledged add (op {id}), no remove observed it", short(m)),
                    );
                }
            }
        }
        Norm::Mvr(siblings) => {
            let (written, required) = mvr_rule(ops);
            for s in siblings.iter().filter(|s| !written.contains(*s)) {
                c.flag(6, key, format!("{at}: sibling {} was never written", short(s)));
            }
            for (v, id) in &required {
                if !siblings.contains(v) {
                    c.flag(
                        6,
                        key,
                        format!(
                            "{at}: sibling {} lost: acknowledged write (op {id}) and no write observed it",
                            short(v)
                        ),
                    );
                }
            }
        }
    }
}

/// Checks what ok reads returned: nothing that no write invoked before the read finished could
/// have produced.
fn check_reads(ops: &[&Rec<'_>], key: &Key, c: &mut Checker) {
    for read in ops.iter().filter(|r| r.op.is_read() && r.outcome == Outcome::Ok) {
        let (Some(res), Some(done)) = (read.result, read.done) else { continue };
        let before: Vec<&&Rec<'_>> = ops.iter().filter(|w| w.inv < done && w.maybe_applied()).collect();
        let wrote = |v: &str| {
            before.iter().any(|w| match w.op {
                Op::Put { value, .. } | Op::MvrPut { value, .. } => value == v,
                Op::Sadd { members, .. } => members.iter().any(|m| m == v),
                _ => false,
            })
        };
        let at = format!("read op {}", read.id);
        match read.op {
            Op::Get { .. } => {
                if let Some(v) = res.value.as_deref().filter(|v| !wrote(v)) {
                    c.flag(7, key, format!("{at} returned {}, which no earlier put wrote", short(v)));
                }
            }
            Op::MvrGet { .. } => {
                for s in res.siblings.iter().flatten().filter(|s| !wrote(s)) {
                    c.flag(6, key, format!("{at} returned sibling {}, which no earlier put wrote", short(s)));
                }
            }
            Op::Smembers { .. } => {
                for m in res.members.iter().flatten().filter(|m| !wrote(m)) {
                    c.flag(4, key, format!("{at} returned member {}, which no earlier add added", short(m)));
                }
            }
            Op::CounterGet { .. } => {
                let (mut lo, mut hi) = (0i128, 0i128);
                for w in &before {
                    if let Op::Incr { delta, .. } = w.op {
                        if *delta < 0 {
                            lo += i128::from(*delta);
                        } else {
                            hi += i128::from(*delta);
                        }
                    }
                }
                if let Some(n) = res.counter.map(i128::from).filter(|n| *n < lo || *n > hi) {
                    c.flag(4, key, format!("{at} returned {n}, outside what earlier increments allow [{lo}, {hi}]"));
                }
            }
            _ => {}
        }
    }
}

/// Checks `events` (a recorded history, see [`History::events`]) and the final state against
/// the contracts of `design.md` §5; see `docs/history-checker.md` for the rules.
pub fn check(events: &[Event], final_state: &FinalState) -> Report {
    let mut c = Checker::default();
    let recs = ops_of(events, &mut c);

    let mut stats = Stats { events: events.len(), ..Stats::default() };
    for r in &recs {
        let s = stats.by_op.entry(r.op.name().to_owned()).or_default();
        s.invoked += 1;
        match r.outcome {
            Outcome::Ok => s.ok += 1,
            Outcome::Fail => s.fail += 1,
            Outcome::Info => s.info += 1,
            Outcome::Pending => s.pending += 1,
        }
    }

    // Ops and type per key.
    let mut per_key: BTreeMap<Key, Vec<&Rec<'_>>> = BTreeMap::new();
    for r in &recs {
        per_key.entry(r.op.key()).or_default().push(r);
    }
    let mut kinds: BTreeMap<Key, Kind> = BTreeMap::new();
    for (key, ops) in &per_key {
        let found: BTreeSet<Kind> = ops.iter().map(|r| r.op.kind()).collect();
        if found.len() > 1 {
            c.flag(0, key, format!("the history uses the key as several types: {found:?}"));
        }
        if let Some(k) = ops.first().map(|r| r.op.kind()) {
            kinds.insert(key.clone(), k);
        }
    }

    // Every key: touched by the history or read at the end.
    let mut keys: BTreeSet<Key> = per_key.keys().cloned().collect();
    keys.extend(final_state.by_region.values().flat_map(|m| m.keys().cloned()));
    keys.extend(final_state.by_node.values().flat_map(|n| n.values().flat_map(|m| m.keys().cloned())));
    stats.keys = keys.len();

    if final_state.by_region.is_empty() && !per_key.is_empty() {
        let key = (String::new(), String::new());
        c.flag(0, &key, "the final state has no region: nothing was checked against it".into());
    }
    for e in &final_state.errors {
        let key = (e.keyspace.clone(), e.key.clone());
        match &e.node {
            Some(node) => {
                c.flag(2, &key, format!("node {node} of region {}: final read failed: {}", e.region, e.reason))
            }
            None => c.flag(3, &key, format!("region {}: final read at ALL failed: {}", e.region, e.reason)),
        }
    }

    let no_ops = Vec::new();
    for key in &keys {
        let ops = per_key.get(key).unwrap_or(&no_ops);
        check_reads(ops, key, &mut c);
        // The key's type: from the history, else from what was read.
        let kind = kinds.get(key).copied().or_else(|| {
            let first = final_state.by_region.values().filter_map(|m| m.get(key)).find(|o| **o != Observed::Absent);
            first.and_then(|o| normalize(o, None).ok()).map(|n| match n {
                Norm::Lww(_) => Kind::Lww,
                Norm::Mvr(_) => Kind::Mvr,
                Norm::Counter(_) => Kind::Counter,
                Norm::Set(_) => Kind::Set,
            })
        });
        let lww = (kind == Some(Kind::Lww)).then(|| lww_rule(ops, key, &mut c));
        let norm = |obs: &Observed, at: &str, c: &mut Checker| match normalize(obs, kind) {
            Ok(n) => Some(n),
            Err(why) => {
                c.flag(0, key, format!("{at}: {why}"));
                None
            }
        };

        // Contract 3: every region the same, and contents checked per region.
        let mut region_values: BTreeMap<&str, Norm> = BTreeMap::new();
        for (region, values) in &final_state.by_region {
            let at = format!("region {region}");
            match values.get(key) {
                None => {
                    if !final_state
                        .errors
                        .iter()
                        .any(|e| e.node.is_none() && &e.region == region && e.keyspace == key.0 && e.key == key.1)
                    {
                        c.flag(3, key, format!("{at}: no final reading"));
                    }
                }
                Some(obs) => {
                    if let Some(n) = norm(obs, &at, &mut c) {
                        check_value(ops, &n, &at, key, &mut c, lww.as_ref());
                        region_values.insert(region, n);
                    }
                }
            }
        }
        let distinct: BTreeSet<&Norm> = region_values.values().collect();
        if distinct.len() > 1 {
            let seen: Vec<String> = region_values.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            c.flag(3, key, format!("regions disagree: {}", seen.join("; ")));
        }

        // Contract 2: every node of a region the same as each other and as the region's read.
        for (region, nodes) in &final_state.by_node {
            let mut node_values: BTreeMap<&str, Norm> = BTreeMap::new();
            for (node, values) in nodes {
                let at = format!("node {node} of region {region}");
                match values.get(key) {
                    None => {
                        let failed = final_state.errors.iter().any(|e| {
                            e.node.as_deref() == Some(node.as_str())
                                && &e.region == region
                                && e.keyspace == key.0
                                && e.key == key.1
                        });
                        if !failed {
                            c.flag(2, key, format!("{at}: no final reading"));
                        }
                    }
                    Some(obs) => {
                        if let Some(n) = norm(obs, &at, &mut c) {
                            // A node that agrees with its region was checked with it.
                            if region_values.get(region.as_str()) != Some(&n) {
                                check_value(ops, &n, &at, key, &mut c, lww.as_ref());
                            }
                            node_values.insert(node, n);
                        }
                    }
                }
            }
            let mut distinct: BTreeSet<&Norm> = node_values.values().collect();
            if let Some(r) = region_values.get(region.as_str()) {
                distinct.insert(r);
            }
            if distinct.len() > 1 {
                let mut seen: Vec<String> = node_values.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                if let Some(r) = region_values.get(region.as_str()) {
                    seen.push(format!("ALL: {r}"));
                }
                c.flag(2, key, format!("nodes of region {region} disagree: {}", seen.join("; ")));
            }
        }
    }

    Report { ok: c.violations.is_empty(), violations: c.violations, stats }
}
