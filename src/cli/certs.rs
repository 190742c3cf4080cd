//! `meridian certs`: development certificates for one or more regions.
//!
//! Writes a CA for intra-region traffic (`ca.pem`, `ca.key`), one certificate per node
//! (`REGION/NODE.pem`, `.key`, valid for `NODE.REGION.node.meridian` and
//! `REGION.region.meridian`), a separate CA for cross-region traffic (`wan-ca.pem`,
//! `wan-ca.key`) and one WAN certificate per region (`REGION/wan.pem`, `.key`, valid for
//! `REGION.wan.meridian`). Keys are written with mode 0600. For development and tests: a
//! production deployment issues certificates from its own PKI with the same names.

use std::path::PathBuf;
use std::process::ExitCode;

/// Parses `REGION=NODE,NODE,...`.
pub fn parse_region(spec: &str) -> Result<(String, Vec<String>), String> {
    let (region, nodes) = spec.split_once('=').ok_or_else(|| format!("{spec:?}: expected REGION=NODE,NODE,..."))?;
    let nodes: Vec<String> = nodes.split(',').map(str::trim).filter(|n| !n.is_empty()).map(String::from).collect();
    if region.trim().is_empty() || nodes.is_empty() {
        return Err(format!("{spec:?}: a region name and at least one node are needed"));
    }
    Ok((region.trim().to_owned(), nodes))
}

/// Runs `meridian certs`.
pub fn run(out: PathBuf, regions: Vec<String>) -> ExitCode {
    let parsed: Result<Vec<(String, Vec<String>)>, String> = regions.iter().map(|r| parse_region(r)).collect();
    let parsed = match parsed {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            eprintln!("error: give at least one --region REGION=NODE,NODE,...");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match meridian_net::certs::write_dev_bundle(&out, &parsed) {
        Ok(bundle) => {
            println!("wrote development certificates to {}", bundle.dir.display());
            println!("  intra-region CA: {}", bundle.ca_cert.display());
            for n in &bundle.nodes {
                println!("  {}/{}: {} {}", n.region, n.node, n.cert.display(), n.key.display());
            }
            println!("  cross-region CA: {}", bundle.wan_ca_cert.display());
            for (region, cert, key) in &bundle.wan {
                println!("  {region} WAN: {} {}", cert.display(), key.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_specs() {
        assert_eq!(parse_region("us-east=n1,n2").unwrap(), ("us-east".into(), vec!["n1".into(), "n2".into()]));
        assert!(parse_region("us-east").is_err());
        assert!(parse_region("us-east=").is_err());
        assert!(parse_region("=n1").is_err());
    }
}
