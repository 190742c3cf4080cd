//! Talking to nodes over the HTTP API: performing and recording one op, classifying an answer,
//! reading the final state.

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::format::{Completion, FinalState, History, Kind, Observed, Op, OpResult, ReadFailure};

/// Classifies an HTTP answer to `op` (`status` 0: no answer, `transport` says why and whether
/// the request was sent). 2xx is `ok` (and a `404 not_found` to a register read, an absent
/// key); other 4xx are `fail` (the API validates before any effect); a 503 `unavailable` with
/// `asked: 0` and `not_enough_nodes` are `fail` (nothing was sent to a replica); every other
/// error is `info`. An answer to a read whose body does not parse is `info`.
pub fn classify(op: &Op, status: u16, body: &Value, transport: Option<&Transport>) -> Completion {
    let code = body["error"].as_str().unwrap_or("");
    match status {
        0 => match transport {
            Some(Transport::NotSent(why)) => Completion::Fail(format!("not sent: {why}")),
            Some(Transport::Lost(why)) => Completion::Info(format!("no answer: {why}")),
            None => Completion::Info("no answer".into()),
        },
        200..=299 => {
            if op.is_read() {
                match parse_read(op.kind(), status, body) {
                    Ok(obs) => Completion::Ok(read_result(obs, body)),
                    Err(why) => Completion::Info(format!("unreadable answer: {why}")),
                }
            } else {
                Completion::Ok(OpResult { version: body["version"].as_str().map(String::from), ..OpResult::default() })
            }
        }
        404 if op.is_read() && code == "not_found" => match parse_read(op.kind(), status, body) {
            Ok(obs) => Completion::Ok(read_result(obs, body)),
            Err(why) => Completion::Info(format!("unreadable answer: {why}")),
        },
        400..=499 => Completion::Fail(format!("{status} {code}")),
        503 if code == "not_enough_nodes" || (code == "unavailable" && body["asked"].as_u64() == Some(0)) => {
            Completion::Fail(format!("{status} {code}: not sent to any replica"))
        }
        _ => Completion::Info(format!("{status} {code}")),
    }
}

fn read_result(obs: Observed, body: &Value) -> OpResult {
    let context = body["context"].as_str().map(String::from);
    match obs {
        Observed::Absent => match body.get("context") {
            Some(_) => OpResult::siblings(Vec::new(), context),
            None => OpResult::default(),
        },
        Observed::Lww { value, version } => OpResult::lww(Some((&value, &version))),
        Observed::Mvr { siblings } => OpResult::siblings(siblings, context),
        Observed::Counter(n) => OpResult::counter(n),
        Observed::Set(m) => OpResult::members(m.into_iter().collect(), context),
    }
}

/// Why a request got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The connection was never made (refused, DNS): the request was not sent.
    NotSent(String),
    /// Sent, or possibly sent, and no answer came (timeout, reset).
    Lost(String),
}

/// Percent-encodes one path segment (everything but `A-Z a-z 0-9 - . _ ~`).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn path_of(kind: Kind, keyspace: &str, key: &str) -> String {
    let kind = match kind {
        Kind::Lww | Kind::Mvr => "keys",
        Kind::Counter => "counters",
        Kind::Set => "sets",
    };
    format!("/api/v1/keyspaces/{}/{kind}/{}", encode_segment(keyspace), encode_segment(key))
}

/// Sends one request; (status, body, transport error). Status 0 when there was no answer.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> (u16, Value, Option<Transport>) {
    let mut req = agent.request(method, url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let res = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let body_of = |r: ureq::Response| {
        let text = r.into_string().unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    match res {
        Ok(r) => (r.status(), body_of(r), None),
        Err(ureq::Error::Status(code, r)) => (code, body_of(r), None),
        Err(ureq::Error::Transport(t)) => {
            let why = t.to_string();
            let transport = match t.kind() {
                ureq::ErrorKind::ConnectionFailed | ureq::ErrorKind::Dns | ureq::ErrorKind::InvalidUrl => {
                    Transport::NotSent(why)
                }
                _ => Transport::Lost(why),
            };
            (0, Value::Null, Some(transport))
        }
    }
}

/// Performs `op` against the node at `addr` (`host:port`), at consistency `level` (`None`: the
/// keyspace default), and records it in `history` as client `client` of region `region`.
/// Returns the op id and its completion (a read's context is in the [`OpResult`]).
pub fn execute_http(
    history: &History,
    agent: &ureq::Agent,
    client: &str,
    region: &str,
    addr: &str,
    level: Option<&str>,
    op: &Op,
) -> (u64, Completion) {
    let (ks, key) = op.target();
    let url = format!("http://{addr}{}", path_of(op.kind(), ks, key));
    let mut headers: Vec<(&str, &str)> = Vec::new();
    if let Some(level) = level {
        headers.push(("X-Consistency-Level", level));
    }
    let json = |v: Value| v.to_string().into_bytes();
    let (method, body): (&str, Option<Vec<u8>>) = match op {
        Op::Put { value, .. } => ("PUT", Some(value.as_bytes().to_vec())),
        Op::MvrPut { value, context, .. } => {
            if let Some(c) = context {
                headers.push(("X-Context", c.as_str()));
            }
            ("PUT", Some(value.as_bytes().to_vec()))
        }
        Op::Delete { .. } => ("DELETE", None),
        Op::Incr { delta, .. } => ("POST", Some(json(serde_json::json!({ "delta": delta })))),
        Op::Sadd { members, .. } => ("POST", Some(json(serde_json::json!({ "add": members })))),
        Op::Srem { members, context: Some(c), .. } => {
            ("POST", Some(json(serde_json::json!({ "remove": members, "context": c }))))
        }
        Op::Srem { members, context: None, .. } => ("POST", Some(json(serde_json::json!({ "remove": members })))),
        Op::Get { .. } | Op::MvrGet { .. } | Op::CounterGet { .. } | Op::Smembers { .. } => ("GET", None),
    };
    match op {
        Op::Put { .. } | Op::MvrPut { .. } => headers.push(("Content-Type", "application/octet-stream")),
        Op::Incr { .. } | Op::Sadd { .. } | Op::Srem { .. } => headers.push(("Content-Type", "application/json")),
        _ => {}
    }
    let id = history.invoke(client, region, op.clone());
    let (status, answer, transport) = send(agent, method, &url, &headers, body.as_deref());
    let completion = classify(op, status, &answer, transport.as_ref());
    history.complete_with(id, &completion);
    (id, completion)
}

fn decode_value(b64: &str) -> String {
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| format!("base64:{b64}")),
        Err(_) => format!("base64:{b64}"),
    }
}

/// Parses the answer to a read of a key of type `kind`: `200` with the type's body, or
/// `404 not_found` (an absent register).
pub fn parse_read(kind: Kind, status: u16, body: &Value) -> Result<Observed, String> {
    let code = body["error"].as_str().unwrap_or("");
    if status == 404 && code == "not_found" && matches!(kind, Kind::Lww | Kind::Mvr) {
        return Ok(Observed::Absent);
    }
    if status != 200 {
        return Err(format!("{status} {code} {}", body["message"].as_str().unwrap_or("")).trim_end().to_owned());
    }
    let field = |name: &str| body.get(name).ok_or_else(|| format!("no {name:?} in {body}"));
    let strings = |v: &Value| -> Result<Vec<String>, String> {
        let items = v.as_array().ok_or_else(|| format!("not an array: {v}"))?;
        items.iter().map(|s| s.as_str().map(String::from).ok_or_else(|| format!("not a string: {s}"))).collect()
    };
    match kind {
        Kind::Lww => {
            let value = field("value")?.as_str().ok_or("value is not a string")?;
            let version = field("version")?.as_str().ok_or("version is not a string")?;
            Ok(Observed::Lww { value: decode_value(value), version: version.to_owned() })
        }
        Kind::Mvr => {
            let siblings = strings(field("siblings")?)?;
            Ok(Observed::Mvr { siblings: siblings.iter().map(|s| decode_value(s)).collect() })
        }
        Kind::Counter => Ok(Observed::Counter(field("value")?.as_i64().ok_or("value is not a 64-bit integer")?)),
        Kind::Set => {
            let members = strings(field("members")?)?;
            let b64 = body["members_encoding"].as_str() == Some("base64");
            Ok(Observed::Set(members.into_iter().map(|m| if b64 { format!("base64:{m}") } else { m }).collect()))
        }
    }
}

/// Reads the final state over HTTP. `regions` are `(name, [http address of each node])` and
/// `keys` every `(keyspace, key, kind)` the run touched.
///
/// First every node of every region is read at `ONE` (before any `ALL` read, whose read
/// repair would hide a divergence), then each region at `ALL` through its first node that
/// answers at all. There are no retries: call it once the cluster has healed and quiesced. A
/// read without a usable answer goes to [`FinalState::errors`].
pub fn collect_final(regions: &[(String, Vec<String>)], keys: &[(String, String, Kind)]) -> FinalState {
    collect_final_with(regions, keys, None)
}

/// [`collect_final`] against nodes with API authentication: every read sends `authorization`
/// (`Bearer <token>`, a token with the `read` scope) as its `Authorization` header.
pub fn collect_final_with(
    regions: &[(String, Vec<String>)],
    keys: &[(String, String, Kind)],
    authorization: Option<&str>,
) -> FinalState {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
    let read = |addr: &str, level: &str, ks: &str, key: &str, kind: Kind| {
        let url = format!("http://{addr}{}", path_of(kind, ks, key));
        let mut headers = vec![("X-Consistency-Level", level)];
        headers.extend(authorization.map(|a| ("Authorization", a)));
        send(&agent, "GET", &url, &headers, None)
    };
    let mut state = FinalState::default();
    for (region, nodes) in regions {
        for node in nodes {
            for (ks, key, kind) in keys {
                let (status, body, transport) = read(node, "ONE", ks, key, *kind);
                match parse_read(*kind, status, &body) {
                    Ok(obs) => state.set_node(region, node, ks, key, obs),
                    Err(why) => state.errors.push(ReadFailure {
                        region: region.clone(),
                        node: Some(node.clone()),
                        keyspace: ks.clone(),
                        key: key.clone(),
                        reason: transport.map(|t| format!("{t:?}")).unwrap_or(why),
                    }),
                }
            }
        }
    }
    for (region, nodes) in regions {
        for (ks, key, kind) in keys {
            let mut outcome = Err(format!("no node of region {region} answered"));
            for node in nodes {
                let (status, body, transport) = read(node, "ALL", ks, key, *kind);
                if transport.is_none() {
                    outcome = parse_read(*kind, status, &body).map_err(|why| format!("via {node}: {why}"));
                    break;
                }
            }
            match outcome {
                Ok(obs) => state.set_region(region, ks, key, obs),
                Err(reason) => state.errors.push(ReadFailure {
                    region: region.clone(),
                    node: None,
                    keyspace: ks.clone(),
                    key: key.clone(),
                    reason,
                }),
            }
        }
    }
    state
}
