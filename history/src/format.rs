//! The history format: operations, their results, events and the thread-safe recorder
//! ([`History`], JSONL on disk), and the final state a run reads back.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// `(keyspace, key)`.
pub type Key = (String, String);

/// The value type of a keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Last-writer-wins register.
    Lww,
    /// Multi-value register.
    Mvr,
    /// PN-counter.
    Counter,
    /// Add-wins observed-remove set.
    Set,
}

/// One operation a client attempts. `context` fields are the opaque causal context of an
/// earlier read (`null`: none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Op {
    /// LWW write.
    Put { keyspace: String, key: String, value: String },
    /// LWW delete (a tombstone).
    Delete { keyspace: String, key: String },
    /// MVR write; with a context it supersedes the siblings that context saw.
    MvrPut { keyspace: String, key: String, value: String, context: Option<String> },
    /// Counter increment (negative: decrement).
    Incr { keyspace: String, key: String, delta: i64 },
    /// Set additions.
    Sadd { keyspace: String, key: String, members: Vec<String> },
    /// Set removals; without a context, of every addition the coordinating replica holds.
    Srem { keyspace: String, key: String, members: Vec<String>, context: Option<String> },
    /// LWW read.
    Get { keyspace: String, key: String },
    /// MVR read.
    MvrGet { keyspace: String, key: String },
    /// Counter read.
    CounterGet { keyspace: String, key: String },
    /// Set read.
    Smembers { keyspace: String, key: String },
}

impl Op {
    /// The `type` tag (`put`, `mvr_get`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Put { .. } => "put",
            Op::Delete { .. } => "delete",
            Op::MvrPut { .. } => "mvr_put",
            Op::Incr { .. } => "incr",
            Op::Sadd { .. } => "sadd",
            Op::Srem { .. } => "srem",
            Op::Get { .. } => "get",
            Op::MvrGet { .. } => "mvr_get",
            Op::CounterGet { .. } => "counter_get",
            Op::Smembers { .. } => "smembers",
        }
    }

    /// `(keyspace, key)`.
    pub fn target(&self) -> (&str, &str) {
        match self {
            Op::Put { keyspace, key, .. }
            | Op::Delete { keyspace, key }
            | Op::MvrPut { keyspace, key, .. }
            | Op::Incr { keyspace, key, .. }
            | Op::Sadd { keyspace, key, .. }
            | Op::Srem { keyspace, key, .. }
            | Op::Get { keyspace, key }
            | Op::MvrGet { keyspace, key }
            | Op::CounterGet { keyspace, key }
            | Op::Smembers { keyspace, key } => (keyspace, key),
        }
    }

    /// The value type this op addresses.
    pub fn kind(&self) -> Kind {
        match self {
            Op::Put { .. } | Op::Delete { .. } | Op::Get { .. } => Kind::Lww,
            Op::MvrPut { .. } | Op::MvrGet { .. } => Kind::Mvr,
            Op::Incr { .. } | Op::CounterGet { .. } => Kind::Counter,
            Op::Sadd { .. } | Op::Srem { .. } | Op::Smembers { .. } => Kind::Set,
        }
    }

    /// Whether the op reads only.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. } | Op::MvrGet { .. } | Op::CounterGet { .. } | Op::Smembers { .. })
    }

    pub(crate) fn key(&self) -> Key {
        let (ks, k) = self.target();
        (ks.to_owned(), k.to_owned())
    }
}

/// What an `ok` completion carries; every field is optional and only the ones that apply are
/// written. Writes carry `version`; `get` carries `value` and `version` (no `value`: the key
/// is absent), `mvr_get` `siblings` and `context`, `counter_get` `counter`, `smembers`
/// `members` and `context`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResult {
    /// The write's version, or the version a register read returned (`<ntp64>/<node id>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The value an LWW read returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The siblings an MVR read returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siblings: Option<Vec<String>>,
    /// The value a counter read returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<i64>,
    /// The members a set read returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// The causal context a read returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

impl OpResult {
    /// An acknowledged write at `version`.
    pub fn written(version: impl Into<String>) -> OpResult {
        OpResult { version: Some(version.into()), ..OpResult::default() }
    }

    /// An LWW read: `Some((value, version))`, or `None` for an absent key.
    pub fn lww(found: Option<(&str, &str)>) -> OpResult {
        match found {
            Some((value, version)) => {
                OpResult { value: Some(value.into()), version: Some(version.into()), ..OpResult::default() }
            }
            None => OpResult::default(),
        }
    }

    /// An MVR read.
    pub fn siblings(siblings: Vec<String>, context: Option<String>) -> OpResult {
        OpResult { siblings: Some(siblings), context, ..OpResult::default() }
    }

    /// A counter read.
    pub fn counter(value: i64) -> OpResult {
        OpResult { counter: Some(value), ..OpResult::default() }
    }

    /// A set read.
    pub fn members(members: Vec<String>, context: Option<String>) -> OpResult {
        OpResult { members: Some(members), context, ..OpResult::default() }
    }
}

/// `invoke` (the intent) or the outcome of the op with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The client is about to send the request.
    Invoke,
    /// Acknowledged.
    Ok,
    /// Known not applied (a 4xx, or a 503 before anything was sent to a replica).
    Fail,
    /// Indeterminate (timeout, connection lost, a 503 after sending): may have been applied.
    Info,
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// ms since the history started.
    pub t: u64,
    /// The client (thread, task) that performed the op.
    pub client: String,
    /// The region the client talked to: on an invocation, the one it was sent towards; on a
    /// completion, the one that answered (see [`History::complete_in`]).
    pub region: String,
    /// What this line records.
    pub kind: EventKind,
    /// The op (repeated on its completion, so each line stands alone).
    pub op: Op,
    /// The op's id, shared by its invoke and its completion.
    pub id: u64,
    /// What an `ok` carries (flattened into the line).
    #[serde(flatten)]
    pub result: OpResult,
    /// Why a `fail` or `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An error reading a history file.
#[derive(Debug)]
pub enum HistoryError {
    /// The file could not be read or written.
    Io(std::io::Error),
    /// A line is not an event.
    Parse {
        /// 1-based line number.
        line: usize,
        /// The JSON error.
        message: String,
    },
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Io(e) => write!(f, "history file: {e}"),
            HistoryError::Parse { line, message } => write!(f, "history line {line}: {message}"),
        }
    }
}

impl std::error::Error for HistoryError {}

impl From<std::io::Error> for HistoryError {
    fn from(e: std::io::Error) -> Self {
        HistoryError::Io(e)
    }
}

#[derive(Debug, Default)]
struct Recorder {
    next_id: u64,
    events: Vec<Event>,
    /// Invoked and not yet completed: id → (client, region, op).
    open: HashMap<u64, (String, String, Op)>,
}

/// Where a [`History`] reads the `t` of its events.
enum Clock {
    /// ms since this instant (the process's monotonic clock).
    Monotonic(Instant),
    /// A clock the workload supplies (a simulation's virtual time).
    Custom(Box<dyn Fn() -> u64 + Send + Sync>),
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clock::Monotonic(start) => f.debug_tuple("Monotonic").field(start).finish(),
            Clock::Custom(_) => f.write_str("Custom"),
        }
    }
}

/// A thread-safe history recorder. Time is ms since [`History::new`] (a monotonic clock), or
/// whatever the clock of [`History::with_clock`] reads, read under the lock, so the order of
/// events is the order of the recorded lines.
#[derive(Debug)]
pub struct History {
    clock: Clock,
    inner: Mutex<Recorder>,
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

impl History {
    /// An empty history starting now.
    pub fn new() -> History {
        History { clock: Clock::Monotonic(Instant::now()), inner: Mutex::new(Recorder::default()) }
    }

    /// An empty history whose events are timestamped by `now_ms` (ms on any scale that does
    /// not go backwards). A simulation passes its virtual clock, so that `t` is simulated
    /// time rather than the time the host machine took to compute it.
    pub fn with_clock(now_ms: impl Fn() -> u64 + Send + Sync + 'static) -> History {
        History { clock: Clock::Custom(Box::new(now_ms)), inner: Mutex::new(Recorder::default()) }
    }

    /// A history holding `events` (read from a file or built by hand). Ops recorded later get
    /// fresh ids and times after the last event's.
    pub fn from_events(events: Vec<Event>) -> History {
        let last_t = events.iter().map(|e| e.t).max().unwrap_or(0);
        let start = Instant::now().checked_sub(Duration::from_millis(last_t)).unwrap_or_else(Instant::now);
        let next_id = events.iter().map(|e| e.id.saturating_add(1)).max().unwrap_or(0);
        let mut open = HashMap::new();
        for e in &events {
            match e.kind {
                EventKind::Invoke => {
                    open.insert(e.id, (e.client.clone(), e.region.clone(), e.op.clone()));
                }
                _ => {
                    open.remove(&e.id);
                }
            }
        }
        History { clock: Clock::Monotonic(start), inner: Mutex::new(Recorder { next_id, events, open }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorder> {
        // A panic elsewhere while recording leaves the events consistent (pushes are atomic).
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// ms since the history started: the clock of every event's `t`, for a workload to
    /// timestamp its own milestones (a fence, a heal) on the same scale.
    pub fn now_ms(&self) -> u64 {
        match &self.clock {
            Clock::Monotonic(start) => u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
            Clock::Custom(now_ms) => now_ms(),
        }
    }

    /// Records the intent to perform `op` and returns its id.
    pub fn invoke(&self, client: &str, region: &str, op: Op) -> u64 {
        let mut r = self.lock();
        let id = r.next_id;
        r.next_id += 1;
        let t = self.now_ms();
        r.open.insert(id, (client.to_owned(), region.to_owned(), op.clone()));
        r.events.push(Event {
            t,
            client: client.to_owned(),
            region: region.to_owned(),
            kind: EventKind::Invoke,
            op,
            id,
            result: OpResult::default(),
            reason: None,
        });
        id
    }

    fn complete(&self, id: u64, kind: EventKind, result: OpResult, reason: Option<String>) {
        self.complete_at(id, None, kind, result, reason);
    }

    fn complete_at(&self, id: u64, served: Option<&str>, kind: EventKind, result: OpResult, reason: Option<String>) {
        let mut r = self.lock();
        let Some((client, region, op)) = r.open.remove(&id) else {
            drop(r);
            panic!("history: op {id} completed ({kind:?}) but it is not an open invocation");
        };
        let t = self.now_ms();
        let region = served.map_or(region, str::to_owned);
        r.events.push(Event { t, client, region, kind, op, id, result, reason });
    }

    /// Records that op `id` was acknowledged with `result`.
    ///
    /// # Panics
    /// If `id` was not invoked, or was already completed (a bug of the workload).
    pub fn ok(&self, id: u64, result: OpResult) {
        self.complete(id, EventKind::Ok, result, None);
    }

    /// Records that op `id` is known not to have been applied.
    ///
    /// # Panics
    /// As [`History::ok`].
    pub fn fail(&self, id: u64, reason: impl Into<String>) {
        self.complete(id, EventKind::Fail, OpResult::default(), Some(reason.into()));
    }

    /// Records that the outcome of op `id` is unknown (it may have been applied).
    ///
    /// # Panics
    /// As [`History::ok`].
    pub fn info(&self, id: u64, reason: impl Into<String>) {
        self.complete(id, EventKind::Info, OpResult::default(), Some(reason.into()));
    }

    /// Records `completion` for op `id`.
    pub fn complete_with(&self, id: u64, completion: &Completion) {
        match completion {
            Completion::Ok(r) => self.ok(id, r.clone()),
            Completion::Fail(why) => self.fail(id, why.clone()),
            Completion::Info(why) => self.info(id, why.clone()),
        }
    }

    /// Records `completion` for op `id`, naming the region that served it (a client that
    /// failed over answers from another region than the one it was invoked towards; `None`:
    /// the invocation's region).
    ///
    /// # Panics
    /// As [`History::ok`].
    pub fn complete_in(&self, id: u64, served: Option<&str>, completion: &Completion) {
        match completion {
            Completion::Ok(r) => self.complete_at(id, served, EventKind::Ok, r.clone(), None),
            Completion::Fail(why) => {
                self.complete_at(id, served, EventKind::Fail, OpResult::default(), Some(why.clone()))
            }
            Completion::Info(why) => {
                self.complete_at(id, served, EventKind::Info, OpResult::default(), Some(why.clone()))
            }
        }
    }

    /// A copy of the events so far, in recording order.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Writes the history as JSON lines.
    pub fn write_jsonl(&self, path: impl AsRef<Path>) -> Result<(), HistoryError> {
        let events = self.events();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for e in &events {
            let line = serde_json::to_string(e).map_err(|e| HistoryError::Io(std::io::Error::other(e)))?;
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        Ok(())
    }

    /// Reads a history written by [`History::write_jsonl`] (blank lines are skipped).
    pub fn read_jsonl(path: impl AsRef<Path>) -> Result<History, HistoryError> {
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut events = Vec::new();
        for (i, line) in file.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let e =
                serde_json::from_str(&line).map_err(|e| HistoryError::Parse { line: i + 1, message: e.to_string() })?;
            events.push(e);
        }
        Ok(History::from_events(events))
    }
}

/// The outcome of one request, as a history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Acknowledged, with what the answer carried.
    Ok(OpResult),
    /// Known not applied.
    Fail(String),
    /// Indeterminate.
    Info(String),
}

/// What one read of a key returned at the end of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    /// A register that is absent (never written, deleted, expired).
    Absent,
    /// An LWW register.
    Lww { value: String, version: String },
    /// An MVR register's siblings.
    Mvr { siblings: Vec<String> },
    /// A counter.
    Counter(i64),
    /// A set's members.
    Set(BTreeSet<String>),
}

/// A final read that got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadFailure {
    /// The region.
    pub region: String,
    /// The node read at `ONE`, or `None` for the region's read at `ALL`.
    pub node: Option<String>,
    /// The keyspace.
    pub keyspace: String,
    /// The key.
    pub key: String,
    /// What happened.
    pub reason: String,
}

/// The value of every key the run touched, read after healing and quiescing: per region (at
/// `ALL`) and per node of each region (at `ONE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalState {
    /// region → key → what the region returned at `ALL`.
    pub by_region: BTreeMap<String, BTreeMap<Key, Observed>>,
    /// region → node → key → what a read at `ONE` through that node returned.
    pub by_node: BTreeMap<String, BTreeMap<String, BTreeMap<Key, Observed>>>,
    /// Reads that failed (each is reported as a violation: the state could not be checked).
    pub errors: Vec<ReadFailure>,
}

impl FinalState {
    /// Records what `region` returned for a key.
    pub fn set_region(&mut self, region: &str, keyspace: &str, key: &str, observed: Observed) {
        self.by_region.entry(region.to_owned()).or_default().insert((keyspace.into(), key.into()), observed);
    }

    /// Records what `node` of `region` returned for a key.
    pub fn set_node(&mut self, region: &str, node: &str, keyspace: &str, key: &str, observed: Observed) {
        self.by_node
            .entry(region.to_owned())
            .or_default()
            .entry(node.to_owned())
            .or_default()
            .insert((keyspace.into(), key.into()), observed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_history_with_a_clock_stamps_events_with_that_clock() {
        let now = Arc::new(AtomicU64::new(1_000));
        let clock = Arc::clone(&now);
        let h = History::with_clock(move || clock.load(Ordering::SeqCst));
        let op = Op::Incr { keyspace: "counters".into(), key: "c".into(), delta: 1 };
        let id = h.invoke("c1", "us", op);
        now.store(1_250, Ordering::SeqCst);
        h.ok(id, OpResult::written("v"));
        let ts: Vec<u64> = h.events().iter().map(|e| e.t).collect();
        assert_eq!(ts, [1_000, 1_250]);
        assert_eq!(h.now_ms(), 1_250);
    }
}
