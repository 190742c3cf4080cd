//! How the commands that talk to the API (`ctl`, `bench`, `drill`) authenticate and trust it:
//! a bearer token (`--token`, `MERIDIAN_TOKEN`, else the endpoints file's `"token"`, which
//! `meridian dev` writes) and, for HTTPS with certificates from a private CA, `--ca-cert`
//! (`MERIDIAN_CA_CERT`). HTTPS itself is chosen by naming a node `https://HOST:PORT`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use meridian_client::EndpointsFile;

use crate::cli::ctl::CtlError;

/// The options every API-speaking command takes.
#[derive(Clone, Default, Args)]
pub struct AccessArgs {
    /// Bearer token for a node with API authentication (auth.enabled); default: the
    /// endpoints file's "token", if any.
    #[arg(long, global = true, env = "MERIDIAN_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// PEM file of the CA that the nodes' HTTPS certificates chain to (default: the public
    /// roots). Nodes are spoken to over HTTPS when given as https://HOST:PORT.
    #[arg(long, global = true, env = "MERIDIAN_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
}

impl fmt::Debug for AccessArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessArgs")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

/// The token and trusted CA a command uses.
#[derive(Clone, Default)]
pub struct Access {
    /// The bearer token, if any.
    pub token: Option<String>,
    /// PEM text of the CA to trust, if one was given.
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

impl AccessArgs {
    /// The access to use: `--token` (or `MERIDIAN_TOKEN`), else the token of the endpoints file
    /// the command reads (`endpoints_file`, else `default_file` if it exists; none with
    /// `--node`, `through_node`).
    pub fn resolve(
        &self,
        endpoints_file: Option<&Path>,
        default_file: &Path,
        through_node: bool,
    ) -> Result<Access, CtlError> {
        let mut token = self.token.clone().filter(|t| !t.trim().is_empty());
        if token.is_none() && !through_node {
            let file = endpoints_file.or_else(|| default_file.is_file().then_some(default_file));
            if let Some(file) = file {
                // An unreadable file is reported by the command that reads it for its nodes.
                token = EndpointsFile::read(file).ok().and_then(|f| f.token);
            }
        }
        let ca_pem = match &self.ca_cert {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| CtlError::Usage(format!("cannot read --ca-cert {}: {e}", path.display())))?,
            ),
            None => None,
        };
        Ok(Access { token, ca_pem })
    }
}

impl Access {
    /// `Bearer <token>`, if there is a token.
    pub fn authorization(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    /// A reqwest client builder that sends the token with every request and trusts the CA.
    pub fn reqwest(&self) -> Result<reqwest::ClientBuilder, CtlError> {
        let mut b = reqwest::Client::builder();
        if let Some(auth) = self.authorization() {
            let mut value = reqwest::header::HeaderValue::from_str(&auth)
                .map_err(|_| CtlError::Usage("the token is not a valid header value".into()))?;
            value.set_sensitive(true);
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::AUTHORIZATION, value);
            b = b.default_headers(headers);
        }
        if let Some(pem) = &self.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| CtlError::Usage(format!("--ca-cert is not PEM: {e}")))?;
            for cert in certs {
                b = b.add_root_certificate(cert);
            }
        }
        Ok(b)
    }

    /// The client library's builder with the token and the CA.
    pub fn client(&self) -> meridian_client::ClientBuilder {
        let mut b = meridian_client::Client::builder();
        if let Some(token) = &self.token {
            b = b.token(token.clone());
        }
        if let Some(pem) = &self.ca_pem {
            b = b.ca_cert_pem(pem.clone());
        }
        b
    }

    /// A ureq agent builder trusting the CA (ureq's own public roots otherwise).
    pub fn ureq(&self, builder: ureq::AgentBuilder) -> Result<ureq::AgentBuilder, CtlError> {
        let Some(pem) = &self.ca_pem else {
            return Ok(builder);
        };
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| CtlError::Usage(format!("--ca-cert is not PEM: {e}")))?;
            roots.add(cert).map_err(|e| CtlError::Usage(format!("--ca-cert: {e}")))?;
        }
        if roots.is_empty() {
            return Err(CtlError::Usage("--ca-cert holds no certificate".into()));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| CtlError::Usage(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(builder.tls_config(Arc::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_flag_else_the_endpoints_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints.json");
        std::fs::write(&file, r#"{"regions": [], "token": "mrd_from_file"}"#).unwrap();
        let none = Path::new("/nonexistent/endpoints.json");
        let args = AccessArgs::default();
        assert_eq!(args.resolve(Some(&file), none, false).unwrap().token.as_deref(), Some("mrd_from_file"));
        assert_eq!(args.resolve(None, &file, false).unwrap().token.as_deref(), Some("mrd_from_file"));
        assert_eq!(args.resolve(Some(&file), none, true).unwrap().token, None, "--node reads no file");
        let flag = AccessArgs { token: Some("mrd_flag".into()), ca_cert: None };
        let access = flag.resolve(Some(&file), none, false).unwrap();
        assert_eq!(access.token.as_deref(), Some("mrd_flag"));
        assert_eq!(access.authorization().as_deref(), Some("Bearer mrd_flag"));
        assert!(!format!("{access:?} {flag:?}").contains("mrd_flag"), "tokens stay out of Debug output");
        let bad_ca = AccessArgs { token: None, ca_cert: Some(dir.path().join("missing.pem")) };
        assert!(bad_ca.resolve(None, none, false).is_err());
    }
}
