//! Numeric bounds: the one shape of "out of range" error every section uses.

use std::fmt::Display;
use std::ops::RangeInclusive;

use crate::error::ConfigError;

/// Checks `value` lies in `range`; the error reads `field: value is outside start..=end`.
/// A NaN is outside every range.
pub(crate) fn check_range<T: PartialOrd + Display>(
    field: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, format!("{value} is outside {}..={}", range.start(), range.end())))
    }
}

/// Checks `value >= min`; the error reads `field: value is below the minimum min`.
pub(crate) fn check_at_least<T: PartialOrd + Display>(field: &str, value: T, min: T) -> Result<(), ConfigError> {
    if value >= min {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, format!("{value} is below the minimum {min}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_field_and_bounds() {
        let err = check_range("cluster.replication_factor", 0u32, 1..=9).unwrap_err();
        assert_eq!(err.to_string(), "cluster.replication_factor: 0 is outside 1..=9");
        assert!(check_range("f", f64::NAN, 1.0..=2.0).is_err());
        assert!(check_range("f", 9u32, 1..=9).is_ok());
    }
}
