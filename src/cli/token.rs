//! `meridian token create` and `meridian token hash`: API bearer tokens and the configuration
//! lines that let a node accept them (`[[auth.tokens]]`, docs/operations.md "API tokens").
//!
//! A token is `mrd_` followed by 32 random bytes (from the operating system, through ring) in
//! unpadded base64url: 256 bits, so the plain SHA-256 the nodes store cannot be reversed by
//! guessing. The token is printed once and stored nowhere.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use base64::Engine as _;
use meridian_config::Scope;
use meridian_region::http::auth::token_sha256_hex;
use ring::rand::SecureRandom as _;
use serde_json::json;

use crate::Output;

/// The prefix of every token `meridian token create` makes (recognisable in logs and leak
/// scanners; the nodes accept any token whose hash is configured).
pub const TOKEN_PREFIX: &str = "mrd_";

/// A new random token.
pub fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the operating system's random source failed"))?;
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// Parses `read,write,admin` (any order, no repeats, at least one).
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>, String> {
    let mut scopes = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let scope = Scope::parse(part).ok_or_else(|| format!("{part:?} is not a scope (read, write, admin)"))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err("give at least one scope: read, write, admin".into());
    }
    scopes.sort();
    Ok(scopes)
}

/// The `[[auth.tokens]]` table of a token.
pub fn config_entry(name: &str, sha256: &str, scopes: &[Scope], rate: Option<u32>, burst: Option<u32>) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| format!("{:?}", s.as_str())).collect();
    let mut s = format!("[[auth.tokens]]\nname = {name:?}\nsha256 = {sha256:?}\nscopes = [{}]\n", scopes.join(", "));
    if let Some(rate) = rate {
        s.push_str(&format!("rate_per_sec = {rate}\n"));
    }
    if let Some(burst) = burst {
        s.push_str(&format!("burst = {burst}\n"));
    }
    s
}

/// `meridian token create`.
pub fn create(name: &str, scopes: &str, rate: Option<u32>, burst: Option<u32>, output: Output) -> ExitCode {
    let usage = |m: String| {
        eprintln!("error: {m}");
        ExitCode::from(2)
    };
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        return usage(format!("--name {name:?}: 1 to 64 characters of [a-z0-9_-]"));
    }
    let scopes = match parse_scopes(scopes) {
        Ok(s) => s,
        Err(e) => return usage(format!("--scopes: {e}")),
    };
    if burst.is_some() && rate.is_none() {
        return usage("--burst needs --rate-per-sec".into());
    }
    if rate == Some(0) || burst == Some(0) {
        return usage("--rate-per-sec and --burst must be at least 1".into());
    }
    let token = match generate() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let sha256 = token_sha256_hex(&token);
    let entry = config_entry(name, &sha256, &scopes, rate, burst);
    match output {
        Output::Json => println!(
            "{}",
            json!({
                "name": name,
                "token": token,
                "sha256": sha256,
                "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "rate_per_sec": rate,
                "burst": burst,
                "config": entry,
            })
        ),
        Output::Text => {
            println!("token:  {token}");
            println!("sha256: {sha256}");
            println!();
            println!("Give the token to the client (Authorization: Bearer <token>, or MERIDIAN_TOKEN);");
            println!("it is shown only now and stored nowhere. Add this to the [auth] section of every");
            println!("node (or, as [[tokens]], to auth.tokens_file) and restart the nodes one by one:");
            println!();
            print!("{entry}");
        }
    }
    ExitCode::SUCCESS
}

/// `meridian token hash`: the SHA-256 of a token read from standard input (its first line).
pub fn hash() -> ExitCode {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("paste the token and press Enter:");
    }
    let mut line = String::new();
    if let Err(e) = stdin.lock().read_line(&mut line) {
        eprintln!("error: cannot read standard input: {e}");
        return ExitCode::FAILURE;
    }
    let token = line.trim_end_matches(['\r', '\n']);
    if token.is_empty() {
        eprintln!("error: no token on standard input");
        return ExitCode::from(2);
    }
    println!("{}", token_sha256_hex(token));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_256_bits() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&a[TOKEN_PREFIX.len()..]).unwrap();
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn scopes_parse_and_the_entry_is_valid_configuration() {
        assert_eq!(parse_scopes("write, read,read").unwrap(), [Scope::Read, Scope::Write]);
        assert!(parse_scopes("").is_err());
        assert!(parse_scopes("read,root").is_err());
        let token = generate().unwrap();
        let entry = config_entry("app", &token_sha256_hex(&token), &[Scope::Read, Scope::Admin], Some(10), Some(20));
        let cfg = meridian_config::NodeConfig::from_toml_str(&format!("[auth]\nenabled = true\n\n{entry}")).unwrap();
        cfg.validate().unwrap();
        let t = &cfg.auth.tokens[0];
        assert_eq!((t.name.as_str(), t.rate_per_sec, t.burst), ("app", Some(10), Some(20)));
        assert_eq!(t.scopes, [Scope::Read, Scope::Admin]);
        assert_eq!(t.sha256, token_sha256_hex(&token));
    }
}
