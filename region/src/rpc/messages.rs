//! The wire messages of intra-region RPC.

use meridian_crdt::{Hlc, Limits, NodeId, Op, OpContext, Record, ValueKind};
use meridian_local::{Origin, SegmentDigest, TokenRange};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::RegionError;

/// `(storage key, entry hash)` of the records of one Merkle segment, sorted by key.
pub type KeyList = Vec<(Vec<u8>, u64)>;
/// Key lists by segment number.
pub type SegmentKeyLists = Vec<(u16, KeyList)>;
/// `(keyspace, key, state)` items of a batch merge.
pub type RecordItems = Vec<(String, Vec<u8>, Record)>;
/// Records by storage key (`None`: not stored).
pub type StoredRecords = Vec<(Vec<u8>, Option<Record>)>;

/// ALPN of intra-region RPC and gossip; a peer speaking anything else fails the handshake.
pub const ALPN: &[u8] = b"meridian-rpc/1";

/// [`OpContext`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpContextWire {
    /// The applying actor.
    pub actor: u64,
    /// Its HLC for the op.
    pub ts: Hlc,
    /// Physical time for TTL arithmetic.
    pub now_ms: u64,
}

impl From<OpContext> for OpContextWire {
    fn from(c: OpContext) -> Self {
        OpContextWire { actor: c.actor.0, ts: c.ts, now_ms: c.now_ms }
    }
}

impl From<OpContextWire> for OpContext {
    fn from(c: OpContextWire) -> Self {
        OpContext { actor: NodeId(c.actor), ts: c.ts, now_ms: c.now_ms }
    }
}

/// A keyspace definition as nodes exchange it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceDef {
    /// Name.
    pub name: String,
    /// Value type.
    pub kind: ValueKind,
    /// When it was created (the creating node's HLC): of two definitions of one name with
    /// different types, the earlier wins everywhere.
    pub created: Hlc,
}

/// A request from a coordinator (or a peer) to a replica.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Liveness and identity check.
    Ping,
    /// Apply a client operation. `ctx: Some`: with the coordinator's context (the same at
    /// every replica, `lww`); `None`: as the leader, with this replica's own actor and HLC.
    Apply {
        /// Keyspace.
        keyspace: String,
        /// Key.
        key: Vec<u8>,
        /// The keyspace's type.
        kind: ValueKind,
        /// The operation.
        op: Op,
        /// The coordinator's context, or `None` for a leader apply.
        ctx: Option<OpContextWire>,
        /// Client limits (sibling cap).
        limits: Limits,
    },
    /// Merge a state, then optionally apply an op with this replica's own context.
    Merge {
        /// Keyspace.
        keyspace: String,
        /// Key.
        key: Vec<u8>,
        /// The keyspace's type (for `then_apply`).
        kind: ValueKind,
        /// The state to merge.
        record: Record,
        /// Its origin in the replica's change log.
        origin: Origin,
        /// An op to apply after the merge.
        then_apply: Option<Op>,
        /// Client limits for `then_apply`.
        limits: Limits,
    },
    /// Read a key's stored record.
    Read {
        /// Keyspace.
        keyspace: String,
        /// Key.
        key: Vec<u8>,
    },
    /// Learn (and persist) a keyspace definition.
    PutKeyspace(KeyspaceDef),
    /// Merge many states (hint replay, anti-entropy push, range streaming), in order.
    MergeBatch {
        /// `(keyspace, key, state)`.
        items: RecordItems,
        /// The origin in the receiver's change log.
        origin: Origin,
    },
    /// The Merkle digest of `ranges`, folded into 256 buckets of 256 segments (anti-entropy,
    /// first level).
    DigestBuckets {
        /// The ranges both sides replicate.
        ranges: Vec<TokenRange>,
    },
    /// The segment digests of `ranges` in the given buckets (second level).
    DigestSegments {
        /// The ranges.
        ranges: Vec<TokenRange>,
        /// Bucket numbers (`segment >> 8`).
        buckets: Vec<u16>,
    },
    /// `(storage key, entry hash)` of the records of `ranges` in the given segments (third
    /// level).
    SegmentKeys {
        /// The ranges.
        ranges: Vec<TokenRange>,
        /// Segment numbers.
        segments: Vec<u16>,
    },
    /// The records stored under these storage keys.
    GetRecords {
        /// Storage keys (as listed by `SegmentKeys`).
        storage_keys: Vec<Vec<u8>>,
    },
    /// Up to `limit` records of `range` in token order after `after` (range streaming).
    ScanRange {
        /// The range.
        range: TokenRange,
        /// Resume after this storage key.
        after: Option<Vec<u8>>,
        /// Most records in the answer.
        limit: u32,
    },
    /// Decommission yourself: hand your ranges over and leave the ring.
    Decommission,
    /// Set (or clear) the region fence on this node.
    SetFence {
        /// Fenced or not.
        on: bool,
    },
}

impl Request {
    /// The request's name, for spans and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Apply { .. } => "apply",
            Request::Merge { .. } => "merge",
            Request::Read { .. } => "read",
            Request::PutKeyspace(_) => "put_keyspace",
            Request::MergeBatch { .. } => "merge_batch",
            Request::DigestBuckets { .. } => "digest_buckets",
            Request::DigestSegments { .. } => "digest_segments",
            Request::SegmentKeys { .. } => "segment_keys",
            Request::GetRecords { .. } => "get_records",
            Request::ScanRange { .. } => "scan_range",
            Request::Decommission => "decommission",
            Request::SetFence { .. } => "set_fence",
        }
    }
}

/// A replica's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// Answer to [`Request::Ping`].
    Pong {
        /// The answering node's number.
        node: u64,
    },
    /// The op was applied durably; the resulting state.
    Applied {
        /// State after the op.
        record: Record,
    },
    /// The merge (and `then_apply`) is durable.
    Merged,
    /// The stored record, if any.
    Record(Option<Record>),
    /// Done (keyspace learned, decommission started).
    Done,
    /// Bucket or segment digests, by number.
    Digests(Vec<(u16, SegmentDigest)>),
    /// Per segment, the `(storage key, entry hash)` list, sorted by key.
    Keys(SegmentKeyLists),
    /// Records by storage key (`None`: not stored).
    Records(StoredRecords),
    /// A page of a range scan; `done` when the range is exhausted.
    Scan {
        /// `(storage key, record)` in token order.
        items: Vec<(Vec<u8>, Record)>,
        /// No more records after these.
        done: bool,
    },
    /// The replica refused or failed.
    Error {
        /// The stable error code.
        code: String,
        /// Human text.
        message: String,
    },
}

impl Response {
    /// The error answer for `e`.
    pub fn error(e: &RegionError) -> Response {
        Response::Error { code: e.code().to_owned(), message: e.to_string() }
    }
}

/// A one-way message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A chitchat gossip message (its own serialization).
    Gossip(Vec<u8>),
}

// ---- wire structs: private, versioned; changing them changes the protocol ----

#[derive(Serialize, Deserialize)]
enum RequestFrame {
    V1(RequestV1),
    /// A V1 request with the sender's W3C `traceparent`. Sent only when tracing is on, so a
    /// cluster without traces keeps sending V1 frames (older nodes decode them).
    V2 {
        traceparent: String,
        request: RequestV1,
    },
}

#[derive(Serialize, Deserialize)]
enum RequestV1 {
    Ping,
    Apply {
        keyspace: String,
        key: ByteBuf,
        kind: ValueKind,
        op: Op,
        ctx: Option<OpContextWire>,
        limits: Limits,
    },
    Merge {
        keyspace: String,
        key: ByteBuf,
        kind: ValueKind,
        record: ByteBuf,
        origin: Origin,
        then_apply: Option<Op>,
        limits: Limits,
    },
    Read {
        keyspace: String,
        key: ByteBuf,
    },
    PutKeyspace(KeyspaceDef),
    MergeBatch {
        items: Vec<(String, ByteBuf, ByteBuf)>,
        origin: Origin,
    },
    DigestBuckets {
        ranges: Vec<TokenRange>,
    },
    DigestSegments {
        ranges: Vec<TokenRange>,
        buckets: Vec<u16>,
    },
    SegmentKeys {
        ranges: Vec<TokenRange>,
        segments: Vec<u16>,
    },
    GetRecords {
        storage_keys: Vec<ByteBuf>,
    },
    ScanRange {
        range: TokenRange,
        after: Option<ByteBuf>,
        limit: u32,
    },
    Decommission,
    SetFence {
        on: bool,
    },
}

#[derive(Serialize, Deserialize)]
enum ResponseFrame {
    V1(ResponseV1),
}

#[derive(Serialize, Deserialize)]
enum ResponseV1 {
    Pong { node: u64 },
    Applied { record: ByteBuf },
    Merged,
    Record(Option<ByteBuf>),
    Done,
    Error { code: String, message: String },
    Digests(Vec<(u16, SegmentDigest)>),
    Keys(Vec<(u16, Vec<(ByteBuf, u64)>)>),
    Records(Vec<(ByteBuf, Option<ByteBuf>)>),
    Scan { items: Vec<(ByteBuf, ByteBuf)>, done: bool },
}

#[derive(Serialize, Deserialize)]
enum MessageFrame {
    V1(MessageV1),
}

#[derive(Serialize, Deserialize)]
enum MessageV1 {
    Gossip(ByteBuf),
}

fn to_bytes<T: Serialize>(frame: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_allocvec(frame).expect("postcard serialization of wire frames is infallible")
}

fn from_bytes<'a, T: Deserialize<'a>>(what: &str, bytes: &'a [u8]) -> Result<T, RegionError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)
        .map_err(|e| RegionError::Protocol(format!("undecodable {what} frame: {e}")))?;
    if !rest.is_empty() {
        return Err(RegionError::Protocol(format!("{what} frame with {} trailing bytes", rest.len())));
    }
    Ok(value)
}

fn decode_record(bytes: &[u8]) -> Result<Record, RegionError> {
    Record::decode(bytes).map_err(|e| RegionError::Protocol(format!("undecodable record in frame: {e}")))
}

/// Encodes a request (a V1 frame, without trace context).
pub fn encode_request(r: &Request) -> Vec<u8> {
    encode_request_traced(r, None)
}

/// Encodes a request with the sender's trace context, if any (a V2 frame then).
pub fn encode_request_traced(r: &Request, traceparent: Option<&str>) -> Vec<u8> {
    let v1 = match r {
        Request::Ping => RequestV1::Ping,
        Request::Apply { keyspace, key, kind, op, ctx, limits } => RequestV1::Apply {
            keyspace: keyspace.clone(),
            key: ByteBuf::from(key.clone()),
            kind: *kind,
            op: op.clone(),
            ctx: *ctx,
            limits: *limits,
        },
        Request::Merge { keyspace, key, kind, record, origin, then_apply, limits } => RequestV1::Merge {
            keyspace: keyspace.clone(),
            key: ByteBuf::from(key.clone()),
            kind: *kind,
            record: ByteBuf::from(record.encode()),
            origin: origin.clone(),
            then_apply: then_apply.clone(),
            limits: *limits,
        },
        Request::Read { keyspace, key } => {
            RequestV1::Read { keyspace: keyspace.clone(), key: ByteBuf::from(key.clone()) }
        }
        Request::PutKeyspace(def) => RequestV1::PutKeyspace(def.clone()),
        Request::MergeBatch { items, origin } => RequestV1::MergeBatch {
            items: items
                .iter()
                .map(|(ks, k, r)| (ks.clone(), ByteBuf::from(k.clone()), ByteBuf::from(r.encode())))
                .collect(),
            origin: origin.clone(),
        },
        Request::DigestBuckets { ranges } => RequestV1::DigestBuckets { ranges: ranges.clone() },
        Request::DigestSegments { ranges, buckets } => {
            RequestV1::DigestSegments { ranges: ranges.clone(), buckets: buckets.clone() }
        }
        Request::SegmentKeys { ranges, segments } => {
            RequestV1::SegmentKeys { ranges: ranges.clone(), segments: segments.clone() }
        }
        Request::GetRecords { storage_keys } => {
            RequestV1::GetRecords { storage_keys: storage_keys.iter().cloned().map(ByteBuf::from).collect() }
        }
        Request::ScanRange { range, after, limit } => {
            RequestV1::ScanRange { range: *range, after: after.clone().map(ByteBuf::from), limit: *limit }
        }
        Request::Decommission => RequestV1::Decommission,
        Request::SetFence { on } => RequestV1::SetFence { on: *on },
    };
    match traceparent {
        Some(tp) => to_bytes(&RequestFrame::V2 { traceparent: tp.to_owned(), request: v1 }),
        None => to_bytes(&RequestFrame::V1(v1)),
    }
}

/// Decodes a request; malformed input is [`RegionError::Protocol`].
pub fn decode_request(bytes: &[u8]) -> Result<Request, RegionError> {
    decode_request_traced(bytes).map(|(r, _)| r)
}

/// Decodes a request and the sender's trace context (V2 frames). A trace context longer than
/// [`meridian_net::trace::MAX_TRACEPARENT`] is refused like any malformed frame.
pub fn decode_request_traced(bytes: &[u8]) -> Result<(Request, Option<String>), RegionError> {
    let (v1, traceparent) = match from_bytes("request", bytes)? {
        RequestFrame::V1(v1) => (v1, None),
        RequestFrame::V2 { traceparent, request } => {
            if traceparent.len() > meridian_net::trace::MAX_TRACEPARENT {
                return Err(RegionError::Protocol(format!("traceparent of {} bytes", traceparent.len())));
            }
            (request, Some(traceparent))
        }
    };
    Ok((decode_request_v1(v1)?, traceparent))
}

fn decode_request_v1(v1: RequestV1) -> Result<Request, RegionError> {
    Ok(match v1 {
        RequestV1::Ping => Request::Ping,
        RequestV1::Apply { keyspace, key, kind, op, ctx, limits } => {
            Request::Apply { keyspace, key: key.into_vec(), kind, op, ctx, limits }
        }
        RequestV1::Merge { keyspace, key, kind, record, origin, then_apply, limits } => Request::Merge {
            keyspace,
            key: key.into_vec(),
            kind,
            record: decode_record(&record)?,
            origin,
            then_apply,
            limits,
        },
        RequestV1::Read { keyspace, key } => Request::Read { keyspace, key: key.into_vec() },
        RequestV1::PutKeyspace(def) => Request::PutKeyspace(def),
        RequestV1::MergeBatch { items, origin } => Request::MergeBatch {
            items: items
                .into_iter()
                .map(|(ks, k, r)| Ok((ks, k.into_vec(), decode_record(&r)?)))
                .collect::<Result<_, RegionError>>()?,
            origin,
        },
        RequestV1::DigestBuckets { ranges } => Request::DigestBuckets { ranges },
        RequestV1::DigestSegments { ranges, buckets } => Request::DigestSegments { ranges, buckets },
        RequestV1::SegmentKeys { ranges, segments } => Request::SegmentKeys { ranges, segments },
        RequestV1::GetRecords { storage_keys } => {
            Request::GetRecords { storage_keys: storage_keys.into_iter().map(ByteBuf::into_vec).collect() }
        }
        RequestV1::ScanRange { range, after, limit } => {
            Request::ScanRange { range, after: after.map(ByteBuf::into_vec), limit }
        }
        RequestV1::Decommission => Request::Decommission,
        RequestV1::SetFence { on } => Request::SetFence { on },
    })
}

/// Encodes a response.
pub fn encode_response(r: &Response) -> Vec<u8> {
    let v1 = match r {
        Response::Pong { node } => ResponseV1::Pong { node: *node },
        Response::Applied { record } => ResponseV1::Applied { record: ByteBuf::from(record.encode()) },
        Response::Merged => ResponseV1::Merged,
        Response::Record(r) => ResponseV1::Record(r.as_ref().map(|r| ByteBuf::from(r.encode()))),
        Response::Done => ResponseV1::Done,
        Response::Error { code, message } => ResponseV1::Error { code: code.clone(), message: message.clone() },
        Response::Digests(d) => ResponseV1::Digests(d.clone()),
        Response::Keys(k) => ResponseV1::Keys(
            k.iter()
                .map(|(seg, list)| (*seg, list.iter().map(|(key, h)| (ByteBuf::from(key.clone()), *h)).collect()))
                .collect(),
        ),
        Response::Records(r) => ResponseV1::Records(
            r.iter()
                .map(|(k, rec)| (ByteBuf::from(k.clone()), rec.as_ref().map(|r| ByteBuf::from(r.encode()))))
                .collect(),
        ),
        Response::Scan { items, done } => ResponseV1::Scan {
            items: items.iter().map(|(k, r)| (ByteBuf::from(k.clone()), ByteBuf::from(r.encode()))).collect(),
            done: *done,
        },
    };
    to_bytes(&ResponseFrame::V1(v1))
}

/// Decodes a response; malformed input is [`RegionError::Protocol`].
pub fn decode_response(bytes: &[u8]) -> Result<Response, RegionError> {
    let ResponseFrame::V1(v1) = from_bytes("response", bytes)?;
    Ok(match v1 {
        ResponseV1::Pong { node } => Response::Pong { node },
        ResponseV1::Applied { record } => Response::Applied { record: decode_record(&record)? },
        ResponseV1::Merged => Response::Merged,
        ResponseV1::Record(r) => Response::Record(r.map(|b| decode_record(&b)).transpose()?),
        ResponseV1::Done => Response::Done,
        ResponseV1::Error { code, message } => Response::Error { code, message },
        ResponseV1::Digests(d) => Response::Digests(d),
        ResponseV1::Keys(k) => Response::Keys(
            k.into_iter()
                .map(|(seg, list)| (seg, list.into_iter().map(|(key, h)| (key.into_vec(), h)).collect()))
                .collect(),
        ),
        ResponseV1::Records(r) => Response::Records(
            r.into_iter()
                .map(|(k, rec)| Ok((k.into_vec(), rec.map(|b| decode_record(&b)).transpose()?)))
                .collect::<Result<_, RegionError>>()?,
        ),
        ResponseV1::Scan { items, done } => Response::Scan {
            items: items
                .into_iter()
                .map(|(k, r)| Ok((k.into_vec(), decode_record(&r)?)))
                .collect::<Result<_, RegionError>>()?,
            done,
        },
    })
}

/// Encodes a one-way message.
pub fn encode_message(m: &Message) -> Vec<u8> {
    let v1 = match m {
        Message::Gossip(b) => MessageV1::Gossip(ByteBuf::from(b.clone())),
    };
    to_bytes(&MessageFrame::V1(v1))
}

/// Decodes a one-way message; malformed input is [`RegionError::Protocol`].
pub fn decode_message(bytes: &[u8]) -> Result<Message, RegionError> {
    let MessageFrame::V1(v1) = from_bytes("message", bytes)?;
    Ok(match v1 {
        MessageV1::Gossip(b) => Message::Gossip(b.into_vec()),
    })
}
