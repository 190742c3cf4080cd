//! Hinted handoff storage: writes kept for a replica that could not take them, replayed
//! when it comes back. Keyed by `target node (u64 BE) ‖ sequence (u64 BE)`, so the hints
//! of one target are one contiguous scan, oldest first.

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys::hex;

/// A write kept for another replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// The replica the write is for.
    pub target: u64,
    /// Position among this node's hints.
    pub seq: u64,
    /// Keyspace of the key.
    pub keyspace: String,
    /// The key.
    pub key: Vec<u8>,
    /// Encoded record state to merge at the target.
    pub record: Vec<u8>,
    /// When the hint was stored (ms since the UNIX epoch), for the hint window.
    pub created_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct HintV1 {
    keyspace: String,
    #[serde(with = "serde_bytes")]
    key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    record: Vec<u8>,
    created_ms: u64,
}

const HINT_V1: u8 = 1;

impl Hint {
    pub(crate) fn storage_key(target: u64, seq: u64) -> Vec<u8> {
        let mut k = Vec::with_capacity(16);
        k.extend_from_slice(&target.to_be_bytes());
        k.extend_from_slice(&seq.to_be_bytes());
        k
    }

    pub(crate) fn encode_value(&self) -> Vec<u8> {
        let body = HintV1 {
            keyspace: self.keyspace.clone(),
            key: self.key.clone(),
            record: self.record.clone(),
            created_ms: self.created_ms,
        };
        let mut out = vec![HINT_V1];
        out.extend(postcard::to_stdvec(&body).expect("serializing to a Vec cannot fail"));
        out
    }

    pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { what: "hint", key: hex(key), reason };
        if key.len() != 16 {
            return Err(corrupt("key is not 16 bytes".into()));
        }
        let target = u64::from_be_bytes(key[..8].try_into().expect("16 bytes"));
        let seq = u64::from_be_bytes(key[8..].try_into().expect("16 bytes"));
        match value.split_first() {
            Some((&HINT_V1, body)) => {
                let v: HintV1 = postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))?;
                Ok(Hint { target, seq, keyspace: v.keyspace, key: v.key, record: v.record, created_ms: v.created_ms })
            }
            Some((v, _)) => Err(corrupt(format!("unknown hint format version {v}"))),
            None => Err(corrupt("empty value".into())),
        }
    }
}
