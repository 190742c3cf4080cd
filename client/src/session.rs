//! The session: what the client wrote, so that its reads show its own writes across a
//! failover (read-your-writes), as far as the versions on the wire allow.
//!
//! After each acknowledged write the session keeps the write's version for the key (bounded:
//! the `capacity` most recently written keys) and the greatest version of all, the **session
//! token**, which reads carry in `X-Session-Token`. The servers do not wait on that header
//! yet, so the client checks what a register read returns against [`Session::satisfied`]: a
//! read of a key the session wrote is satisfied by a version at least as great as the
//! session's write of it, or, when that write was a delete, also by an absent key. A key the
//! session forgot (evicted) or never wrote is always satisfied.
//!
//! Counter and set reads carry no version, so they cannot be checked (see `docs/client.md`).

use std::collections::{BTreeMap, HashMap};

use crate::Version;

/// The session's last write of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Its version.
    pub version: Version,
    /// Whether it was a delete.
    pub deleted: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    written: Written,
    stamp: u64,
}

/// The writes of one session.
#[derive(Debug, Clone)]
pub struct Session {
    capacity: usize,
    token: Option<Version>,
    keys: HashMap<(String, String), Entry>,
    /// `stamp → key`, oldest write first, for eviction.
    order: BTreeMap<u64, (String, String)>,
    next_stamp: u64,
}

impl Session {
    /// A session remembering at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Session {
        Session { capacity: capacity.max(1), token: None, keys: HashMap::new(), order: BTreeMap::new(), next_stamp: 0 }
    }

    /// The session token: the greatest version of the session's acknowledged writes.
    pub fn token(&self) -> Option<Version> {
        self.token
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Records an acknowledged write of `key` in `keyspace` at `version`. A write whose version
    /// is older than what the session already holds for the key (answers can arrive out of
    /// order when writes overlap) keeps the newer one.
    pub fn wrote(&mut self, keyspace: &str, key: &str, version: Version, deleted: bool) {
        self.token = Some(self.token.map_or(version, |t| t.max(version)));
        let id = (keyspace.to_owned(), key.to_owned());
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let written = match self.keys.remove(&id) {
            Some(old) => {
                self.order.remove(&old.stamp);
                if old.written.version > version {
                    old.written
                } else {
                    Written { version, deleted }
                }
            }
            None => Written { version, deleted },
        };
        self.keys.insert(id.clone(), Entry { written, stamp });
        self.order.insert(stamp, id);
        while self.keys.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.keys.remove(&oldest);
        }
    }

    /// The session's last write of `key` in `keyspace`, if it remembers one.
    pub fn written(&self, keyspace: &str, key: &str) -> Option<Written> {
        self.keys.get(&(keyspace.to_owned(), key.to_owned())).map(|e| e.written)
    }

    /// Whether a read of the key that returned `seen` (`None`: absent) shows the session's
    /// write `written`.
    pub fn satisfied(written: Option<Written>, seen: Option<Version>) -> bool {
        match (written, seen) {
            (None, _) => true,
            (Some(w), Some(v)) => v >= w.version,
            (Some(w), None) => w.deleted,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn v(t: u64) -> Version {
        Version::new(t, 1)
    }

    #[test]
    fn the_token_is_the_greatest_write() {
        let mut s = Session::new(10);
        assert_eq!(s.token(), None);
        s.wrote("ks", "a", v(5), false);
        s.wrote("ks", "b", v(3), false);
        assert_eq!(s.token(), Some(v(5)));
        assert_eq!(s.written("ks", "b"), Some(Written { version: v(3), deleted: false }));
        assert_eq!(s.written("other", "b"), None);
    }

    #[test]
    fn reads_must_show_the_sessions_write_or_a_later_one() {
        let put = Some(Written { version: v(5), deleted: false });
        let del = Some(Written { version: v(5), deleted: true });
        assert!(!Session::satisfied(put, Some(v(4))));
        assert!(!Session::satisfied(put, None), "the put is missing");
        assert!(Session::satisfied(put, Some(v(5))));
        assert!(Session::satisfied(put, Some(Version::new(5, 2))), "a later write of another node");
        assert!(Session::satisfied(del, None), "absent is what a delete shows");
        assert!(!Session::satisfied(del, Some(v(4))), "the value the delete removed");
        assert!(Session::satisfied(None, None));
        assert!(Session::satisfied(None, Some(v(1))));
    }

    #[test]
    fn an_older_answer_does_not_replace_a_newer_write() {
        let mut s = Session::new(10);
        s.wrote("ks", "a", v(9), true);
        s.wrote("ks", "a", v(7), false);
        assert_eq!(s.written("ks", "a"), Some(Written { version: v(9), deleted: true }));
    }

    #[test]
    fn the_least_recently_written_key_is_forgotten_first() {
        let mut s = Session::new(2);
        s.wrote("ks", "a", v(1), false);
        s.wrote("ks", "b", v(2), false);
        s.wrote("ks", "a", v(3), false);
        s.wrote("ks", "c", v(4), false);
        assert_eq!(s.len(), 2);
        assert!(s.written("ks", "b").is_none(), "b was written least recently");
        assert!(s.written("ks", "a").is_some() && s.written("ks", "c").is_some());
        assert_eq!(s.token(), Some(v(4)));
    }

    proptest! {
        #[test]
        fn bounded_and_never_below_the_last_write(writes in prop::collection::vec((0u8..6, 0u64..50), 0..200)) {
            let mut s = Session::new(4);
            let mut last: HashMap<String, u64> = HashMap::new();
            let mut max: HashMap<String, u64> = HashMap::new();
            for (k, t) in &writes {
                let key = k.to_string();
                s.wrote("ks", &key, v(*t), false);
                last.insert(key.clone(), *t);
                let m = max.entry(key).or_insert(*t);
                *m = (*m).max(*t);
            }
            prop_assert!(s.len() <= 4);
            prop_assert_eq!(s.order.len(), s.keys.len());
            for (key, l) in &last {
                if let Some(w) = s.written("ks", key) {
                    prop_assert!(w.version >= v(*l) && w.version <= v(max[key]));
                }
            }
            prop_assert_eq!(s.token(), writes.iter().map(|(_, t)| v(*t)).max());
        }
    }
}
