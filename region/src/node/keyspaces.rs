//! The keyspaces a node serves: declared in configuration, implicit, or created through the
//! admin API and spread through the region.
//!
//! Rules (docs/algorithms/membership.md, "Keyspaces"):
//! - `default` (`lww`), `counters` (`counter`) and `sets` (`set`) always exist unless the
//!   configuration declares them; the configuration's definitions win over anything learned.
//! - A keyspace created through the API is a [`KeyspaceDef`] with its creation HLC. Nodes learn
//!   definitions from the creating node's broadcast and from gossip; of two definitions of one
//!   name with different types, the one with the smaller `created` wins on every node, so the
//!   region converges on one type whatever the order it learns them in.

use std::collections::BTreeMap;

use meridian_config::{ConsistencyLevel, KeyspaceConfig, KeyspaceType};
use meridian_crdt::{Hlc, ValueKind};
use parking_lot::RwLock;

use crate::error::RegionError;
use crate::rpc::KeyspaceDef;
use crate::service::KeyspaceInfo;

/// Implicit keyspaces and their types.
pub const IMPLICIT: [(&str, ValueKind); 3] =
    [("default", ValueKind::Lww), ("counters", ValueKind::Counter), ("sets", ValueKind::Set)];

/// The store metadata entry holding API-created keyspaces (JSON).
pub const META_KEY: &str = "keyspaces";

/// The value kind of a configured keyspace type.
pub fn kind_of(t: KeyspaceType) -> ValueKind {
    match t {
        KeyspaceType::Lww => ValueKind::Lww,
        KeyspaceType::Mvr => ValueKind::Mvr,
        KeyspaceType::Counter => ValueKind::Counter,
        KeyspaceType::Set => ValueKind::Set,
    }
}

/// One keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    /// Name.
    pub name: String,
    /// Value type.
    pub kind: ValueKind,
    /// Default level.
    pub consistency: Option<ConsistencyLevel>,
    /// `None` for configured and implicit ones; the definition for API-created ones.
    pub def: Option<KeyspaceDef>,
}

impl Keyspace {
    /// As the API lists it.
    pub fn info(&self) -> KeyspaceInfo {
        KeyspaceInfo {
            name: self.name.clone(),
            kind: self.kind,
            consistency: self.consistency,
            source: if self.def.is_some() { "api" } else { "config" },
        }
    }
}

/// What learning a definition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learned {
    /// A new keyspace.
    New,
    /// Already known with this type.
    Known,
    /// Replaced a later definition of the same name with another type.
    Replaced,
    /// Lost against an existing definition (configured, or created earlier) of another type.
    Lost(Keyspace),
}

/// The registry.
#[derive(Debug)]
pub struct Keyspaces {
    map: RwLock<BTreeMap<String, Keyspace>>,
}

impl Keyspaces {
    /// The configured keyspaces plus the implicit ones.
    pub fn new(configured: &[KeyspaceConfig]) -> Keyspaces {
        let mut map = BTreeMap::new();
        for (name, kind) in IMPLICIT {
            map.insert(name.to_owned(), Keyspace { name: name.to_owned(), kind, consistency: None, def: None });
        }
        for k in configured {
            map.insert(
                k.name.clone(),
                Keyspace { name: k.name.clone(), kind: kind_of(k.kind), consistency: k.consistency, def: None },
            );
        }
        Keyspaces { map: RwLock::new(map) }
    }

    /// The keyspace `name`.
    pub fn get(&self, name: &str) -> Result<Keyspace, RegionError> {
        self.map.read().get(name).cloned().ok_or_else(|| RegionError::UnknownKeyspace(name.to_owned()))
    }

    /// Every keyspace, by name.
    pub fn list(&self) -> Vec<Keyspace> {
        self.map.read().values().cloned().collect()
    }

    /// The API-created definitions (to persist and gossip).
    pub fn defs(&self) -> Vec<KeyspaceDef> {
        self.map.read().values().filter_map(|k| k.def.clone()).collect()
    }

    /// Learns a definition (see the module rules).
    pub fn learn(&self, def: KeyspaceDef) -> Learned {
        let mut map = self.map.write();
        match map.get(&def.name) {
            None => {
                map.insert(def.name.clone(), from_def(def));
                Learned::New
            }
            Some(existing) if existing.kind == def.kind => {
                // Same type: keep the earliest creation time so every node ends with the same
                // definition.
                if let Some(old) = &existing.def {
                    if def.created < old.created {
                        map.insert(def.name.clone(), from_def(def));
                    }
                }
                Learned::Known
            }
            Some(existing) => match &existing.def {
                Some(old) if def.created < old.created => {
                    map.insert(def.name.clone(), from_def(def));
                    Learned::Replaced
                }
                _ => Learned::Lost(existing.clone()),
            },
        }
    }

    /// The definitions as JSON (store metadata and gossip).
    pub fn defs_json(&self) -> String {
        serde_json::to_string(&self.defs().iter().map(DefJson::from).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".to_owned())
    }

    /// Parses [`Keyspaces::defs_json`] output; `None` if malformed.
    pub fn parse_defs(json: &str) -> Option<Vec<KeyspaceDef>> {
        let defs: Vec<DefJson> = serde_json::from_str(json).ok()?;
        defs.into_iter().map(KeyspaceDef::try_from).collect::<Result<_, _>>().ok()
    }
}

fn from_def(def: KeyspaceDef) -> Keyspace {
    Keyspace { name: def.name.clone(), kind: def.kind, consistency: None, def: Some(def) }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct DefJson {
    name: String,
    kind: ValueKind,
    created: String,
}

impl From<&KeyspaceDef> for DefJson {
    fn from(d: &KeyspaceDef) -> Self {
        DefJson { name: d.name.clone(), kind: d.kind, created: d.created.to_string() }
    }
}

impl TryFrom<DefJson> for KeyspaceDef {
    type Error = ();

    fn try_from(d: DefJson) -> Result<Self, ()> {
        let created: Hlc = d.created.parse().map_err(|_| ())?;
        meridian_config::validate_keyspace_name(&d.name).map_err(|_| ())?;
        Ok(KeyspaceDef { name: d.name, kind: d.kind, created })
    }
}

#[cfg(test)]
mod tests {
    use meridian_crdt::NodeId;

    use super::*;

    fn def(name: &str, kind: ValueKind, t: u64) -> KeyspaceDef {
        KeyspaceDef { name: name.into(), kind, created: Hlc::new(t, NodeId(1)) }
    }

    #[test]
    fn implicit_and_configured() {
        let k = Keyspaces::new(&[KeyspaceConfig {
            name: "carts".into(),
            kind: KeyspaceType::Mvr,
            consistency: Some(ConsistencyLevel::All),
        }]);
        assert_eq!(k.get("default").unwrap().kind, ValueKind::Lww);
        assert_eq!(k.get("counters").unwrap().kind, ValueKind::Counter);
        assert_eq!(k.get("carts").unwrap().consistency, Some(ConsistencyLevel::All));
        assert!(matches!(k.get("nope"), Err(RegionError::UnknownKeyspace(_))));
    }

    #[test]
    fn earliest_definition_wins_in_any_order() {
        for order in [[0, 1], [1, 0]] {
            let k = Keyspaces::new(&[]);
            let defs = [def("x", ValueKind::Set, 5), def("x", ValueKind::Mvr, 9)];
            for i in order {
                k.learn(defs[i].clone());
            }
            assert_eq!(k.get("x").unwrap().kind, ValueKind::Set);
        }
    }

    #[test]
    fn configured_keyspaces_never_lose() {
        let k = Keyspaces::new(&[]);
        assert!(matches!(k.learn(def("default", ValueKind::Set, 0)), Learned::Lost(_)));
        assert_eq!(k.get("default").unwrap().kind, ValueKind::Lww);
    }

    #[test]
    fn defs_json_round_trips() {
        let k = Keyspaces::new(&[]);
        k.learn(def("a", ValueKind::Mvr, 3));
        let parsed = Keyspaces::parse_defs(&k.defs_json()).unwrap();
        assert_eq!(parsed, vec![def("a", ValueKind::Mvr, 3)]);
        assert_eq!(Keyspaces::parse_defs("{"), None);
        assert_eq!(Keyspaces::parse_defs(r#"[{"name":"A B","kind":"lww","created":"1/1"}]"#), None);
    }
}
