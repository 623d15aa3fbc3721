//! The daemon's shutdown, in one type that every task it starts observes
//! and holds until it ends, after mini-redis's pattern: a signal that every
//! task can await ([`Shutdown::recv`]) or ask about
//! ([`Shutdown::is_shutdown`]), and a completion channel of which every
//! task holds a sender, so that [`Tasks::join`] returns once the last one
//! is gone: every task ended, none dropped mid-way by the runtime's end.
//!
//! A task that must finish its work rather than stop early at the signal
//! (an accepted push being written) holds a [`Guard`] alone. A task that
//! starts tasks of its own hands each a clone of its [`Shutdown`] (or a
//! [`Guard`]), so they are joined with it.
//!
//! The daemon stops in two phases, each a [`Tasks`]: first what takes in
//! and carries out work (listeners, signals, catch-up, the CI gate's
//! timer, the executor), then, once every run ended, what reports on runs
//! (the outbox, the control socket's streams, the run counts, systemd's
//! watchdog): those must see the runs' last events.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// One task's view of the shutdown: the signal, and its part of the
/// completion channel (dropped with it).
#[derive(Clone)]
pub(crate) struct Shutdown {
    /// Turns true once; a `watch` rather than mini-redis's broadcast, so a
    /// task that subscribes late still sees a shutdown already begun.
    notify: watch::Receiver<bool>,
    /// Held, never sent on: [`Tasks::join`] waits for every clone to drop.
    done: Guard,
}

/// Keeps [`Tasks::join`] waiting while it is alive: held by a task that
/// must run to its end, whatever the signal says.
#[derive(Clone)]
pub(crate) struct Guard(#[allow(dead_code)] mpsc::Sender<()>);

/// Makes a [`Guard`] while something of the phase still runs, and none
/// after: held by what outlives its tasks (the webhook route's shared
/// state, kept alive by connections past the listener's end) without
/// keeping [`Tasks::join`] waiting itself.
#[derive(Clone)]
pub(crate) struct Guards(mpsc::WeakSender<()>);

impl Guards {
    /// A guard, unless every task of the phase already ended.
    pub(crate) fn guard(&self) -> Option<Guard> {
        self.0.upgrade().map(Guard)
    }
}

impl Shutdown {
    /// Whether shutdown began.
    pub(crate) fn is_shutdown(&self) -> bool {
        *self.notify.borrow()
    }

    /// Waits until shutdown began (at once if it did already).
    pub(crate) async fn recv(&mut self) {
        // An error means the sender is gone: nothing can begin a shutdown
        // any more, and nothing will go on either, so it counts as one.
        let _ = self.notify.wait_for(|s| *s).await;
    }

    /// The signal alone, for parts that follow a plain `watch` (the
    /// status page's streams, the run counts); the task that runs them
    /// holds this [`Shutdown`] meanwhile.
    pub(crate) fn signal(&self) -> watch::Receiver<bool> {
        self.notify.clone()
    }

    /// A guard for a task that must finish rather than observe.
    pub(crate) fn guard(&self) -> Guard {
        self.done.clone()
    }

    /// Guards for tasks started later by what must not itself be waited
    /// for (see [`Guards`]).
    pub(crate) fn guards(&self) -> Guards {
        Guards(self.done.0.downgrade())
    }
}

/// One phase of the shutdown: begins it, and joins its tasks.
pub(crate) struct Tasks {
    notify: watch::Sender<bool>,
    /// Given to each task; dropped by the first join, so only the tasks'
    /// clones are left.
    done_tx: Option<mpsc::Sender<()>>,
    /// Closed once every sender is gone.
    done_rx: mpsc::Receiver<()>,
}

impl Default for Tasks {
    fn default() -> Tasks {
        Tasks::new()
    }
}

impl Tasks {
    /// A phase not begun, with no task yet.
    pub(crate) fn new() -> Tasks {
        let (done_tx, done_rx) = mpsc::channel(1);
        Tasks {
            notify: watch::channel(false).0,
            done_tx: Some(done_tx),
            done_rx,
        }
    }

    /// The shutdown for one more task of this phase. Before the first
    /// join: a task started later is not waited for.
    pub(crate) fn shutdown(&self) -> Shutdown {
        let done = match &self.done_tx {
            Some(tx) => tx.clone(),
            // Joined already: a sender of a channel nobody waits on.
            None => mpsc::channel(1).0,
        };
        Shutdown {
            notify: self.notify.subscribe(),
            done: Guard(done),
        }
    }

    /// What begins the phase, for a task that decides when (the signals).
    pub(crate) fn trigger(&self) -> Trigger {
        Trigger(self.notify.clone())
    }

    /// Begins the phase: every task's [`Shutdown::recv`] returns.
    pub(crate) fn begin(&self) {
        self.notify.send_replace(true);
    }

    /// Waits until every task of the phase ended, at most `within`;
    /// `false` when some still run then (the caller says so, and may wait
    /// again).
    pub(crate) async fn join(&mut self, within: Duration) -> bool {
        tokio::time::timeout(within, self.wait()).await.is_ok()
    }

    /// Waits until every task of the phase ended, however long it takes.
    pub(crate) async fn wait(&mut self) {
        self.done_tx = None;
        // Nothing is ever sent: `None` once the last sender dropped.
        while self.done_rx.recv().await.is_some() {}
    }
}

/// Begins a phase of the shutdown ([`Tasks::begin`]) from a task.
#[derive(Clone)]
pub(crate) struct Trigger(watch::Sender<bool>);

impl Trigger {
    /// Begins the phase.
    pub(crate) fn begin(&self) {
        self.0.send_replace(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_waits_for_every_task_and_guard() {
        let tasks = Tasks::new();
        let mut sd = tasks.shutdown();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let observer = {
            let tx = tx.clone();
            tokio::spawn(async move {
                sd.recv().await;
                assert!(sd.is_shutdown());
                tx.send("observer").unwrap();
            })
        };
        let guard = tasks.shutdown().guard();
        let finisher = tokio::spawn(async move {
            let _guard = guard;
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send("finisher").unwrap();
        });
        tasks.begin();
        let mut tasks = tasks;
        assert!(tasks.join(Duration::from_secs(5)).await);
        // Both ended before join returned: their words are there already.
        let mut seen = vec![rx.try_recv().unwrap(), rx.try_recv().unwrap()];
        seen.sort();
        assert_eq!(seen, ["finisher", "observer"]);
        observer.await.unwrap();
        finisher.await.unwrap();
    }

    #[tokio::test]
    async fn join_gives_up_after_its_bound() {
        let mut tasks = Tasks::new();
        let held = tasks.shutdown();
        tasks.begin();
        assert!(!tasks.join(Duration::from_millis(50)).await);
        drop(held);
        // And again, now that it ended.
        assert!(tasks.join(Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn weak_guards_do_not_hold_the_join_and_end_with_it() {
        let mut tasks = Tasks::new();
        let sd = tasks.shutdown();
        let guards = sd.guards();
        assert!(guards.guard().is_some(), "a task still runs");
        drop(sd);
        assert!(tasks.join(Duration::from_secs(1)).await);
        assert!(guards.guard().is_none(), "every task ended");
    }

    #[tokio::test]
    async fn a_late_subscriber_sees_a_begun_shutdown() {
        let tasks = Tasks::new();
        tasks.trigger().begin();
        let mut late = tasks.shutdown();
        assert!(late.is_shutdown());
        late.recv().await;
    }
}
