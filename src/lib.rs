//! deployd: an auto-deploy daemon for git pushes.
//!
//! A forge's webhook comes in ([`server`]), is verified and read into a
//! forge-neutral [`push`] by its forge's file in [`forge`], filtered
//! ([`filter`]), recorded on disk ([`queue`]) and answered; the
//! [`executor`] runs the project's script ([`runner`]) one run at a time
//! under a lock ([`lock`]) and records what happened ([`history`]). The CLI ([`commands`]) talks to the daemon over
//! the [`control`] socket.

pub mod ci;
pub mod cli;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod deliveries;
pub(crate) mod events;
pub mod executor;
pub mod fault;
pub mod filter;
pub mod forge;
pub mod fsutil;
pub mod gate;
mod gatekeeper;
pub mod history;
pub(crate) mod lifecycle;
pub mod lock;
pub mod logging;
pub mod push;
pub mod queue;
pub mod runner;
pub mod server;
pub(crate) mod state;
pub mod systemd;
