//! `meridian config check FILE... [--set KEY=VALUE]...`: exit 0 when every file is valid and
//! would be allowed to start (the HTTP API exposure rule, `NodeConfig::api_exposure_refusal`).

use std::path::PathBuf;
use std::process::ExitCode;

use meridian_config::{parse_override, NodeConfig};
use serde_json::json;

use crate::Output;

/// Checks each file; prints one line (or one JSON object) per file.
pub fn run(files: &[PathBuf], set: &[String], output: Output) -> ExitCode {
    let overrides: Result<Vec<(String, String)>, _> = set.iter().map(|s| parse_override(s)).collect();
    let overrides = match overrides {
        Ok(o) => o,
        Err(e) => {
            report_error(output, None, e.code(), &e.to_string());
            return ExitCode::from(2);
        }
    };
    let mut results = Vec::new();
    let mut ok = true;
    for file in files {
        match NodeConfig::load_from_process_env(Some(file), &overrides) {
            Ok(cfg) if cfg.api_exposure_refusal().is_some() => {
                ok = false;
                let why = cfg.api_exposure_refusal().unwrap_or_default();
                if output == Output::Text {
                    eprintln!("error {}: [config_refused] {why}", file.display());
                }
                results.push(json!({"file": file, "ok": false, "error": "config_refused", "message": why}));
            }
            Ok(cfg) => {
                if output == Output::Text {
                    println!(
                        "ok    {}: node {} in region {} (node number {:016x}), http {}, rpc {}, {} keyspace(s)",
                        file.display(),
                        cfg.node.id,
                        cfg.node.region,
                        cfg.node_number(),
                        cfg.http.listen,
                        cfg.rpc.listen,
                        cfg.effective_keyspaces().len(),
                    );
                }
                results.push(json!({"file": file, "ok": true, "node": cfg.node.id, "region": cfg.node.region}));
            }
            Err(e) => {
                ok = false;
                if output == Output::Text {
                    eprintln!("error {}: [{}] {e}", file.display(), e.code());
                }
                results.push(json!({"file": file, "ok": false, "error": e.code(), "message": e.to_string()}));
            }
        }
    }
    if output == Output::Json {
        println!("{}", json!({ "ok": ok, "files": results }));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report_error(output: Output, file: Option<&PathBuf>, code: &str, message: &str) {
    match output {
        Output::Text => eprintln!("error: [{code}] {message}"),
        Output::Json => println!("{}", json!({"ok": false, "file": file, "error": code, "message": message})),
    }
}
