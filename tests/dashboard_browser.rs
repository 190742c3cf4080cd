//! `GET /dashboard` in a real browser: headless Chromium, driven over the DevTools protocol,
//! against a `meridian dev` cluster of three regions of two nodes (RF 2).
//!
//! One page load, never reloaded (a marker set in the page must survive): the test reads the
//! DOM as the page renders it, every poll, and checks that
//! - the elements are there with the cluster's real values: the three regions, both nodes of
//!   us-east `healthy`, ring shares equal to what `/api/v1/cluster/status` reports, both WAN
//!   links, empty hint queues;
//! - they change after writes through the API: the write counter rises by at least the writes
//!   sent, the records on the node and the changes applied from eu-west rise, the lag p50/p99
//!   of each peer region appears and is at least its emulated one-way delay (40 ms from
//!   eu-west, 115 ms from ap-southeast), and concurrent writes of the same keys in two regions
//!   show up as LWW conflicts and a `conflict` event;
//! - events appear for what happens to the cluster: a repair started through the API
//!   (`repair-done`), the region fenced and unfenced (`region-fenced`, `region-unfenced`, the
//!   links shown `fenced`), and a node stopped with SIGSTOP (`node-down`, its hint queue
//!   filling with writes at `ONE`) then resumed (`node-up`, the queue drained);
//! - the script threw no exception.
//!
//! A light background load (a write every 200 ms at `ONE` on one node of each region, distinct
//! keys, so it makes no conflict) keeps the rates and lags moving for the screenshot.
//!
//! It saves a full-page screenshot: `$MERIDIAN_DASHBOARD_SCREENSHOT` if set (that is how
//! `docs/dashboard.png` is made), else `dashboard.png` in Cargo's per-test temp directory.
//!
//! Chromium is Debian's `chromium` package (`scripts/env.sh` installs it), or `$CHROMIUM`.
//! Without it the test fails and says so: it is part of the gate, not optional.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::procs::{http, start_dev};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// The browser binary: `$CHROMIUM`, else `chromium` on `PATH`.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium not found on PATH: install Debian's `chromium` package \
                 (`apt-get install -y chromium`, or source scripts/env.sh) or set CHROMIUM to the binary"
            )
        })
}

// ---------------------------------------------------------------------------------------------
// A headless Chromium driven over --remote-debugging-pipe: JSON messages ending in NUL, the
// browser reading them from its fd 3 and writing its own to fd 4.

struct Browser {
    child: Child,
    to_browser: ChildStdin,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    /// `Runtime.exceptionThrown` and console errors seen so far.
    js_errors: Vec<String>,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(dir: &Path) -> Browser {
        let profile = tempfile::tempdir_in(dir).expect("profile dir");
        let log = dir.join("chromium.log");
        let log_file = std::fs::File::create(&log).expect("chromium log");
        // The shell only moves our pipes to fds 3 and 4 and execs the browser (same pid).
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>/dev/null")
            .arg(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--mute-audio",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            // Its own process group, so that the renderers go with it.
            .process_group(0)
            .spawn()
            .expect("spawn chromium");
        let to_browser = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 0,
            session: None,
            js_errors: Vec::new(),
            log,
            _profile: profile,
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Sends `method` (to the page's session once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        if let Err(e) = self.to_browser.write_all(&bytes).and_then(|_| self.to_browser.flush()) {
            panic!("writing to chromium: {e}\n{}", self.log_tail());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_browser.recv_timeout(left) {
                Ok(v) if v["id"] == id => {
                    if !v["error"].is_null() {
                        panic!("{method}: {}", v["error"]);
                    }
                    return v["result"].clone();
                }
                Ok(v) => self.note_event(&v),
                Err(RecvTimeoutError::Timeout) => panic!("no answer to {method} within 30 s\n{}", self.log_tail()),
                Err(RecvTimeoutError::Disconnected) => panic!("chromium exited during {method}\n{}", self.log_tail()),
            }
        }
    }

    fn note_event(&mut self, v: &Value) {
        match v["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let d = &v["params"]["exceptionDetails"];
                self.js_errors.push(format!("{} {}", d["text"], d["exception"]["description"]));
            }
            Some("Runtime.consoleAPICalled") if v["params"]["type"] == "error" => {
                self.js_errors.push(format!("console.error {}", v["params"]["args"]));
            }
            _ => {}
        }
    }

    /// Opens `url` in a new page of `width` x `height` and attaches to it.
    fn open(&mut self, url: &str, width: u32, height: u32) {
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = self.call("Target.attachToTarget", json!({"targetId": target_id, "flatten": true}));
        self.session = Some(attached["sessionId"].as_str().expect("sessionId").to_owned());
        self.call("Runtime.enable", json!({}));
        self.call("Page.enable", json!({}));
        self.viewport(width, height);
        let nav = self.call("Page.navigate", json!({"url": url}));
        assert!(nav["errorText"].is_null(), "navigating to {url}: {}", nav["errorText"]);
    }

    fn viewport(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
    }

    /// Evaluates `expr` in the page; its value (JSON).
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true}));
        if !r["exceptionDetails"].is_null() {
            panic!("evaluating {expr}: {}", r["exceptionDetails"]);
        }
        r["result"]["value"].clone()
    }

    /// A PNG of the whole page.
    fn screenshot(&mut self) -> Vec<u8> {
        let h = self.eval("document.documentElement.scrollHeight").as_u64().unwrap_or(1000).clamp(600, 4000);
        self.viewport(1400, h as u32);
        std::thread::sleep(Duration::from_millis(300));
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        base64::engine::general_purpose::STANDARD.decode(shot["data"].as_str().expect("data")).expect("base64 png")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// What the page shows

/// Every element with an id: its text, `data-value` and `data-status`; the regions, nodes and
/// events in page order.
const READ_PAGE: &str = r#"(() => {
  const vals = {};
  for (const e of document.querySelectorAll("[id]")) {
    vals[e.id] = { text: e.textContent.trim(), value: e.dataset.value ?? null, status: e.dataset.status ?? null };
  }
  return {
    marker: window.__dashboardTestMarker ?? null,
    vals,
    regions: [...document.querySelectorAll("[data-testid=region]")].map((e) => e.dataset.region),
    nodes: [...document.querySelectorAll("[data-testid=node]")].map((e) => [e.dataset.node, e.dataset.status]),
    events: [...document.querySelectorAll("[data-testid=event]")].map((e) => [e.dataset.kind, e.textContent]),
  };
})()"#;

#[derive(Debug, Clone)]
struct View(Value);

impl View {
    fn field(&self, id: &str, f: &str) -> Option<&str> {
        self.0["vals"][id][f].as_str()
    }
    fn text(&self, id: &str) -> Option<&str> {
        self.field(id, "text")
    }
    fn status(&self, id: &str) -> Option<&str> {
        self.field(id, "status")
    }
    /// The raw number of element `id`, if it shows one.
    fn num(&self, id: &str) -> Option<f64> {
        self.field(id, "value").filter(|v| !v.is_empty()).and_then(|v| v.parse().ok())
    }
    fn polls(&self) -> u64 {
        self.num("polls").unwrap_or(0.0) as u64
    }
    fn regions(&self) -> Vec<String> {
        self.0["regions"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
    }
    fn node_states(&self) -> BTreeMap<String, String> {
        self.0["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_str()?.to_owned(), p[1].as_str()?.to_owned())))
            .collect()
    }
    fn events(&self, kind: &str) -> Vec<String> {
        self.0["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e[0] == kind)
            .filter_map(|e| e[1].as_str().map(String::from))
            .collect()
    }
    fn marker(&self) -> Option<i64> {
        self.0["marker"].as_i64()
    }
}

/// Reads the page every 200 ms until `pred` holds; panics after `timeout` with the last view.
fn wait_view(b: &mut Browser, timeout: Duration, what: &str, mut pred: impl FnMut(&View) -> bool) -> View {
    let start = Instant::now();
    loop {
        let v = View(b.eval(READ_PAGE));
        if pred(&v) {
            println!("  {what}: {:.1} s (poll {})", start.elapsed().as_secs_f64(), v.polls());
            return v;
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting until {what}; the page showed:\n{}\nJS errors: {:?}",
                serde_json::to_string_pretty(&v.0).unwrap_or_default(),
                b.js_errors
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster

/// Stops `meridian dev` (and resumes any node the test stopped) however the test ends.
struct Dev {
    child: Child,
    stopped: Vec<i32>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        for pid in &self.stopped {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGCONT);
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGINT);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Authorization: Bearer <the dev cluster's token>` (API authentication is on in `meridian dev`).
static AUTHORIZATION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn auth() -> (&'static str, &'static str) {
    ("Authorization", AUTHORIZATION.get().expect("the dev cluster's token").as_str())
}

fn put(http_addr: &str, key: &str, value: &str, consistency: Option<&str>) -> u16 {
    let mut headers: Vec<(&str, &str)> = consistency.map(|c| ("X-Consistency-Level", c)).into_iter().collect();
    headers.push(auth());
    http("PUT", &format!("http://{http_addr}/api/v1/keys/{key}"), &headers, Some(value.as_bytes())).0
}

/// A light background load: a write every 200 ms in each of `nodes` (at `ONE`), for at most
/// 120 s or until `stop` is set.
fn background_load(nodes: Vec<String>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(120) {
            // Distinct keys per node: the load itself makes no conflict.
            for (j, n) in nodes.iter().enumerate() {
                put(n, &format!("bg-{j}-{i}"), "load", Some("ONE"));
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        i
    })
}

#[test]
fn the_dashboard_shows_the_cluster_live_in_headless_chromium() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, doc) =
        start_dev(dir.path(), &["--regions", "3", "--nodes-per-region", "2", "--replication-factor", "2"]);
    let mut dev = Dev { child, stopped: Vec::new() };
    let token = doc["token"].as_str().expect("the endpoints file holds the API token").to_owned();
    AUTHORIZATION.set(format!("Bearer {token}")).expect("set once");
    println!("dev cluster (3 regions x 2 nodes) ready in {:.1} s", t0.elapsed().as_secs_f64());
    let region = |r: usize| &doc["regions"][r];
    let node_http = |r: usize, i: usize| region(r)["nodes"][i]["http"].as_str().expect("http").to_owned();
    assert_eq!(region(0)["name"], "us-east");
    assert_eq!(region(1)["name"], "eu-west");
    assert_eq!(region(2)["name"], "ap-southeast");
    let us1 = node_http(0, 0);
    let eu1 = node_http(1, 0);
    let ap1 = node_http(2, 0);
    let us2_pid = region(0)["nodes"][1]["pid"].as_i64().expect("pid") as i32;

    let mut b = Browser::launch(dir.path());
    // The page takes the token from the fragment (which never reaches the server).
    b.open(&format!("http://{us1}/dashboard#token={token}"), 1400, 1000);
    let t_page = Instant::now();

    // 1. The elements and the cluster's values, once the page has polled twice.
    println!("waiting for the page:");
    let v = wait_view(&mut b, Duration::from_secs(30), "first polls rendered", |v| {
        v.polls() >= 2 && v.node_states().len() == 2 && v.regions().len() == 3
    });
    println!("  first render {:.1} s after navigation", t_page.elapsed().as_secs_f64());
    b.eval("window.__dashboardTestMarker = 42");
    assert_eq!(v.text("this-region"), Some("us-east"));
    assert_eq!(v.text("this-node"), Some("node1"));
    assert_eq!(v.regions(), ["us-east", "eu-west", "ap-southeast"]);
    let states = v.node_states();
    assert_eq!(states.get("node1").map(String::as_str), Some("healthy"), "{states:?}");
    assert_eq!(states.get("node2").map(String::as_str), Some("healthy"), "{states:?}");
    assert_eq!(v.status("node-status-node2"), Some("healthy"));
    assert_eq!(v.status("region-state-us-east"), Some("serving"));
    assert_eq!(v.num("region-nodes-us-east"), Some(2.0));
    // Ring ownership as the API reports it (the ring does not change in this test).
    let (code, status) = http("GET", &format!("http://{us1}/api/v1/cluster/status"), &[auth()], None);
    assert_eq!(code, 200, "cluster status: {status}");
    let mut share_sum = 0.0;
    for n in status["nodes"].as_array().expect("nodes") {
        let id = n["id"].as_str().expect("id");
        let shown = v.num(&format!("ring-share-{id}")).unwrap_or_else(|| panic!("no ring share for {id}"));
        let api = n["ownership"].as_f64().expect("ownership");
        assert!((shown - api).abs() < 1e-9, "{id}: shown {shown}, API {api}");
        assert!(shown > 0.1, "{id} owns {shown}");
        share_sum += shown;
        assert_eq!(v.num(&format!("ring-load-{id}")), Some(1.0), "RF 2 on 2 nodes: each replicates everything");
        assert_eq!(v.num(&format!("ring-tokens-{id}")), n["tokens"].as_f64());
    }
    assert!((share_sum - 1.0).abs() < 1e-6, "primary shares add up to {share_sum}");
    assert_eq!(v.num("ring-version"), status["ring_version"].as_f64());
    for peer in ["eu-west", "ap-southeast"] {
        let link = v.status(&format!("wan-link-{peer}"));
        assert!(matches!(link, Some("up" | "idle")), "link to {peer}: {link:?}");
        assert!(v.num(&format!("wan-backlog-{peer}")).is_some(), "backlog towards {peer} shown");
    }
    assert_eq!(v.num("hints-pending"), Some(0.0));
    assert!(v.events("started").iter().any(|e| e.contains("node1 started")), "{:?}", v.0["events"]);
    let w0 = v.num("writes-total").expect("write counter shown");
    let r0 = v.num("records").expect("records shown");
    let applied0 = v.num("wan-applied-eu-west").expect("applied from eu-west shown");
    let c0 = v.num("conflicts-lww").expect("LWW conflicts shown");

    // 2. Writes through the API change what the page shows, without a reload.
    println!("writes:");
    let stop = Arc::new(AtomicBool::new(false));
    let load = background_load(vec![us1.clone(), eu1.clone(), ap1.clone()], stop.clone());
    for i in 0..30 {
        assert_eq!(put(&us1, &format!("dash-us-{i}"), "v", None), 200);
    }
    for i in 0..10 {
        assert_eq!(put(&eu1, &format!("dash-eu-{i}"), "v", None), 200);
    }
    // The same keys written in eu-west, then at once in us-east: eu-west's older write
    // reaches us-east after the newer local one and loses there (an LWW conflict).
    for i in 0..5 {
        let key = format!("dash-conflict-{i}");
        assert_eq!(put(&eu1, &key, "from eu-west", None), 200);
        assert_eq!(put(&us1, &key, "from us-east", None), 200);
    }
    let mut max_rate = 0.0f64;
    let v = wait_view(&mut b, Duration::from_secs(30), "the writes shown", |v| {
        max_rate = max_rate.max(v.num("write-rate").unwrap_or(0.0));
        v.num("writes-total").unwrap_or(0.0) >= w0 + 35.0
            && v.num("records").unwrap_or(0.0) >= r0 + 45.0
            && v.num("wan-applied-eu-west").unwrap_or(0.0) >= applied0 + 15.0
            && v.num("wan-lag-p50-eu-west").is_some()
            && v.num("wan-lag-p50-ap-southeast").is_some()
            && v.num("conflicts-lww").unwrap_or(0.0) > c0
            && !v.events("conflict").is_empty()
    });
    assert_eq!(v.marker(), Some(42), "the page was reloaded");
    assert!(max_rate > 0.0, "the write rate never left 0");
    for (peer, one_way_ms) in [("eu-west", 40.0), ("ap-southeast", 115.0)] {
        let p50 = v.num(&format!("wan-lag-p50-{peer}")).expect("p50");
        let p99 = v.num(&format!("wan-lag-p99-{peer}")).expect("p99");
        assert!(p50 >= one_way_ms * 0.9 && p50 <= p99 && p99 < 10_000.0, "{peer}: lag p50 {p50} ms, p99 {p99} ms");
        assert!(v.text(&format!("wan-lag-p99-{peer}")).is_some_and(|t| t.ends_with("ms") || t.ends_with(" s")));
    }
    assert!(v.num("wan-shipped-eu-west").unwrap_or(0.0) > 0.0, "node1 shipped nothing to eu-west");

    // 3. A repair started through the API ends as an event.
    println!("repair:");
    let (code, _) = http("POST", &format!("http://{us1}/api/v1/cluster/repair"), &[auth()], None);
    assert_eq!(code, 202);
    wait_view(&mut b, Duration::from_secs(60), "repair-done event", |v| {
        v.events("repair-done").iter().any(|e| e.contains("repair done (api)"))
    });

    // 4. Fence and unfence the region.
    println!("fence:");
    let (code, _) = http("POST", &format!("http://{us1}/api/v1/regions/us-east/fence"), &[auth()], None);
    assert_eq!(code, 200);
    let v = wait_view(&mut b, Duration::from_secs(20), "region fenced", |v| {
        v.status("region-state-us-east") == Some("fenced")
            && v.events("region-fenced").iter().any(|e| e.contains("region us-east fenced"))
    });
    assert_eq!(v.status("wan-link-eu-west"), Some("fenced"));
    let (code, _) = http("POST", &format!("http://{us1}/api/v1/regions/us-east/unfence"), &[auth()], None);
    assert_eq!(code, 200);
    wait_view(&mut b, Duration::from_secs(20), "region unfenced", |v| {
        v.status("region-state-us-east") == Some("serving")
            && v.events("region-unfenced").iter().any(|e| e.contains("region us-east unfenced"))
    });

    // 5. A node down: its state, the hints kept for it, then its return.
    println!("node2 stopped:");
    kill(Pid::from_raw(us2_pid), Signal::SIGSTOP).expect("SIGSTOP node2");
    dev.stopped.push(us2_pid);
    let v = wait_view(&mut b, Duration::from_secs(30), "node2 down", |v| {
        v.status("node-status-node2") == Some("down")
            && v.events("node-down").iter().any(|e| e.contains("node node2 down"))
    });
    // The background load's writes in us-east are hinted too: count from here.
    let stored0 = v.num("hints-stored").expect("hints stored shown");
    for i in 0..10 {
        assert_eq!(put(&us1, &format!("dash-hinted-{i}"), "v", Some("ONE")), 200);
    }
    let v = wait_view(&mut b, Duration::from_secs(20), "hints for node2", |v| {
        v.num("hints-stored").unwrap_or(0.0) >= stored0 + 10.0
            && v.num("hint-pending-node2").unwrap_or(0.0) >= 1.0
            && v.num("hints-pending").unwrap_or(0.0) >= 1.0
            && v.events("hints").iter().any(|e| e.contains("hints queued for node2"))
    });
    let stored = v.num("hints-stored").unwrap_or(0.0);
    assert_eq!(v.num("region-nodes-us-east"), Some(1.0));
    kill(Pid::from_raw(us2_pid), Signal::SIGCONT).expect("SIGCONT node2");
    dev.stopped.clear();
    let v = wait_view(&mut b, Duration::from_secs(30), "node2 up and its hints delivered", |v| {
        v.status("node-status-node2") == Some("healthy")
            && v.events("node-up").iter().any(|e| e.contains("node node2 up"))
            && v.num("hints-pending") == Some(0.0)
    });
    // Every hint stored while node2 was away was delivered (none is dropped within the window).
    let replayed = v.num("hints-replayed").unwrap_or(0.0);
    assert!(replayed >= stored, "hints replayed: {replayed}, stored: {stored}");
    assert_eq!(v.marker(), Some(42), "the page was reloaded");

    // 6. The screenshot, with the load still running so the rates are not all 0.
    std::thread::sleep(Duration::from_secs(3));
    let png = b.screenshot();
    stop.store(true, Ordering::Relaxed);
    let bg = load.join().expect("background load");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000, "screenshot of {} bytes", png.len());
    let out = std::env::var_os("MERIDIAN_DASHBOARD_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png"));
    std::fs::write(&out, &png).expect("write the screenshot");
    println!("screenshot: {} ({} bytes); background writes: {bg} rounds", out.display(), png.len());
    assert!(b.js_errors.is_empty(), "the page's script failed: {:?}", b.js_errors);
    drop(b);
    drop(dev);
    println!("total {:.1} s", t0.elapsed().as_secs_f64());
}
