//! Development certificates: a private CA and the node and region certificates of the
//! [naming scheme](crate::tls), generated with rcgen (ECDSA P-256, SHA-256).
//!
//! This is tooling for `meridian dev` and `meridian certs`, and for tests. Production
//! deployments may use it or any other CA that issues the same names.
//!
//! Validity: certificates start one hour before the moment of issue (tolerating modest clock
//! skew between the machine that issues and the machines that verify) and last the given number
//! of days. [`CertAuthority::issue_with`] takes explicit times, for tests (expired or
//! not-yet-valid certificates, arbitrary names).

use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::error::NetError;
use crate::tls::{self, node_name, region_name, validate_name, wan_name, TlsIdentity};

/// How long a generated CA is valid.
pub const CA_VALIDITY_DAYS: u32 = 3650;
/// How long the certificates of [`write_dev_bundle`] are valid.
pub const DEV_CERT_VALIDITY_DAYS: u32 = 365;
/// How far before the moment of issue a certificate's validity starts.
pub const BACKDATE: Duration = Duration::from_secs(3600);

const DAY: Duration = Duration::from_secs(86_400);

fn gen_err(e: rcgen::Error) -> NetError {
    NetError::CertGeneration(e.to_string())
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate (`-----BEGIN CERTIFICATE-----`).
    pub cert_pem: String,
    /// The private key, PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert").field("cert_pem", &self.cert_pem).field("key_pem", &"[secret key elided]").finish()
    }
}

/// What [`CertAuthority::issue_with`] puts in a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// The subject common name (informational; verification uses the SANs).
    pub common_name: String,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ips: Vec<IpAddr>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl CertSpec {
    /// A certificate for `dns_names`, valid from an hour ago for `days` days.
    pub fn valid_for_days(dns_names: Vec<String>, days: u32) -> Self {
        let now = SystemTime::now();
        Self {
            common_name: dns_names.first().cloned().unwrap_or_default(),
            dns_names,
            ips: Vec::new(),
            not_before: now - BACKDATE,
            not_after: now + DAY * days,
        }
    }
}

/// A private certificate authority that issues Meridian certificates.
pub struct CertAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_der: CertificateDer<'static>,
    cert_pem: String,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// Generates a new CA (self-signed, valid for [`CA_VALIDITY_DAYS`]) whose subject is
    /// `CN=<name>, O=Meridian`.
    pub fn generate(name: &str) -> Result<Self, NetError> {
        if name.trim().is_empty() {
            return Err(NetError::InvalidName { name: name.to_owned(), reason: "a CA name must not be empty".into() });
        }
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "Meridian");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = SystemTime::now();
        params.not_before = OffsetDateTime::from(now - BACKDATE);
        params.not_after = OffsetDateTime::from(now + DAY * CA_VALIDITY_DAYS);
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(Self { cert_der: cert.der().clone(), cert_pem: cert.pem(), issuer: Issuer::new(params, key) })
    }

    /// Loads a CA saved with [`cert_pem`](Self::cert_pem) and [`key_pem`](Self::key_pem).
    /// Fails if the key does not belong to the certificate.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, NetError> {
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| NetError::InvalidKey { context: "CA key".into(), reason: e.to_string() })?;
        let cert_der = cert_der_from_pem(cert_pem, "CA certificate")?;
        let provider = tls::crypto_provider();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        rustls::sign::CertifiedKey::from_der(vec![cert_der.clone()], key_der, &provider).map_err(|e| {
            NetError::InvalidKey {
                context: "CA key".into(),
                reason: match e {
                    rustls::Error::InconsistentKeys(_) => "does not match the CA certificate".into(),
                    other => other.to_string(),
                },
            }
        })?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| NetError::InvalidCertificate { context: "CA certificate".into(), reason: e.to_string() })?;
        Ok(Self { issuer, cert_der, cert_pem: cert_pem.to_owned() })
    }

    /// The CA certificate, PEM-encoded (what nodes load as `tls.ca_cert`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER-encoded.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA's private key, PEM-encoded (PKCS#8). Keep it secret: it can issue any identity.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// Issues the certificate of node `node` in region `region`: DNS SANs
    /// `node.region.node.meridian` and `region.region.meridian`, plus `ips` as IP SANs; usable
    /// as both TLS server and client; valid from an hour ago for `validity_days` days.
    pub fn issue_node(
        &self,
        region: &str,
        node: &str,
        ips: &[IpAddr],
        validity_days: u32,
    ) -> Result<IssuedCert, NetError> {
        check_days(validity_days)?;
        let node_dns = node_name(region, node)?;
        let mut spec = CertSpec::valid_for_days(vec![node_dns, region_name(region)?], validity_days);
        spec.ips = ips.to_vec();
        self.issue_with(&spec)
    }

    /// Issues the WAN certificate of region `region`: DNS SAN `region.wan.meridian`.
    pub fn issue_region(&self, region: &str, ips: &[IpAddr], validity_days: u32) -> Result<IssuedCert, NetError> {
        check_days(validity_days)?;
        let mut spec = CertSpec::valid_for_days(vec![wan_name(region)?], validity_days);
        spec.ips = ips.to_vec();
        self.issue_with(&spec)
    }

    /// Issues a certificate exactly as described, without checking the names against the
    /// scheme (tests: another region's name, an expired or not-yet-valid certificate).
    pub fn issue_with(&self, spec: &CertSpec) -> Result<IssuedCert, NetError> {
        let mut params = CertificateParams::new(spec.dns_names.clone()).map_err(gen_err)?;
        params.subject_alt_names.extend(spec.ips.iter().copied().map(SanType::IpAddress));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.as_str());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = OffsetDateTime::from(spec.not_before);
        params.not_after = OffsetDateTime::from(spec.not_after);
        let key = KeyPair::generate().map_err(gen_err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(IssuedCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

fn check_days(days: u32) -> Result<(), NetError> {
    if days == 0 {
        return Err(NetError::CertGeneration("validity must be at least one day".into()));
    }
    Ok(())
}

fn cert_der_from_pem(pem: &str, context: &str) -> Result<CertificateDer<'static>, NetError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| NetError::InvalidCertificate { context: context.into(), reason: e.to_string() })
}

/// The files of one node in a [`DevBundle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFiles {
    /// The region.
    pub region: String,
    /// The node.
    pub node: String,
    /// `R/N.pem`: the node's certificate.
    pub cert: PathBuf,
    /// `R/N.key`: the node's private key (mode 0600 on unix).
    pub key: PathBuf,
}

/// What [`write_dev_bundle`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevBundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// `ca.pem`: the CA certificate (every node's `tls.ca_cert`).
    pub ca_cert: PathBuf,
    /// `ca.key`: the CA key (mode 0600 on unix).
    pub ca_key: PathBuf,
    /// One entry per node, in the order given.
    pub nodes: Vec<NodeFiles>,
    /// `wan-ca.pem`: the CA of the regions' WAN certificates (every node's `wan.ca_cert`),
    /// distinct from `ca.pem`: trust between regions is not trust inside one.
    pub wan_ca_cert: PathBuf,
    /// `wan-ca.key` (mode 0600 on unix).
    pub wan_ca_key: PathBuf,
    /// Per region, `R/wan.pem` and `R/wan.key`: its WAN certificate (valid for
    /// `R.wan.meridian`) and key.
    pub wan: Vec<(String, PathBuf, PathBuf)>,
}

impl DevBundle {
    /// The files of node `node` in region `region`.
    pub fn node(&self, region: &str, node: &str) -> Option<&NodeFiles> {
        self.nodes.iter().find(|n| n.region == region && n.node == node)
    }

    /// Loads the intra-region identity of a node of the bundle (expected peer:
    /// `region.region.meridian`).
    pub fn identity(&self, region: &str, node: &str) -> Result<TlsIdentity, NetError> {
        let files = self.node(region, node).ok_or_else(|| NetError::InvalidName {
            name: format!("{node}.{region}"),
            reason: "no such node in the bundle".into(),
        })?;
        TlsIdentity::from_pem_files(&self.ca_cert, &files.cert, &files.key, &region_name(region)?)
    }
}

/// Generates a new development CA and a certificate per node, and writes them under `dir`:
/// `ca.pem`, `ca.key`, and per node `R/N.pem`, `R/N.key` (keys with mode 0600 on unix).
/// Node certificates carry the loopback addresses `127.0.0.1` and `::1` as IP SANs and are
/// valid for [`DEV_CERT_VALIDITY_DAYS`]. Existing files are overwritten.
pub fn write_dev_bundle<R: AsRef<str>, N: AsRef<str>>(
    dir: &Path,
    regions: &[(R, Vec<N>)],
) -> Result<DevBundle, NetError> {
    // Validate everything before writing anything.
    let mut seen = std::collections::HashSet::new();
    for (region, nodes) in regions {
        validate_name(region.as_ref())?;
        for node in nodes {
            validate_name(node.as_ref())?;
            if !seen.insert((region.as_ref(), node.as_ref())) {
                return Err(NetError::InvalidName {
                    name: format!("{}.{}", node.as_ref(), region.as_ref()),
                    reason: "node listed twice".into(),
                });
            }
        }
    }
    let ca = CertAuthority::generate("Meridian development CA")?;
    let bundle_dir = dir.to_owned();
    create_dir(&bundle_dir)?;
    let ca_cert = bundle_dir.join("ca.pem");
    let ca_key = bundle_dir.join("ca.key");
    write_file(&ca_cert, ca.cert_pem().as_bytes(), false)?;
    write_file(&ca_key, ca.key_pem().as_bytes(), true)?;
    let loopback = [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    let mut files = Vec::new();
    for (region, nodes) in regions {
        let region = region.as_ref();
        let region_dir = bundle_dir.join(region);
        create_dir(&region_dir)?;
        for node in nodes {
            let node = node.as_ref();
            let issued = ca.issue_node(region, node, &loopback, DEV_CERT_VALIDITY_DAYS)?;
            let cert = region_dir.join(format!("{node}.pem"));
            let key = region_dir.join(format!("{node}.key"));
            write_file(&cert, issued.cert_pem.as_bytes(), false)?;
            write_file(&key, issued.key_pem.as_bytes(), true)?;
            files.push(NodeFiles { region: region.to_owned(), node: node.to_owned(), cert, key });
        }
    }
    let wan_ca = CertAuthority::generate("meridian development WAN CA")?;
    let wan_ca_cert = bundle_dir.join("wan-ca.pem");
    let wan_ca_key = bundle_dir.join("wan-ca.key");
    write_file(&wan_ca_cert, wan_ca.cert_pem().as_bytes(), false)?;
    write_file(&wan_ca_key, wan_ca.key_pem().as_bytes(), true)?;
    let mut wan = Vec::new();
    for (region, _) in regions {
        let region = region.as_ref();
        let issued = wan_ca.issue_region(region, &loopback, DEV_CERT_VALIDITY_DAYS)?;
        let cert = bundle_dir.join(region).join("wan.pem");
        let key = bundle_dir.join(region).join("wan.key");
        write_file(&cert, issued.cert_pem.as_bytes(), false)?;
        write_file(&key, issued.key_pem.as_bytes(), true)?;
        wan.push((region.to_owned(), cert, key));
    }
    Ok(DevBundle { dir: bundle_dir, ca_cert, ca_key, nodes: files, wan_ca_cert, wan_ca_key, wan })
}

fn create_dir(path: &Path) -> Result<(), NetError> {
    fs::create_dir_all(path).map_err(|e| NetError::WriteFile { path: path.to_owned(), source: Arc::new(e) })
}

/// Writes `data` to `path`, replacing it. A secret is written with mode 0600 (unix), set
/// before any byte is written, also when the file existed with wider permissions.
fn write_file(path: &Path, data: &[u8], secret: bool) -> Result<(), NetError> {
    let err = |e| NetError::WriteFile { path: path.to_owned(), source: Arc::new(e) };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    file.write_all(data).and_then(|()| file.sync_all()).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_round_trips_through_pem() {
        let ca = CertAuthority::generate("test").unwrap();
        let loaded = CertAuthority::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(loaded.cert_der(), ca.cert_der());
        // The loaded CA issues certificates that chain to the original.
        let issued = loaded.issue_node("r1", "n1", &[], 1).unwrap();
        TlsIdentity::from_pem(
            ca.cert_pem().as_bytes(),
            issued.cert_pem.as_bytes(),
            issued.key_pem.as_bytes(),
            "r1.region.meridian",
        )
        .unwrap();
    }

    #[test]
    fn ca_with_a_foreign_key_is_refused() {
        let ca = CertAuthority::generate("one").unwrap();
        let other = CertAuthority::generate("two").unwrap();
        let err = CertAuthority::from_pem(ca.cert_pem(), &other.key_pem()).unwrap_err();
        assert_eq!(err.code(), "invalid_key", "{err}");
    }

    #[test]
    fn node_cert_carries_the_scheme_names() {
        let ca = CertAuthority::generate("test").unwrap();
        let issued = ca.issue_node("eu", "n7", &[IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))], 1).unwrap();
        let der = cert_der_from_pem(&issued.cert_pem, "node").unwrap();
        for name in ["n7.eu.node.meridian", "eu.region.meridian"] {
            let server_name = rustls::pki_types::ServerName::try_from(name).unwrap().to_owned();
            tls::check_identity(&der, &server_name).unwrap();
        }
        let ip = rustls::pki_types::ServerName::try_from("10.0.0.7").unwrap().to_owned();
        tls::check_identity(&der, &ip).unwrap();
        let other = rustls::pki_types::ServerName::try_from("us.region.meridian").unwrap().to_owned();
        assert!(tls::check_identity(&der, &other).is_err());
        assert!(ca.issue_node("eu", "n7", &[], 0).is_err());
        assert!(ca.issue_node("EU", "n7", &[], 1).is_err());
    }

    #[test]
    fn bundle_refuses_duplicates_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_dev_bundle(dir.path(), &[("r1", vec!["a", "a"])]).unwrap_err();
        assert_eq!(err.code(), "invalid_name");
        assert!(!dir.path().join("ca.pem").exists());
    }
}
