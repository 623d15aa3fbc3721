//! What the daemon's parts share: the live config, the queue, the run
//! records, the remembered deliveries, the executor's handle, the run
//! lifecycle and its events. `daemon.rs` builds it once; the HTTP server,
//! the control socket and the signal handlers each hold an `Arc` of it, so
//! none of them reaches another's parts through a third.
//!
//! The config lives here once, as a `watch` of `Arc<Config>`: a reload
//! ([`Shared::set_config`]) swaps it in one step, and every part reads the
//! same current version. The executor follows it through
//! [`Shared::watch_config`]'s receiver, which it gets before this exists.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::config::Config;
use crate::deliveries::Deliveries;
use crate::events::Bus;
use crate::executor::Handle;
use crate::history::History;
use crate::lifecycle::Lifecycle;
use crate::queue::Queue;

/// The daemon's shared state.
pub(crate) struct Shared {
    /// The config in force; replaced whole on reload, so whoever holds an
    /// `Arc` of it sees one consistent version from start to end.
    config: watch::Sender<Arc<Config>>,
    /// The durable queue requests go to before they are acknowledged.
    pub(crate) queue: Arc<Queue>,
    /// The run records.
    pub(crate) history: Arc<History>,
    /// Delivery ids already accepted.
    pub(crate) deliveries: Arc<Deliveries>,
    /// To tell the executor a request is queued, and ask for status.
    pub(crate) executor: Handle,
    /// Announces queued requests; carries out runs (through the executor).
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// The run events, for whatever reacts to runs.
    pub(crate) events: Bus,
    /// Set once shutdown began: new deliveries and deploys are refused.
    stopping: AtomicBool,
}

impl Shared {
    /// Shares the parts; `config` is the sender whose receivers the
    /// executor already follows.
    pub(crate) fn new(
        config: watch::Sender<Arc<Config>>,
        queue: Arc<Queue>,
        history: Arc<History>,
        deliveries: Arc<Deliveries>,
        executor: Handle,
        lifecycle: Arc<Lifecycle>,
        events: Bus,
    ) -> Shared {
        Shared {
            config,
            queue,
            history,
            deliveries,
            executor,
            lifecycle,
            events,
            stopping: AtomicBool::new(false),
        }
    }

    /// The config now in force.
    pub(crate) fn config(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    /// Puts `config` in force for every part at once, from now on.
    pub(crate) fn set_config(&self, config: Arc<Config>) {
        self.config.send_replace(config);
    }

    /// Says shutdown began.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown began.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}
