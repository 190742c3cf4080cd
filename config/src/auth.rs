//! The `[auth]` section: bearer tokens of the HTTP API, their scopes and rate limits.
//!
//! A token is a secret string a client sends as `Authorization: Bearer <token>`. Nodes never
//! store it: configuration holds the SHA-256 of the token (64 hex digits), and a request's token
//! is hashed and compared with every configured hash in constant time. Tokens are 256-bit
//! random strings (`meridian token create`), so an unsalted fast hash is enough: there is no
//! dictionary to try against it.
//!
//! Tokens are listed inline (`[[auth.tokens]]`) or in a separate file (`auth.tokens_file`,
//! `[[tokens]]` tables of the same shape), or both; the file is read when the server starts,
//! so that node configurations can be rendered and checked without the token list.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bounds::check_range;
use crate::error::{ConfigError, Origin};

/// What a token may do. Each endpoint needs exactly one scope (`docs/api.md`); scopes do not
/// imply one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read values, keyspaces, cluster and region status.
    Read,
    /// Write and delete values (registers, counters, sets).
    Write,
    /// Operate the cluster: create keyspaces, repair, decommission, snapshot, digests, fence,
    /// unfence and sync regions.
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    /// The name used in configuration and errors (`read`, `write`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin` (case-insensitive).
    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Largest per-token rate, in requests per second, and largest burst.
pub const MAX_RATE_PER_SEC: u32 = 1_000_000;

/// One API token (one `[[auth.tokens]]` table, or one `[[tokens]]` table of the tokens file).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenConfig {
    /// Who the token is for (`[a-z0-9_-]`, 1 to 64 characters); named in logs, never the
    /// token itself. Unique among the tokens.
    pub name: String,
    /// SHA-256 of the token, 64 hex digits (`meridian token create` prints it; or
    /// `printf %s "$TOKEN" | sha256sum`).
    pub sha256: String,
    /// What the token may do: one or more of `read`, `write`, `admin`.
    pub scopes: Vec<Scope>,
    /// Requests per second the token may make on this node (token bucket), 1..=1000000.
    /// Unset: unlimited.
    pub rate_per_sec: Option<u32>,
    /// Requests the token may make at once above its rate (the bucket's size), 1..=1000000.
    /// Unset: equal to `rate_per_sec`. Only with `rate_per_sec`.
    pub burst: Option<u32>,
}

impl TokenConfig {
    /// The hash as 32 bytes (validation guarantees 64 hex digits).
    pub fn digest(&self) -> Option<[u8; 32]> {
        decode_sha256(&self.sha256)
    }

    /// The bucket size: `burst`, else `rate_per_sec`.
    pub fn bucket_size(&self) -> Option<u32> {
        self.rate_per_sec.map(|rate| self.burst.unwrap_or(rate))
    }

    fn validate(&self, field: &str) -> Result<(), ConfigError> {
        crate::names::check_keyspace_name(&format!("{field}.name"), &self.name)?;
        if decode_sha256(&self.sha256).is_none() {
            return Err(ConfigError::invalid(
                format!("{field}.sha256"),
                "must be the SHA-256 of the token, 64 hex digits (`meridian token create` prints it)",
            ));
        }
        if self.scopes.is_empty() {
            return Err(ConfigError::invalid(
                format!("{field}.scopes"),
                "must name at least one of read, write, admin",
            ));
        }
        for (i, scope) in self.scopes.iter().enumerate() {
            if self.scopes[..i].contains(scope) {
                return Err(ConfigError::invalid(format!("{field}.scopes"), format!("{scope} is listed twice")));
            }
        }
        if let Some(rate) = self.rate_per_sec {
            check_range(&format!("{field}.rate_per_sec"), rate, 1..=MAX_RATE_PER_SEC)?;
        }
        if let Some(burst) = self.burst {
            if self.rate_per_sec.is_none() {
                return Err(ConfigError::invalid(format!("{field}.burst"), "needs rate_per_sec"));
            }
            check_range(&format!("{field}.burst"), burst, 1..=MAX_RATE_PER_SEC)?;
        }
        Ok(())
    }
}

/// The 32 bytes of 64 hex digits (either case), or `None`.
pub fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// The `[auth]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether API requests need a bearer token (`/healthz`, `/metrics`, `/openapi.json` and
    /// `/dashboard` never do). With it true, at least one token must be configured.
    pub enabled: bool,
    /// Lets a node whose API listens on a non-loopback address start with `enabled = false`:
    /// anyone who can reach the port can read, write and operate the cluster. Off by default;
    /// a node listening on loopback only (development) needs no permission.
    pub allow_unauthenticated: bool,
    /// The tokens, inline.
    pub tokens: Vec<TokenConfig>,
    /// A TOML file of more tokens (`[[tokens]]` tables of the same keys), read when the server
    /// starts. Unset: only the inline tokens.
    pub tokens_file: Option<PathBuf>,
}

/// The shape of `auth.tokens_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenConfig>,
}

impl AuthConfig {
    /// Checks the inline tokens (and that a tokens source exists when auth is on).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tokens_file.as_deref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(ConfigError::invalid("auth.tokens_file", "must not be empty"));
        }
        if self.enabled && self.tokens.is_empty() && self.tokens_file.is_none() {
            return Err(ConfigError::invalid(
                "auth.enabled",
                "is true but no token is configured: add [[auth.tokens]] or set auth.tokens_file \
                 (`meridian token create` makes one)",
            ));
        }
        check_tokens(&self.tokens, "auth.tokens")
    }

    /// Every token: the inline ones, then those of `tokens_file` (read now), checked together
    /// (names and hashes unique across both).
    pub fn load_tokens(&self) -> Result<Vec<TokenConfig>, ConfigError> {
        let mut all = self.tokens.clone();
        if let Some(path) = &self.tokens_file {
            all.extend(read_tokens_file(path)?);
        }
        check_tokens(&all, "auth.tokens")?;
        if self.enabled && all.is_empty() {
            return Err(ConfigError::invalid("auth.enabled", "is true but no token is configured"));
        }
        Ok(all)
    }
}

/// Reads and checks a tokens file.
pub fn read_tokens_file(path: &Path) -> Result<Vec<TokenConfig>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let file: TokensFile = toml::from_str(&text)
        .map_err(|e| ConfigError::Syntax { origin: Origin::File(path.to_owned()), message: e.to_string() })?;
    let field = format!("{} tokens", path.display());
    check_tokens(&file.tokens, &field)?;
    Ok(file.tokens)
}

fn check_tokens(tokens: &[TokenConfig], field: &str) -> Result<(), ConfigError> {
    for (i, token) in tokens.iter().enumerate() {
        let here = format!("{field}[{i}]");
        token.validate(&here)?;
        if let Some(j) = tokens[..i].iter().position(|t| t.name == token.name) {
            return Err(ConfigError::invalid(
                format!("{here}.name"),
                format!("{:?} is already the name of token {j}", token.name),
            ));
        }
        if let Some(j) = tokens[..i].iter().position(|t| t.digest() == token.digest()) {
            return Err(ConfigError::invalid(
                format!("{here}.sha256"),
                format!("is also the hash of token {j} ({:?}); one token, one entry", tokens[j].name),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, hash: &str) -> TokenConfig {
        TokenConfig { name: name.into(), sha256: hash.into(), scopes: vec![Scope::Read], ..TokenConfig::default() }
    }

    const H1: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const H2: &str = "60303AE22B998861BCE3B28F33EEC1BE758A213C86C93C076DBE9F558C11C752";

    #[test]
    fn hashes_decode_in_either_case() {
        assert_eq!(decode_sha256(H1).unwrap()[0], 0x9f);
        assert_eq!(decode_sha256(H2).unwrap()[31], 0x52);
        assert!(decode_sha256(&H1[1..]).is_none());
        assert!(decode_sha256(&H1.replace('9', "g")).is_none());
    }

    #[test]
    fn tokens_are_checked() {
        let ok =
            AuthConfig { enabled: true, tokens: vec![token("app", H1), token("ops", H2)], ..AuthConfig::default() };
        ok.validate().unwrap();
        let none = AuthConfig { enabled: true, ..AuthConfig::default() };
        assert_eq!(none.validate().unwrap_err().key(), Some("auth.enabled"));
        let dup = AuthConfig { tokens: vec![token("app", H1), token("app", H2)], ..AuthConfig::default() };
        assert_eq!(dup.validate().unwrap_err().key(), Some("auth.tokens[1].name"));
        let same = AuthConfig { tokens: vec![token("a", H1), token("b", &H1.to_uppercase())], ..AuthConfig::default() };
        assert_eq!(same.validate().unwrap_err().key(), Some("auth.tokens[1].sha256"));
        let mut t = token("a", H1);
        t.scopes.clear();
        let err = AuthConfig { tokens: vec![t], ..AuthConfig::default() }.validate().unwrap_err();
        assert_eq!(err.key(), Some("auth.tokens[0].scopes"));
        let mut t = token("a", H1);
        t.burst = Some(5);
        let err = AuthConfig { tokens: vec![t], ..AuthConfig::default() }.validate().unwrap_err();
        assert_eq!(err.key(), Some("auth.tokens[0].burst"));
        let mut t = token("a", H1);
        t.rate_per_sec = Some(0);
        assert!(AuthConfig { tokens: vec![t], ..AuthConfig::default() }.validate().is_err());
    }

    #[test]
    fn the_tokens_file_adds_tokens_checked_with_the_inline_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, format!("[[tokens]]\nname = \"ops\"\nsha256 = \"{H2}\"\nscopes = [\"admin\"]\n"))
            .unwrap();
        let auth = AuthConfig {
            enabled: true,
            tokens: vec![token("app", H1)],
            tokens_file: Some(path.clone()),
            ..AuthConfig::default()
        };
        let all = auth.load_tokens().unwrap();
        assert_eq!(all.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["app", "ops"]);
        assert_eq!(all[1].scopes, [Scope::Admin]);
        let clash = AuthConfig { tokens: vec![token("ops", H1)], ..auth.clone() };
        assert!(clash.load_tokens().unwrap_err().to_string().contains("already the name"));
        std::fs::write(&path, "[[tokens]]\nname = \"x\"\nsha = \"\"\n").unwrap();
        assert!(auth.load_tokens().is_err());
        let missing = AuthConfig { tokens_file: Some(dir.path().join("nope.toml")), ..auth };
        assert!(matches!(missing.load_tokens(), Err(ConfigError::Read { .. })));
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(Scope::parse("READ"), Some(Scope::Read));
        assert_eq!(Scope::parse(" admin"), Some(Scope::Admin));
        assert_eq!(Scope::parse("root"), None);
        let mut t = token("a", H1);
        assert_eq!(t.bucket_size(), None);
        t.rate_per_sec = Some(10);
        assert_eq!(t.bucket_size(), Some(10));
        t.burst = Some(3);
        assert_eq!(t.bucket_size(), Some(3));
    }
}
