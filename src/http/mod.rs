//! The HTTP side. [`listener`] is the accept loop, limits and deadlines
//! that the webhook listener and the status page share; [`hooks`] is the
//! webhook route, which verifies, judges and durably queues, and never
//! waits on a deploy; [`allow`] is the source allowlist.

pub(crate) mod allow;
pub(crate) mod hooks;
pub(crate) mod listener;

pub(crate) use hooks::{App, run};
pub(crate) use listener::{Limits, Quiet, serve};
