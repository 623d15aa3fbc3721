//! What the daemon keeps on disk, each written whole and fsynced before it
//! counts: the durable [`queue`] of pending requests, the run records of
//! [`history`], the remembered [`deliveries`] (ids and body MACs), the
//! pushes that wait for their CI ([`gates`]), and a script's [`outputs`].

pub(crate) mod deliveries;
pub(crate) mod gates;
pub(crate) mod history;
pub(crate) mod hosts;
pub(crate) mod outputs;
pub(crate) mod queue;
