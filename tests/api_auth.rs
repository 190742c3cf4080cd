//! The HTTP API's security on a real `meridian server` process: HTTPS (a plain-HTTP client gets
//! no answer), bearer tokens from the configuration and from a tokens file, the read / write /
//! admin scopes, `401` / `403` / `429` (with `WWW-Authenticate` and `Retry-After`), the open
//! endpoints, the refusal counters in `/metrics`, `meridian ctl` over HTTPS with a token, and a
//! node exposed off loopback without HTTPS or authentication refused at start.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::procs::{config_text, meridian_bin, ClusterSpec, NodeProc};
use meridian_region::http::auth::token_sha256_hex;
use serde_json::Value;

const READER: &str = "mrd_test-reader-7c1b2e54a0b94f3f8d6e0a1c2b3d4e5f";
const WRITER: &str = "mrd_test-writer-1f2e3d4c5b6a79880a9b8c7d6e5f4a3b";
const ADMIN: &str = "mrd_test-admin-0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const LIMITED: &str = "mrd_test-limited-99887766554433221100ffeeddccbbaa";

/// An HTTPS agent trusting the development CA only.
fn https_agent(ca: &Path) -> ureq::Agent {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).tls_config(Arc::new(config)).build()
}

/// An answer: status, the headers asked for, and the JSON body (`Null` when not JSON).
#[derive(Debug)]
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    retry_after: Option<String>,
    body: Value,
}

fn call(agent: &ureq::Agent, method: &str, url: &str, token: Option<&str>, body: Option<&[u8]>) -> Answer {
    let mut req = agent.request(method, url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let res = match body {
        Some(b) => req.send_bytes(b),
        None => req.call(),
    };
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: transport error {e}"),
    };
    let header = |name: &str| resp.header(name).map(str::to_owned);
    let (www_authenticate, retry_after) = (header("www-authenticate"), header("retry-after"));
    let status = resp.status();
    let text = resp.into_string().unwrap_or_default();
    Answer { status, www_authenticate, retry_after, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

fn token_entry(name: &str, token: &str, scopes: &str, extra: &str) -> String {
    format!(
        "\n[[auth.tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nscopes = {scopes}\n{extra}",
        token_sha256_hex(token)
    )
}

/// `meridian_http_auth_refusals_total{reason}` from a scrape.
fn refusals(text: &str, reason: &str) -> u64 {
    let needle = format!("reason=\"{reason}\"}} ");
    text.lines()
        .find(|l| l.starts_with("meridian_http_auth_refusals_total{") && l.contains(&needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no refusal sample for {reason}:\n{text}"))
}

#[test]
fn the_api_over_https_needs_tokens_with_the_right_scope_and_rate() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = ClusterSpec { nodes: 1, replication_factor: 1, ..ClusterSpec::default() };
    let certs = dir.path().join("certs");
    meridian_net::certs::write_dev_bundle(&certs, &[(spec.region.as_str(), vec!["node1"])]).expect("certificates");
    let ca = certs.join("ca.pem");
    let ndir = dir.path().join("node1");
    std::fs::create_dir_all(&ndir).expect("node dir");

    // HTTPS with the node's development certificate (valid for 127.0.0.1), tokens inline and
    // in a tokens file.
    let api_cert = certs.join(&spec.region).join("node1.pem");
    let api_key = certs.join(&spec.region).join("node1.key");
    let tokens_file = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens_file,
        format!("[[tokens]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"admin\"]\n", token_sha256_hex(ADMIN)),
    )
    .expect("tokens file");
    let mut text = config_text(&spec, "node1", &ndir, &certs, &[]).replacen(
        "[http]\nlisten = \"127.0.0.1:0\"\n",
        &format!(
            "[http]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            api_cert.display(),
            api_key.display()
        ),
        1,
    );
    text.push_str(&format!("\n[auth]\nenabled = true\ntokens_file = \"{}\"\n", tokens_file.display()));
    text.push_str(&token_entry("reader", READER, "[\"read\"]", ""));
    text.push_str(&token_entry("writer", WRITER, "[\"read\", \"write\"]", ""));
    text.push_str(&token_entry("limited", LIMITED, "[\"read\"]", "rate_per_sec = 1\nburst = 2\n"));
    let config = ndir.join("node.toml");
    std::fs::write(&config, &text).expect("config");
    let mut node = NodeProc {
        name: "node1".into(),
        dir: ndir,
        config,
        child: None,
        ready: None,
        args: Vec::new(),
        env: Vec::new(),
    };
    node.spawn();
    let ready = node.wait_ready(Duration::from_secs(60));
    let addr = ready.http.clone();
    println!("node serving HTTPS on {addr} after {:.1} s", t0.elapsed().as_secs_f64());
    let https = https_agent(&ca);
    let url = |path: &str| format!("https://{addr}{path}");
    common::procs::wait_for(Duration::from_secs(30), "the node serves", || {
        call(&https, "GET", &url("/healthz"), None, None).status == 200
    });

    // TLS: a plain-HTTP client gets no HTTP answer (the handshake fails, the connection closes).
    let plain = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
    match plain.get(&format!("http://{addr}/healthz")).call() {
        Err(ureq::Error::Transport(_)) => {}
        Ok(r) => panic!("plain HTTP was answered with {}", r.status()),
        Err(ureq::Error::Status(code, _)) => panic!("plain HTTP was answered with {code}"),
    }

    // Open endpoints need no token.
    for path in ["/healthz", "/metrics", "/openapi.json", "/dashboard"] {
        assert_eq!(call(&https, "GET", &url(path), None, None).status, 200, "{path}");
    }

    // 401: no token, a malformed header, an unknown token; with the challenge.
    let a = call(&https, "GET", &url("/api/v1/keys/k"), None, None);
    assert_eq!((a.status, a.body["error"].as_str()), (401, Some("unauthorized")), "{a:?}");
    assert_eq!(a.www_authenticate.as_deref(), Some("Bearer realm=\"meridian\""));
    let malformed = https.get(&url("/api/v1/keys/k")).set("Authorization", "Basic dXNlcjpwdw==").call();
    assert!(matches!(malformed, Err(ureq::Error::Status(401, _))), "{malformed:?}");
    let a = call(&https, "GET", &url("/api/v1/keys/k"), Some("mrd_nobody"), None);
    assert_eq!(a.status, 401);
    assert!(a.www_authenticate.as_deref().is_some_and(|w| w.contains("invalid_token")), "{a:?}");

    // read: reads, not writes (403 names the scope).
    assert_eq!(call(&https, "GET", &url("/api/v1/keys/k"), Some(READER), None).status, 404, "read passes, no value");
    let a = call(&https, "PUT", &url("/api/v1/keys/k"), Some(READER), Some(b"v"));
    assert_eq!((a.status, a.body["error"].as_str(), a.body["scope"].as_str()), (403, Some("forbidden"), Some("write")));
    assert!(a.www_authenticate.as_deref().is_some_and(|w| w.contains("insufficient_scope")), "{a:?}");
    // write: writes (and reads, with read too).
    assert_eq!(call(&https, "PUT", &url("/api/v1/keys/k"), Some(WRITER), Some(b"v")).status, 200);
    let a = call(&https, "GET", &url("/api/v1/keys/k"), Some(READER), None);
    assert_eq!((a.status, a.body["value"].as_str()), (200, Some("dg==")), "{a:?}");
    assert_eq!(call(&https, "POST", &url("/api/v1/counters/c"), Some(WRITER), Some(b"{\"delta\": 2}")).status, 200);
    assert_eq!(call(&https, "GET", &url("/api/v1/cluster/status"), Some(READER), None).status, 200);
    // admin (from the tokens file): operations; read and write are not implied.
    assert_eq!(call(&https, "POST", &url("/api/v1/cluster/repair"), Some(WRITER), None).status, 403);
    assert_eq!(call(&https, "POST", &url("/api/v1/cluster/repair"), Some(ADMIN), None).status, 202);
    let create = br#"{"name": "tags", "type": "set"}"#;
    assert_eq!(call(&https, "POST", &url("/api/v1/keyspaces"), Some(WRITER), Some(create)).status, 403);
    assert_eq!(call(&https, "POST", &url("/api/v1/keyspaces"), Some(ADMIN), Some(create)).status, 201);
    assert_eq!(call(&https, "GET", &url("/api/v1/cluster/digest"), Some(READER), None).status, 403);
    assert_eq!(call(&https, "GET", &url("/api/v1/keys/k"), Some(ADMIN), None).status, 403);
    assert_eq!(call(&https, "DELETE", &url("/api/v1/cluster/nodes/node9"), Some(WRITER), None).status, 403);

    // 429: burst 2 at 1 per second, then Retry-After; a second later one more.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let a = call(&https, "GET", &url("/api/v1/keys/k"), Some(LIMITED), None);
        if a.status == 429 {
            assert_eq!(a.body["error"], "rate_limited", "{a:?}");
            retry_after = a.retry_after.clone();
        }
        statuses.push(a.status);
    }
    assert_eq!(&statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    assert_eq!(retry_after.as_deref(), Some("1"));
    assert_eq!(call(&https, "GET", &url("/api/v1/keys/k"), Some(READER), None).status, 200, "other tokens unaffected");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(call(&https, "GET", &url("/api/v1/keys/k"), Some(LIMITED), None).status, 200);

    // Every refusal is counted by reason.
    let scrape = https.get(&url("/metrics")).call().expect("metrics").into_string().expect("text");
    assert_eq!(refusals(&scrape, "missing"), 1);
    assert_eq!(refusals(&scrape, "malformed"), 1);
    assert_eq!(refusals(&scrape, "unknown_token"), 1);
    assert_eq!(refusals(&scrape, "forbidden"), 6);
    assert!(refusals(&scrape, "rate_limited") >= 1);

    // `meridian ctl` over HTTPS: the CA and a token; without the token, unauthorized.
    let ctl = |token: Option<&str>| {
        let mut c = Command::new(meridian_bin());
        c.args(["ctl", "--node", &format!("https://{addr}"), "--ca-cert"]).arg(&ca).args(["--output", "json"]);
        c.env_remove("MERIDIAN_TOKEN");
        if let Some(t) = token {
            c.env("MERIDIAN_TOKEN", t);
        }
        c
    };
    let out = ctl(Some(READER)).arg("status").output().expect("ctl status");
    assert!(out.status.success(), "ctl status: {}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["nodes"][0]["id"], "node1");
    let out = ctl(None).arg("status").output().expect("ctl status");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unauthorized"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = ctl(Some(READER)).args(["get", "k"]).output().expect("ctl get");
    assert!(out.status.success(), "ctl get: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("dg=="), "{}", String::from_utf8_lossy(&out.stdout));

    let _ = node.terminate(Duration::from_secs(20));
    println!("done in {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn a_node_exposed_off_loopback_without_https_or_auth_does_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |extra: &str| {
        let config = dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                "[node]\nid = \"n1\"\nregion = \"r\"\n\n[storage]\nengine = \"memory\"\ndata_dir = \"{}\"\n\n\
                 [tls]\nallow_insecure = true\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .expect("config");
        let server = Command::new(meridian_bin())
            .args(["server", "--config"])
            .arg(&config)
            .env_remove("MERIDIAN_HTTP__LISTEN")
            .output()
            .expect("meridian server");
        let check = Command::new(meridian_bin()).args(["config", "check"]).arg(&config).output().expect("check");
        (server, check)
    };
    let (server, check) = run("\n[http]\nlisten = \"0.0.0.0:0\"\n");
    assert!(!server.status.success(), "started plain HTTP on 0.0.0.0");
    let err = String::from_utf8_lossy(&server.stderr);
    assert!(err.contains("http.allow_plaintext"), "{err}");
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("config_refused"));

    let (server, _) = run("\n[http]\nlisten = \"0.0.0.0:0\"\nallow_plaintext = true\n");
    assert!(!server.status.success(), "started without authentication on 0.0.0.0");
    let err = String::from_utf8_lossy(&server.stderr);
    assert!(err.contains("auth.allow_unauthenticated"), "{err}");

    // With auth on, a token configured, but the tokens file missing: refused too, naming it.
    let (server, _) = run(&format!(
        "\n[http]\nlisten = \"0.0.0.0:0\"\nallow_plaintext = true\n\n[auth]\nenabled = true\ntokens_file = \"{}\"\n",
        dir.path().join("missing-tokens.toml").display()
    ));
    assert!(!server.status.success());
    assert!(String::from_utf8_lossy(&server.stderr).contains("missing-tokens.toml"));
}
