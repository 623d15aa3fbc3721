//! deployd: an auto-deploy daemon for git pushes.
//!
//! The folders follow a push through the daemon:
//!
//! - [`http`]: the listener (shared with the status page) and the webhook
//!   route, which verifies and answers;
//! - [`forge`]: one file per forge, reading a delivery into the
//!   forge-neutral [`forge::push::Push`] or a CI result, and speaking the
//!   forge's status API;
//! - [`intake`]: what decides whether a push becomes a request: the
//!   filters, the CI gate;
//! - [`store`]: what is kept on disk: the durable queue, run records,
//!   remembered deliveries, pushes waiting for CI, a run's outputs;
//! - [`run`]: the executor (which run starts when) and the one path a run
//!   takes — lock, record, script, health, outcome — publishing run events;
//! - [`notify`]: the durable outbox and its sinks;
//! - [`web`]: the status page and metrics.
//!
//! Around them: [`config`] (the file, checked), [`state`] (what the
//! daemon's parts share: the one live config), [`daemon`] (wiring, the
//! control socket) and [`cli`] (the commands, which talk to the daemon or
//! read what is stored).
//!
//! The crate's interface is what the binary, the benchmarks and the fuzz
//! targets use; every other module is `pub(crate)`.

pub mod cli;
pub mod config;
pub(crate) mod daemon;
pub(crate) mod fault;
pub mod forge;
pub(crate) mod fsutil;
pub(crate) mod http;
pub(crate) mod http_client;
pub mod intake;
pub mod logging;
pub(crate) mod notify;
pub(crate) mod run;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod systemd;
pub(crate) mod text;
pub(crate) mod web;
