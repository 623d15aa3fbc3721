//! deployd: an auto-deploy daemon for git pushes.
//!
//! A forge's webhook comes in (`server`), is verified and read into a
//! forge-neutral [`push`] by its forge's file in [`forge`], filtered
//! ([`filter`], with the globs of [`pattern`]), recorded on disk (`queue`)
//! and answered; the `executor` decides when each run starts, and
//! `lifecycle` carries it out — lock
//! (`lock`), record (`history`), script (`runner`), outcome — and publishes
//! its events (`events`), for the daemon and a direct `deployd deploy`
//! alike. The daemon's parts share `state` (the one live config). The CLI
//! ([`commands`]) talks to the daemon over the `control` socket. Each run's
//! events reach the durable `outbox`, which sends notifications (`notify`)
//! and commit statuses over `http_client`; a script's `outputs` are kept
//! in its record. With `[web]`, `web` serves a status page and Prometheus
//! metrics on a listener of its own, fed by the same shared state and run
//! events.
//!
//! The crate's interface is what the binary, the benchmarks and the fuzz
//! targets use; every other module is `pub(crate)`.

pub(crate) mod allow;
pub mod ci;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod control;
pub(crate) mod daemon;
pub(crate) mod deliveries;
pub(crate) mod events;
pub(crate) mod executor;
pub(crate) mod fault;
pub mod filter;
pub mod forge;
pub(crate) mod fsutil;
pub(crate) mod gate;
pub(crate) mod gatekeeper;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod http_client;
pub(crate) mod lifecycle;
pub(crate) mod lock;
pub mod logging;
pub(crate) mod metrics;
pub(crate) mod notify;
pub(crate) mod outbox;
pub(crate) mod outputs;
pub mod pattern;
pub mod push;
pub(crate) mod queue;
pub(crate) mod runner;
pub(crate) mod server;
pub(crate) mod state;
pub(crate) mod systemd;
pub(crate) mod web;
