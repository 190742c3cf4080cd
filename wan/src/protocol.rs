//! The wire protocol between regions: versioned postcard frames over the WAN endpoint
//! ([`meridian_net::WAN_ALPN`]).
//!
//! A **batch** carries changes (`keyspace`, `key`, the key's record state) from one node of
//! the source region to a node of the destination region, which merges them at local QUORUM
//! and acknowledges; the source moves its cursor only then. The entries are postcard-encoded
//! and compressed as one block (none, LZ4 or zstd); decompression is bounded by
//! [`MAX_BATCH_BYTES`] so a peer cannot make a node allocate more than that. **Sync** requests
//! are the full-sync digest exchange: bucket digests, segment digests, key lists of the
//! destination region over token ranges.

use meridian_crdt::Record;
use meridian_local::merkle::KeyList;
use meridian_local::{SegmentDigest, TokenRange};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::WanError;

/// Largest decompressed batch, in bytes.
pub const MAX_BATCH_BYTES: usize = 64 << 20;

/// `(keyspace, key, state)` items of a batch.
pub type Items = Vec<(String, Vec<u8>, Record)>;

/// Compression of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Codec {
    /// As is.
    None,
    /// LZ4 (frame format).
    Lz4,
    /// Zstandard, level 3.
    Zstd,
}

/// What a full-sync request asks the destination region for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestQuery {
    /// Bucket digests of the ranges.
    Buckets {
        /// The ranges.
        ranges: Vec<TokenRange>,
    },
    /// Segment digests of the ranges in these buckets.
    Segments {
        /// The ranges.
        ranges: Vec<TokenRange>,
        /// Bucket numbers.
        buckets: Vec<u16>,
    },
    /// Key lists of the ranges in these segments.
    Keys {
        /// The ranges.
        ranges: Vec<TokenRange>,
        /// Segment numbers.
        segments: Vec<u16>,
    },
}

/// The answer to a [`DigestQuery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestAnswer {
    /// Bucket or segment digests, by number.
    Digests(Vec<(u16, SegmentDigest)>),
    /// Key lists by segment.
    Keys(Vec<(u16, KeyList)>),
}

/// A request from a source region.
#[derive(Debug, Clone, PartialEq)]
pub enum WanRequest {
    /// Changes to merge.
    Batch {
        /// The source region (checked against the peer configuration by the receiver).
        source_region: String,
        /// The changes.
        items: Items,
    },
    /// A full-sync digest query.
    Sync {
        /// The source region.
        source_region: String,
        /// The query.
        query: DigestQuery,
    },
}

/// A destination region's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum WanResponse {
    /// The batch is applied at local QUORUM.
    Ack {
        /// Items whose merge changed the destination's state.
        changed: u32,
    },
    /// A full-sync answer.
    Digest(DigestAnswer),
    /// Refused.
    Error {
        /// Stable code.
        code: String,
        /// Human text.
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
enum RequestFrame {
    V1(RequestV1),
    /// A V1 request with the sender's W3C `traceparent`; sent only when tracing is on, so
    /// regions without traces keep exchanging V1 frames.
    V2 {
        traceparent: String,
        request: RequestV1,
    },
}

#[derive(Serialize, Deserialize)]
enum RequestV1 {
    Batch { source_region: String, codec: Codec, entries: u32, payload: ByteBuf },
    Sync { source_region: String, query: QueryV1 },
}

#[derive(Serialize, Deserialize)]
enum QueryV1 {
    Buckets { ranges: Vec<TokenRange> },
    Segments { ranges: Vec<TokenRange>, buckets: Vec<u16> },
    Keys { ranges: Vec<TokenRange>, segments: Vec<u16> },
}

#[derive(Serialize, Deserialize)]
enum ResponseFrame {
    V1(ResponseV1),
}

#[derive(Serialize, Deserialize)]
enum ResponseV1 {
    Ack { changed: u32 },
    Digests(Vec<(u16, SegmentDigest)>),
    Keys(Vec<(u16, Vec<(ByteBuf, u64)>)>),
    Error { code: String, message: String },
}

fn bad(msg: impl Into<String>) -> WanError {
    WanError::Protocol(msg.into())
}

fn frame<'a, T: Deserialize<'a>>(what: &str, bytes: &'a [u8]) -> Result<T, WanError> {
    let (v, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| bad(format!("undecodable {what}: {e}")))?;
    if !rest.is_empty() {
        return Err(bad(format!("{what} with {} trailing bytes", rest.len())));
    }
    Ok(v)
}

fn compress(codec: Codec, raw: Vec<u8>) -> Vec<u8> {
    match codec {
        Codec::None => raw,
        Codec::Lz4 => lz4_flex::compress_prepend_size(&raw),
        // Compressing into a Vec cannot fail; fall back to the raw bytes marked as such if it
        // ever did would need another codec tag, so unwrap with a clear message.
        Codec::Zstd => zstd::bulk::compress(&raw, 3).expect("zstd compression of an in-memory buffer"),
    }
}

fn decompress(codec: Codec, data: &[u8]) -> Result<Vec<u8>, WanError> {
    match codec {
        Codec::None => Ok(data.to_vec()),
        Codec::Lz4 => {
            let declared = data.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            match declared {
                Some(n) if n <= MAX_BATCH_BYTES => {
                    lz4_flex::decompress_size_prepended(data).map_err(|e| bad(format!("lz4: {e}")))
                }
                Some(n) => Err(bad(format!("batch of {n} bytes declared, more than {MAX_BATCH_BYTES}"))),
                None => Err(bad("lz4 batch shorter than its size prefix")),
            }
        }
        Codec::Zstd => zstd::bulk::decompress(data, MAX_BATCH_BYTES).map_err(|e| bad(format!("zstd: {e}"))),
    }
}

type WireItems = Vec<(String, ByteBuf, ByteBuf)>;

/// Encodes a request, compressing a batch with `codec` (a V1 frame, no trace context).
pub fn encode_request(req: &WanRequest, codec: Codec) -> Vec<u8> {
    encode_request_traced(req, codec, None)
}

/// Encodes a request with the sender's trace context, if any (a V2 frame then).
pub fn encode_request_traced(req: &WanRequest, codec: Codec, traceparent: Option<&str>) -> Vec<u8> {
    let v1 = match req {
        WanRequest::Batch { source_region, items } => {
            let wire: WireItems = items
                .iter()
                .map(|(ks, k, r)| (ks.clone(), ByteBuf::from(k.clone()), ByteBuf::from(r.encode())))
                .collect();
            let raw = postcard::to_allocvec(&wire).expect("postcard serialization of plain data");
            RequestV1::Batch {
                source_region: source_region.clone(),
                codec,
                entries: items.len() as u32,
                payload: ByteBuf::from(compress(codec, raw)),
            }
        }
        WanRequest::Sync { source_region, query } => RequestV1::Sync {
            source_region: source_region.clone(),
            query: match query {
                DigestQuery::Buckets { ranges } => QueryV1::Buckets { ranges: ranges.clone() },
                DigestQuery::Segments { ranges, buckets } => {
                    QueryV1::Segments { ranges: ranges.clone(), buckets: buckets.clone() }
                }
                DigestQuery::Keys { ranges, segments } => {
                    QueryV1::Keys { ranges: ranges.clone(), segments: segments.clone() }
                }
            },
        },
    };
    let frame = match traceparent {
        Some(tp) => RequestFrame::V2 { traceparent: tp.to_owned(), request: v1 },
        None => RequestFrame::V1(v1),
    };
    postcard::to_allocvec(&frame).expect("postcard serialization of plain data")
}

/// Decodes a request; garbage, bad compression, oversized batches and undecodable records are
/// [`WanError::Protocol`].
pub fn decode_request(bytes: &[u8]) -> Result<WanRequest, WanError> {
    decode_request_traced(bytes).map(|(r, _)| r)
}

/// Decodes a request and the sender's trace context (V2 frames); a trace context longer than
/// [`meridian_net::trace::MAX_TRACEPARENT`] is a [`WanError::Protocol`].
pub fn decode_request_traced(bytes: &[u8]) -> Result<(WanRequest, Option<String>), WanError> {
    let (v1, traceparent) = match frame("WAN request", bytes)? {
        RequestFrame::V1(v1) => (v1, None),
        RequestFrame::V2 { traceparent, request } => {
            if traceparent.len() > meridian_net::trace::MAX_TRACEPARENT {
                return Err(bad(format!("traceparent of {} bytes", traceparent.len())));
            }
            (request, Some(traceparent))
        }
    };
    Ok((decode_request_v1(v1)?, traceparent))
}

fn decode_request_v1(v1: RequestV1) -> Result<WanRequest, WanError> {
    Ok(match v1 {
        RequestV1::Batch { source_region, codec, entries, payload } => {
            let raw = decompress(codec, &payload)?;
            let wire: WireItems = frame("batch entries", &raw)?;
            if wire.len() != entries as usize {
                return Err(bad(format!("batch declares {entries} entries and holds {}", wire.len())));
            }
            let items = wire
                .into_iter()
                .map(|(ks, k, r)| {
                    Record::decode(&r).map(|rec| (ks, k.into_vec(), rec)).map_err(|e| bad(format!("record: {e}")))
                })
                .collect::<Result<Items, WanError>>()?;
            WanRequest::Batch { source_region, items }
        }
        RequestV1::Sync { source_region, query } => WanRequest::Sync {
            source_region,
            query: match query {
                QueryV1::Buckets { ranges } => DigestQuery::Buckets { ranges },
                QueryV1::Segments { ranges, buckets } => DigestQuery::Segments { ranges, buckets },
                QueryV1::Keys { ranges, segments } => DigestQuery::Keys { ranges, segments },
            },
        },
    })
}

/// Encodes a response.
pub fn encode_response(resp: &WanResponse) -> Vec<u8> {
    let v1 = match resp {
        WanResponse::Ack { changed } => ResponseV1::Ack { changed: *changed },
        WanResponse::Digest(DigestAnswer::Digests(d)) => ResponseV1::Digests(d.clone()),
        WanResponse::Digest(DigestAnswer::Keys(k)) => ResponseV1::Keys(
            k.iter()
                .map(|(s, list)| (*s, list.iter().map(|(key, h)| (ByteBuf::from(key.clone()), *h)).collect()))
                .collect(),
        ),
        WanResponse::Error { code, message } => ResponseV1::Error { code: code.clone(), message: message.clone() },
    };
    postcard::to_allocvec(&ResponseFrame::V1(v1)).expect("postcard serialization of plain data")
}

/// Decodes a response.
pub fn decode_response(bytes: &[u8]) -> Result<WanResponse, WanError> {
    let ResponseFrame::V1(v1) = frame("WAN response", bytes)?;
    Ok(match v1 {
        ResponseV1::Ack { changed } => WanResponse::Ack { changed },
        ResponseV1::Digests(d) => WanResponse::Digest(DigestAnswer::Digests(d)),
        ResponseV1::Keys(k) => WanResponse::Digest(DigestAnswer::Keys(
            k.into_iter()
                .map(|(s, list)| (s, list.into_iter().map(|(key, h)| (key.into_vec(), h)).collect()))
                .collect(),
        )),
        ResponseV1::Error { code, message } => WanResponse::Error { code, message },
    })
}

#[cfg(test)]
mod tests {
    use meridian_crdt::{Hlc, Limits, NodeId, Op, OpContext, ValueKind};

    use super::*;

    fn record(v: &[u8]) -> Record {
        let ctx = OpContext { actor: NodeId(1), ts: Hlc::from_physical_ms(1_000, NodeId(1)), now_ms: 1_000 };
        Record::apply(None, ValueKind::Lww, &Op::LwwPut { value: v.to_vec(), ttl_ms: None }, &ctx, &Limits::default())
            .expect("apply")
    }

    #[test]
    fn batches_round_trip_with_every_codec() {
        let items: Items = (0..50).map(|i| ("default".to_owned(), vec![i as u8], record(&[i as u8; 300]))).collect();
        for codec in [Codec::None, Codec::Lz4, Codec::Zstd] {
            let req = WanRequest::Batch { source_region: "us-east".into(), items: items.clone() };
            let bytes = encode_request(&req, codec);
            assert_eq!(decode_request(&bytes).expect("decode"), req, "{codec:?}");
            if codec != Codec::None {
                assert!(bytes.len() < encode_request(&req, Codec::None).len() / 2, "{codec:?} compresses");
            }
        }
    }

    #[test]
    fn garbage_and_bombs_are_refused() {
        assert!(decode_request(b"garbage").is_err());
        assert!(decode_request(&[]).is_err());
        // An LZ4 block declaring 1 GiB.
        let bomb = RequestFrame::V1(RequestV1::Batch {
            source_region: "x".into(),
            codec: Codec::Lz4,
            entries: 1,
            payload: ByteBuf::from(vec![0, 0, 0, 0x40, 1, 2, 3]),
        });
        let err = decode_request(&postcard::to_allocvec(&bomb).unwrap()).unwrap_err();
        assert!(err.to_string().contains("more than"), "{err}");
        // A batch that lies about its entry count.
        let req = WanRequest::Batch { source_region: "x".into(), items: vec![("k".into(), vec![1], record(b"v"))] };
        let mut frame: RequestFrame = postcard::from_bytes(&encode_request(&req, Codec::None)).unwrap();
        let RequestFrame::V1(RequestV1::Batch { entries, .. }) = &mut frame else { unreachable!() };
        *entries = 2;
        assert!(decode_request(&postcard::to_allocvec(&frame).unwrap()).is_err());
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            WanResponse::Ack { changed: 7 },
            WanResponse::Digest(DigestAnswer::Digests(vec![(3, SegmentDigest { hash: 9, count: 2 })])),
            WanResponse::Digest(DigestAnswer::Keys(vec![(3, vec![(b"k".to_vec(), 5)])])),
            WanResponse::Error { code: "region_fenced".into(), message: "m".into() },
        ] {
            assert_eq!(decode_response(&encode_response(&r)).expect("decode"), r);
        }
    }
}
