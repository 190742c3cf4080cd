//! The identity naming scheme: which DNS names a certificate carries and which name a peer is
//! checked against. See the [module documentation](crate::tls) for the scheme itself.

use crate::error::NetError;

/// The DNS suffix of per-node names: `N.R.node.meridian`.
pub const NODE_SUFFIX: &str = "node.meridian";
/// The DNS suffix of region names: `R.region.meridian`, carried by every node of region `R`
/// and checked on intra-region links.
pub const REGION_SUFFIX: &str = "region.meridian";
/// The DNS suffix of a region's WAN identity: `R.wan.meridian`, checked on cross-region links.
pub const WAN_SUFFIX: &str = "wan.meridian";
/// The DNS suffix of throwaway identities of insecure (development) mode.
pub const INSECURE_SUFFIX: &str = "insecure.meridian";

/// Longest region or node name, in bytes (one DNS label).
pub const MAX_NAME_LEN: usize = 63;

/// Checks a region or node name: `[a-z0-9-]{1,63}`, and not ending with `-` (a DNS label
/// cannot end with a hyphen, so such a name could not appear in a certificate).
pub fn validate_name(name: &str) -> Result<(), NetError> {
    let invalid = |reason: String| Err(NetError::InvalidName { name: name.to_owned(), reason });
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return invalid(format!("must be 1 to {MAX_NAME_LEN} characters long, is {}", name.len()));
    }
    if let Some(bad) = name.chars().find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')) {
        return invalid(format!("contains {bad:?}; allowed are [a-z0-9-]"));
    }
    if name.ends_with('-') {
        return invalid("must not end with '-' (not a valid DNS label)".to_owned());
    }
    Ok(())
}

/// The per-node name `N.R.node.meridian` of node `node` in region `region`.
pub fn node_name(region: &str, node: &str) -> Result<String, NetError> {
    validate_name(region)?;
    validate_name(node)?;
    Ok(format!("{node}.{region}.{NODE_SUFFIX}"))
}

/// The region name `R.region.meridian`: what intra-region peers of region `region` must be
/// valid for (their `expected_peer`).
pub fn region_name(region: &str) -> Result<String, NetError> {
    validate_name(region)?;
    Ok(format!("{region}.{REGION_SUFFIX}"))
}

/// The WAN name `R.wan.meridian` of region `region`: what other regions check when they
/// connect to it.
pub fn wan_name(region: &str) -> Result<String, NetError> {
    validate_name(region)?;
    Ok(format!("{region}.{WAN_SUFFIX}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_scheme() {
        assert_eq!(node_name("us-east", "n1").unwrap(), "n1.us-east.node.meridian");
        assert_eq!(region_name("us-east").unwrap(), "us-east.region.meridian");
        assert_eq!(wan_name("us-east").unwrap(), "us-east.wan.meridian");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "Upper", "a.b", "a_b", "trailing-", "nöde", &"a".repeat(64)] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_name", "{bad:?}");
        }
        validate_name(&"a".repeat(63)).unwrap();
        validate_name("-leading-is-a-valid-label").unwrap();
        assert!(node_name("ok", "Bad").is_err());
    }
}
