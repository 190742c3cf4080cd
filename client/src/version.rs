//! [`Version`]: the hybrid-logical-clock version the API puts on every write and register read.
//!
//! The API writes a version as `<ntp64 time>/<node id>`, both decimal (`7301444403200000000/42`).
//! Versions are ordered as the store orders LWW writes: by time, then by node id. The session
//! token of a client is the greatest version it has seen acknowledged for its own writes.

use std::fmt;
use std::str::FromStr;

/// A write's version: `(HLC time, node id)`, ordered lexicographically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The 64-bit NTP-format HLC time (upper 32 bits seconds, lower 32 bits fraction).
    pub time: u64,
    /// The id of the node whose clock stamped the write.
    pub node: u64,
}

impl Version {
    /// The version `(time, node)`.
    pub fn new(time: u64, node: u64) -> Version {
        Version { time, node }
    }
}

impl fmt::Display for Version {
    /// The API's form, `<time>/<node>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.time, self.node)
    }
}

/// A string that is not `<decimal u64>/<decimal u64>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a version (<ntp64 time>/<node id>, both decimal)")]
pub struct ParseVersionError(pub String);

impl FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Version, ParseVersionError> {
        let bad = || ParseVersionError(s.to_owned());
        let (time, node) = s.split_once('/').ok_or_else(bad)?;
        let number = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            t.parse::<u64>().map_err(|_| bad())
        };
        Ok(Version { time: number(time)?, node: number(node)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_api_form() {
        let v: Version = "7301444403200000000/42".parse().expect("parse");
        assert_eq!(v, Version::new(7_301_444_403_200_000_000, 42));
        assert_eq!(v.to_string(), "7301444403200000000/42");
        let max = format!("{}/{}", u64::MAX, u64::MAX);
        assert_eq!(max.parse::<Version>().expect("max").to_string(), max);
    }

    #[test]
    fn orders_by_time_then_node() {
        assert!(Version::new(1, 9) < Version::new(2, 0));
        assert!(Version::new(2, 1) < Version::new(2, 3));
        assert_eq!(Version::new(5, 5).max(Version::new(5, 4)), Version::new(5, 5));
    }

    #[test]
    fn refuses_other_shapes() {
        for bad in
            ["", "/", "1", "1/", "/2", "1/2/3", "-1/2", "+1/2", " 1/2", "0x1/2", "1/2 ", "18446744073709551616/1"]
        {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} was accepted");
        }
    }
}
