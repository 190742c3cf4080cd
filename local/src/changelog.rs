//! The change log: every state change the store accepts, numbered, written in the same
//! atomic batch as the change itself. WAN shippers and range streaming read it.
//!
//! Invariants:
//! - a change is in the log if and only if the data write that made it is (same batch);
//! - sequence numbers are unique and increase in allocation order; a failed write leaves a
//!   gap, never a duplicate;
//! - [`SeqTracker::visible`] never passes a sequence number whose batch is still in flight,
//!   so a reader that reads up to it and then resumes after it misses nothing.

use std::collections::BTreeSet;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys::hex;

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// A client write coordinated in this region.
    Local,
    /// A change shipped from another region (it is never shipped back there).
    Remote {
        /// The region it came from.
        region: String,
    },
    /// Intra-region repair: read repair, hinted handoff, anti-entropy.
    Repair,
    /// Range streaming of a join or a decommission: a copy of data another node of the region
    /// already held (and shipped). Not shipped to other regions again; a change of shipping
    /// ranges is covered by a full sync instead. (A new variant at the end: logs written before
    /// it still decode.)
    Stream,
}

/// One entry of the change log, as read by [`crate::Store::changes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEntry {
    /// Sequence number in this node's log.
    pub seq: u64,
    /// Keyspace of the changed key.
    pub keyspace: String,
    /// The key.
    pub key: Vec<u8>,
    /// Where the change came from.
    pub origin: Origin,
    /// The key's encoded record *as stored when the log is read*: it includes this change
    /// (and perhaps later ones). Shipping states, not operations, makes applying it anywhere
    /// an idempotent merge. `None` when the record has since been garbage-collected, which
    /// happens only once every replica and region has it (docs/algorithms/storage.md).
    pub record: Option<Vec<u8>>,
}

/// The stored value of a log entry: which key changed and where the change came from. The
/// state itself is in the data column family, written in the same batch; the log does not
/// repeat it, which would double what every write puts through the WAL, memtable and flushes.
#[derive(Serialize, Deserialize)]
struct ChangeEntryV1<K> {
    keyspace: String,
    key: K,
    origin: Origin,
}

/// Borrowed twin for encoding: `&Bytes` and `ByteBuf` are the same bytes on the wire.
#[derive(Serialize)]
struct ChangeEntryV1Ref<'a> {
    keyspace: &'a str,
    key: &'a serde_bytes::Bytes,
    origin: &'a Origin,
}

const CHANGE_V1: u8 = 1;

/// A log entry as stored, before the record is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoggedChange {
    pub(crate) seq: u64,
    pub(crate) keyspace: String,
    pub(crate) key: Vec<u8>,
    pub(crate) origin: Origin,
}

impl LoggedChange {
    /// The stored value of a change-log entry.
    pub(crate) fn encode_parts(keyspace: &str, key: &[u8], origin: &Origin) -> Vec<u8> {
        let body = ChangeEntryV1Ref { keyspace, key: serde_bytes::Bytes::new(key), origin };
        let mut out = Vec::with_capacity(16 + keyspace.len() + key.len());
        out.push(CHANGE_V1);
        postcard::to_io(&body, &mut out).expect("serializing to a Vec cannot fail");
        out
    }

    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { what: "change", key: hex(key), reason };
        let seq = u64::from_be_bytes(key.try_into().map_err(|_| corrupt("key is not 8 bytes".into()))?);
        match value.split_first() {
            Some((&CHANGE_V1, body)) => {
                let v: ChangeEntryV1<serde_bytes::ByteBuf> =
                    postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))?;
                Ok(LoggedChange { seq, keyspace: v.keyspace, key: v.key.into_vec(), origin: v.origin })
            }
            Some((v, _)) => Err(corrupt(format!("unknown change format version {v}"))),
            None => Err(corrupt("empty value".into())),
        }
    }
}

/// Allocates sequence numbers and tracks which are still being written.
#[derive(Debug)]
pub struct SeqTracker {
    state: Mutex<SeqState>,
}

#[derive(Debug)]
struct SeqState {
    next: u64,
    in_flight: BTreeSet<u64>,
}

impl SeqTracker {
    /// A tracker whose first allocation is `last + 1`.
    pub fn new(last: u64) -> Self {
        Self { state: Mutex::new(SeqState { next: last + 1, in_flight: BTreeSet::new() }) }
    }

    /// Allocates the next sequence number and marks it in flight.
    pub fn allocate(&self) -> u64 {
        let mut s = self.state.lock();
        let seq = s.next;
        s.next += 1;
        s.in_flight.insert(seq);
        seq
    }

    /// Marks `seq` finished (written or failed).
    pub fn complete(&self, seq: u64) {
        self.state.lock().in_flight.remove(&seq);
    }

    /// The greatest sequence number below which nothing is in flight: every entry up to it
    /// is either durable in the log or will never exist.
    pub fn visible(&self) -> u64 {
        let s = self.state.lock();
        match s.in_flight.first() {
            Some(&first) => first - 1,
            None => s.next - 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_waits_for_the_oldest_in_flight() {
        let t = SeqTracker::new(10);
        assert_eq!(t.visible(), 10);
        let a = t.allocate();
        let b = t.allocate();
        assert_eq!((a, b), (11, 12));
        t.complete(b);
        assert_eq!(t.visible(), 10, "11 is still in flight");
        t.complete(a);
        assert_eq!(t.visible(), 12);
    }

    #[test]
    fn change_entry_round_trip_and_garbage() {
        let origin = Origin::Remote { region: "eu-west".into() };
        let value = LoggedChange::encode_parts("default", b"k", &origin);
        let back = LoggedChange::decode(&7u64.to_be_bytes(), &value).unwrap();
        assert_eq!(back, LoggedChange { seq: 7, keyspace: "default".into(), key: b"k".to_vec(), origin });
        assert!(LoggedChange::decode(&7u64.to_be_bytes(), &[9, 1, 2]).is_err());
        assert!(LoggedChange::decode(&7u64.to_be_bytes(), &[]).is_err());
        assert!(LoggedChange::decode(&[1, 2], &value).is_err());
        assert!(LoggedChange::decode(&7u64.to_be_bytes(), &[1, 0xff, 0xff, 0xff]).is_err());
    }
}
