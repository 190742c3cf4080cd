//! Intra-region RPC: the versioned messages nodes exchange over the mTLS QUIC endpoint
//! ([`meridian_net::Endpoint`]), and their encoding.
//!
//! Every payload on the wire is one postcard-encoded frame enum whose variants are protocol
//! versions (`V1`, ...), so a node can keep decoding older versions during a rolling upgrade.
//! Records inside frames use their own versioned codec ([`meridian_crdt::Record::encode`]).
//! Decoding never panics and never allocates more than the frame holds: anything malformed is
//! a [`RegionError::Protocol`] answer, counted, and changes nothing.
//!
//! # Layout
//!
//! - `messages.rs`: [`Request`], [`Response`], [`Message`] and their frames.

mod messages;

pub use messages::{
    decode_message, decode_request, decode_request_traced, decode_response, encode_message, encode_request,
    encode_request_traced, encode_response, KeyList, KeyspaceDef, Message, OpContextWire, RecordItems, Request,
    Response, SegmentKeyLists, StoredRecords, ALPN,
};

use crate::error::RegionError;
