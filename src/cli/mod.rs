//! Subcommand implementations.

pub mod access;
pub mod bench;
pub mod certs;
pub mod config_check;
pub mod ctl;
pub mod dev;
pub mod drill;
pub mod lag;
pub mod logging;
pub mod peers;
pub mod restore;
pub mod server;
pub mod token;
