//! The integration tests, one binary: each module starts the real
//! `deployd` binary (built by cargo beside this test) on 127.0.0.1:0 and
//! talks to it as a forge, a user or systemd would. [`common`] has the
//! helpers: temporary directories, configs, a daemon and its address,
//! signed deliveries, and bounded waits.
#![allow(clippy::unwrap_used)]

mod common;

mod cancel;
mod catchup;
mod ci_gate;
mod cli;
mod config;
mod daemon;
mod direct;
mod events;
mod fleet;
mod fleet_web;
mod forges;
mod git;
mod hangup;
mod hostile;
mod http;
mod journal;
mod memory;
mod notify;
mod properties;
mod recovery;
mod reload;
mod rollback;
mod run_records;
mod runs;
mod security;
mod shutdown;
mod smoke;
mod systemd;
mod web;
