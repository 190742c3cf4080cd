//! The values operations return, and how the API's answers are read into them (see
//! `docs/api.md` for the bodies).

use base64::Engine as _;
use serde::Deserialize;

use crate::{Error, Version};

/// An `lww` register's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The winning write's version.
    pub version: Version,
    /// When the key expires (ms since the UNIX epoch), if it has a TTL.
    pub expires_at: Option<u64>,
}

/// An `mvr` register's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MvrValue {
    /// The concurrent values, sorted by bytes (none: absent, deleted or expired).
    pub siblings: Vec<Vec<u8>>,
    /// The causal context to write with, to supersede these siblings (empty if none).
    pub context: String,
    /// The greatest version folded into the state (`None` when absent).
    pub version: Option<Version>,
    /// When the key expires, if it has a TTL.
    pub expires_at: Option<u64>,
}

/// A register of either kind, as [`Client::get_register`](crate::Client::get_register) reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Register {
    /// An `lww` keyspace's value.
    Lww(Value),
    /// An `mvr` keyspace's siblings.
    Mvr(MvrValue),
}

impl Register {
    /// The version read.
    pub fn version(&self) -> Option<Version> {
        match self {
            Register::Lww(v) => Some(v.version),
            Register::Mvr(m) => m.version,
        }
    }
}

/// A set's members.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetValue {
    /// The members, sorted by bytes.
    pub members: Vec<Vec<u8>>,
    /// The causal context: pass it to [`Client::srem`](crate::Client::srem) to remove exactly
    /// the additions this read saw.
    pub context: String,
}

/// What an acknowledged write returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteAck {
    /// The version of the written state.
    pub version: Version,
    /// The region that acknowledged it.
    pub region: String,
    /// The node (base URL) that coordinated it.
    pub node: String,
    /// Replicas that had acknowledged.
    pub acknowledged: usize,
    /// The level acknowledged (`ONE`, `QUORUM`, `ALL`).
    pub consistency: String,
}

#[derive(Debug, Deserialize)]
struct WriteBody {
    version: String,
    #[serde(default)]
    acknowledged: usize,
    #[serde(default)]
    consistency: String,
}

#[derive(Debug, Deserialize)]
struct RegisterBody {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    siblings: Option<Vec<String>>,
    #[serde(default)]
    context: Option<String>,
    version: String,
    #[serde(default)]
    expires_at: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CounterBody {
    value: i64,
}

#[derive(Debug, Deserialize)]
struct SetBody {
    members: Vec<String>,
    #[serde(default)]
    context: String,
    #[serde(default)]
    members_encoding: Option<String>,
}

/// An error body: `{"error", "message", ...}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ErrorBody {
    pub error: Option<String>,
    pub message: Option<String>,
    pub asked: Option<u64>,
    pub context: Option<String>,
}

fn bad(url: &str, reason: impl std::fmt::Display) -> Error {
    Error::BadAnswer { url: url.to_owned(), reason: reason.to_string() }
}

fn decode<T: serde::de::DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| bad(url, format!("{e}")))
}

fn version(url: &str, text: &str) -> Result<Version, Error> {
    text.parse().map_err(|e| bad(url, e))
}

fn base64(url: &str, text: &str) -> Result<Vec<u8>, Error> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| bad(url, format!("bad base64: {e}")))
}

/// A write answer: version, acknowledgements, level.
pub(crate) fn write_answer(url: &str, body: &[u8]) -> Result<(Version, usize, String), Error> {
    let w: WriteBody = decode(url, body)?;
    Ok((version(url, &w.version)?, w.acknowledged, w.consistency))
}

/// A register read answer.
pub(crate) fn register_answer(url: &str, body: &[u8]) -> Result<Register, Error> {
    let r: RegisterBody = decode(url, body)?;
    let v = version(url, &r.version)?;
    match (r.value, r.siblings) {
        (Some(value), None) => {
            Ok(Register::Lww(Value { bytes: base64(url, &value)?, version: v, expires_at: r.expires_at }))
        }
        (None, Some(siblings)) => Ok(Register::Mvr(MvrValue {
            siblings: siblings.iter().map(|s| base64(url, s)).collect::<Result<_, _>>()?,
            context: r.context.unwrap_or_default(),
            version: Some(v),
            expires_at: r.expires_at,
        })),
        _ => Err(bad(url, "neither a value nor siblings")),
    }
}

/// A counter read answer.
pub(crate) fn counter_answer(url: &str, body: &[u8]) -> Result<i64, Error> {
    Ok(decode::<CounterBody>(url, body)?.value)
}

/// A set read answer (members as bytes, whatever their encoding on the wire).
pub(crate) fn set_answer(url: &str, body: &[u8]) -> Result<SetValue, Error> {
    let s: SetBody = decode(url, body)?;
    let members = match s.members_encoding.as_deref() {
        None => s.members.into_iter().map(String::into_bytes).collect(),
        Some("base64") => s.members.iter().map(|m| base64(url, m)).collect::<Result<_, _>>()?,
        Some(other) => return Err(bad(url, format!("unknown members_encoding {other:?}"))),
    };
    Ok(SetValue { members, context: s.context })
}

/// The error an error answer stands for, and its `asked` and `context` fields.
pub(crate) fn error_answer(url: &str, status: u16, body: &[u8]) -> (Error, ErrorBody) {
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.clone().unwrap_or_else(|| format!("http_{status}"));
    let message = parsed.message.clone().unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() {
            "(empty body)".to_owned()
        } else {
            text.chars().take(200).collect()
        }
    });
    (Error::Api { status, code, message, url: url.to_owned() }, parsed)
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved characters).
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_answers_of_both_kinds() {
        let lww = br#"{"key":"k","value":"aGVsbG8=","version":"5/42","timestamp":1,"expires_at":9}"#;
        assert_eq!(
            register_answer("u", lww).expect("lww"),
            Register::Lww(Value { bytes: b"hello".to_vec(), version: Version::new(5, 42), expires_at: Some(9) })
        );
        let mvr = br#"{"key":"k","siblings":["YQ==","Yg=="],"context":"AQ","version":"6/1"}"#;
        let Register::Mvr(m) = register_answer("u", mvr).expect("mvr") else { panic!("not mvr") };
        assert_eq!(m.siblings, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!((m.context.as_str(), m.version), ("AQ", Some(Version::new(6, 1))));
        assert!(register_answer("u", br#"{"version":"1/1"}"#).is_err());
        assert!(register_answer("u", br#"{"value":"!!","version":"1/1"}"#).is_err());
        assert!(register_answer("u", b"not json").is_err());
    }

    #[test]
    fn set_answers_decode_base64_members() {
        let s = set_answer("u", br#"{"key":"k","members":["a","b"],"context":"c"}"#).expect("utf8");
        assert_eq!(s.members, vec![b"a".to_vec(), b"b".to_vec()]);
        let s = set_answer("u", br#"{"key":"k","members":["/w=="],"context":"c","members_encoding":"base64"}"#)
            .expect("base64");
        assert_eq!(s.members, vec![vec![0xff]]);
    }

    #[test]
    fn write_and_counter_answers() {
        let w = br#"{"key":"k","version":"7/3","timestamp":1,"status":"ok","consistency":"QUORUM",
            "acknowledged":2,"replicas":3}"#;
        assert_eq!(write_answer("u", w).expect("write"), (Version::new(7, 3), 2, "QUORUM".to_owned()));
        assert_eq!(counter_answer("u", br#"{"key":"k","value":-4}"#).expect("counter"), -4);
    }

    #[test]
    fn error_answers_keep_the_servers_code_and_the_asked_field() {
        let body = br#"{"error":"unavailable","message":"2 of 3","asked":0,"required":2}"#;
        let (e, extra) = error_answer("u", 503, body);
        assert_eq!((e.code(), e.status(), extra.asked), ("unavailable", Some(503), Some(0)));
        let (e, _) = error_answer("u", 502, b"bad gateway");
        assert_eq!(e.code(), "http_502");
        assert!(e.to_string().contains("bad gateway"));
        let (e, _) = error_answer("u", 500, b"");
        assert!(e.to_string().contains("(empty body)"));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("node-1_a.b~"), "node-1_a.b~");
        assert_eq!(encode_segment("a/b c%"), "a%2Fb%20c%25");
        assert_eq!(encode_segment("é"), "%C3%A9");
    }
}
