//! Shared harness of the integration tests: local clusters of real `meridian server`
//! processes on loopback, with development certificates, OS-chosen ports and temp dirs.
#![allow(dead_code)]

pub mod multi;
pub mod procs;
pub mod scenario;
pub mod sim;
