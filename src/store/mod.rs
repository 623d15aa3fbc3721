//! What the daemon keeps on disk, each written whole and fsynced before it
//! counts: the durable [`queue`] of pending requests, the run records of
//! [`history`], the remembered [`deliveries`] (ids and body MACs), the
//! pushes that wait for their CI ([`gates`]), a script's [`outputs`], and
//! the last catch-up with the forge ([`reconcile`]). Read back without a
//! daemon: a project's [`snapshot`], a growing log ([`log_tail`]).

pub(crate) mod deliveries;
pub(crate) mod gates;
pub(crate) mod history;
pub(crate) mod hosts;
pub(crate) mod log_tail;
pub(crate) mod outputs;
pub(crate) mod queue;
pub(crate) mod reconcile;
pub(crate) mod snapshot;
