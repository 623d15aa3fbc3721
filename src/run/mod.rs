//! Running deploys. The [`executor`] decides which run starts when (one at
//! a time per project, `parallel` across them, stop) and hands runs a
//! previous daemon left unfinished to [`recovery`];
//! [`lifecycle`] is the one path a run takes, for the daemon and a direct
//! `deployd deploy` alike: the state lock and the project lock ([`lock`]),
//! the record, the script ([`runner`]: a process group, its environment,
//! its log, its timeout), the health check ([`health`]) and the outcome.
//! Every step is published as a run event ([`events`]). A `deployd deploy`
//! that finds no daemon runs here itself ([`direct`]), and is asked to stop
//! by a `deployd cancel` through a file ([`cancel`]).

pub(crate) mod cancel;
pub(crate) mod direct;
pub(crate) mod events;
pub(crate) mod executor;
pub(crate) mod fleet;
pub(crate) mod health;
pub(crate) mod lifecycle;
pub(crate) mod lock;
pub(crate) mod recovery;
pub(crate) mod runner;
pub(crate) mod ssh;
