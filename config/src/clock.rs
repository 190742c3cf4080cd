//! The `[clock]` section: bounds on the hybrid logical clock.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The `[clock]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClockConfig {
    /// Largest accepted lead of a remote HLC timestamp over local physical time, in
    /// milliseconds (1..=60000). A timestamp further ahead is rejected and counted. It bounds how
    /// far one node's bad clock can drag every other clock forward.
    pub max_offset_ms: u64,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self { max_offset_ms: 500 }
    }
}

impl ClockConfig {
    /// The largest accepted clock offset as a duration.
    pub fn max_offset(&self) -> Duration {
        Duration::from_millis(self.max_offset_ms)
    }

    /// Checks the bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::bounds::check_range("clock.max_offset_ms", self.max_offset_ms, 1..=60_000)
    }
}
