//! Recovery at start: what a daemon does about runs a previous daemon did
//! not see finish. Once every process of an old run has exited (its run
//! lock is free) it is recorded `interrupted` and its request queued again
//! as `recovery` — unless a newer request is pending, or a later run
//! carried out a newer intent ([`recovery_plan`], also used by `deployd
//! status` and `deployd logs` to tell what the next daemon will do).
//!
//! The [`crate::run::executor`] finds the unfinished runs and marks their
//! projects as recovering; this module carries out each project's recovery.

use crate::fsutil;
use crate::run::executor::{RunCtx, stopped};
use crate::run::lifecycle::blocking;
use crate::run::lock::RunLock;
use crate::store::history::{Run, Status};
use crate::store::queue::{DeployRequest, Trigger};
/// What a daemon does about an interrupted run (docs/operations.md,
/// *Guarantees and how they are kept*).
/// One decision, used by recovery itself and by `deployd status` and
/// `deployd logs` when they tell what the next daemon will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Its request is queued again, with trigger `recovery`.
    RunAgain,
    /// A newer request is pending: it runs instead.
    Superseded,
    /// A later run (say, a `deployd deploy` made while no daemon ran)
    /// carried out a newer intent; running the old request again could roll
    /// the deploy back.
    LaterRun(Box<Run>),
}

/// Decides about `interrupted`, the newest interrupted run of its project,
/// given the project's `latest` run and its `pending` request.
pub fn recovery_plan(
    interrupted: &Run,
    latest: Option<&Run>,
    pending: Option<&DeployRequest>,
) -> Recovery {
    match latest {
        Some(later) if later.id > interrupted.id => Recovery::LaterRun(Box::new(later.clone())),
        _ if pending.is_some_and(|p| p.seq > interrupted.request.seq) => Recovery::Superseded,
        _ => Recovery::RunAgain,
    }
}

impl Recovery {
    /// What happens to run `id`, as the end of a sentence about it.
    pub fn describe(&self) -> String {
        match self {
            Recovery::RunAgain => "it runs again when deployd starts".into(),
            Recovery::Superseded => {
                "it is not run again: the newer pending request runs instead when deployd starts"
                    .into()
            }
            Recovery::LaterRun(r) => format!(
                "it is not run again: run {} ({}) came after it",
                r.id, r.request.trigger
            ),
        }
    }
}

/// Queues an interrupted run again as `recovery`, unless a newer request is
/// already pending (it supersedes the old commit).
pub(super) async fn requeue(run: &Run, shared: &RunCtx) {
    let queue = shared.queue.clone();
    let pending = queue.pending(&run.request.project);
    if recovery_plan(run, None, pending.as_ref()) == Recovery::Superseded {
        tracing::info!(
            "{}: interrupted run {} superseded by a newer pending push",
            run.request.project,
            run.id
        );
        return;
    }
    let req = run.request(queue.next_seq(), Trigger::Recovery);
    match shared.enqueue(req).await {
        Ok(()) => {
            tracing::info!(
                "{}: run {} queued again for recovery",
                run.project(),
                run.id
            )
        }
        Err(e) => tracing::error!(
            "{}: cannot queue run {} again: {e}",
            run.request.project,
            run.id
        ),
    }
}

/// Recovers project `name`'s unfinished `runs` once their processes are
/// gone (`lock_path` free): records them `interrupted` and queues the
/// newest again, as [`recovery_plan`] decides.
pub(super) async fn recover_one(
    name: &str,
    runs: Vec<Run>,
    lock_path: &std::path::Path,
    shared: &RunCtx,
) {
    let ids: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
    let mut waited = false;
    let lock = match RunLock::acquire(
        lock_path,
        || {
            waited = true;
            tracing::warn!(
                "{name}: run {} is still going without a daemon; waiting for its processes to exit",
                ids.join(", ")
            )
        },
        stopped(shared.stop.clone()),
    )
    .await
    {
        Ok(Some(l)) => l,
        Ok(None) => return,
        Err(e) => {
            tracing::error!("{name}: cannot take the run lock: {e}");
            return;
        }
    };
    // Seen within one lock poll of the last process exiting.
    let released_at = fsutil::now_rfc3339();
    // Re-read the records now that the old processes are gone: a run that
    // was going on under a manual `deployd deploy` has finished meanwhile
    // and recorded its own result.
    let history = shared.lifecycle.history.clone();
    let project = name.to_string();
    let (runs, latest) = blocking(move || {
        let runs: Vec<Run> = runs
            .into_iter()
            .filter_map(|r| match history.get(r.project(), r.id) {
                Ok(Some(now)) if now.status == Status::Running => Some(now),
                Ok(_) => None,
                Err(_) => Some(r),
            })
            .collect();
        (runs, history.latest(&project).ok().flatten())
    })
    .await;
    let Some(newest) = runs.last().cloned() else {
        return;
    };
    // A run started after the interrupted one (a manual `deployd deploy`
    // while no daemon ran) carried out a newer intent: running the old
    // request again could roll the deploy back.
    let later = latest.filter(|r| r.id > newest.id);
    for run in runs {
        // When its processes were last known alive: when this daemon saw the
        // lock they held released, if they held it (the newest run, with no
        // later one that could have held it instead); else the last write
        // to its log (they were gone before this daemon started, and it
        // cannot know how much longer they went on silently).
        let last_alive = if waited && run.id == newest.id && later.is_none() {
            released_at.clone()
        } else {
            let r = run.clone();
            blocking(move || last_write(&r))
                .await
                .unwrap_or_else(fsutil::now_rfc3339)
        };
        let id = run.id;
        match shared.lifecycle.interrupted(run, last_alive).await {
            Ok(_) => tracing::warn!("{name}: run {id} was interrupted"),
            Err(e) => tracing::error!("{name}: cannot record run {id} as interrupted: {e}"),
        }
    }
    match recovery_plan(&newest, later.as_ref(), shared.queue.pending(name).as_ref()) {
        Recovery::LaterRun(r) => tracing::info!(
            "{name}: not running interrupted run {} again: run {} ({}) came after it",
            newest.id,
            r.id,
            r.request.trigger
        ),
        _ => requeue(&newest, shared).await,
    }
    drop(lock);
}

/// When a run's log was last written, as RFC 3339 (not before its start).
/// Blocking.
fn last_write(run: &Run) -> Option<String> {
    let modified = std::fs::metadata(&run.log).ok()?.modified().ok()?;
    let started = humantime::parse_rfc3339(&run.started_at).ok()?;
    Some(fsutil::rfc3339(modified.max(started)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: u64, request_seq: u64, trigger: Trigger) -> Run {
        let push = crate::forge::push::Push {
            git_ref: "refs/heads/main".into(),
            ..Default::default()
        };
        Run {
            id,
            request: DeployRequest::new(request_seq, "app", trigger, push),
            status: Status::Running,
            exit_code: None,
            signal: None,
            started_at: String::new(),
            finished_at: None,
            log: format!("{id}.log").into(),
            pid: None,
            outputs: Default::default(),
            hosts: Vec::new(),
        }
    }

    #[test]
    fn recovery_plan_prefers_what_came_later() {
        let cut = run(5, 100, Trigger::Webhook);
        // Alone: run again.
        assert_eq!(recovery_plan(&cut, Some(&cut), None), Recovery::RunAgain);
        // An older pending request (impossible in practice) does not count.
        let old = cut.request(50, Trigger::Webhook);
        assert_eq!(
            recovery_plan(&cut, Some(&cut), Some(&old)),
            Recovery::RunAgain
        );
        // A newer pending request runs instead.
        let newer = cut.request(200, Trigger::Webhook);
        assert_eq!(
            recovery_plan(&cut, Some(&cut), Some(&newer)),
            Recovery::Superseded
        );
        // A later run wins over everything.
        let later = run(6, 150, Trigger::Manual);
        let plan = recovery_plan(&cut, Some(&later), Some(&newer));
        assert_eq!(plan, Recovery::LaterRun(Box::new(later)));
        assert_eq!(
            plan.describe(),
            "it is not run again: run 6 (manual) came after it"
        );
    }
}

#[cfg(test)]
mod requeue_tests {
    use std::sync::Arc;

    use tokio::sync::{mpsc, watch};

    use super::*;
    use crate::run::events::{Bus, Publisher, RunEvent};
    use crate::run::executor::Msg;
    use crate::run::lifecycle::Lifecycle;
    use crate::store::history::History;
    use crate::store::queue::Queue;

    /// An interrupted run queued again goes through the one enqueue: on
    /// disk, announced `Queued` with trigger `recovery`, and the executor
    /// woken (it once was not).
    #[tokio::test]
    async fn a_requeued_run_is_announced_and_wakes_the_executor() {
        let dir = std::env::temp_dir().join(format!("deployd-requeue-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let queue = Arc::new(Queue::open(&dir).unwrap());
        let bus = Bus::new();
        let mut events = bus.subscribe();
        let lifecycle = Arc::new(Lifecycle {
            history: Arc::new(History::new(&dir, &dir.join("logs"))),
            state_dir: dir.clone(),
            events: Publisher::Bus(bus),
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let ctx = RunCtx {
            queue: queue.clone(),
            lifecycle,
            tx,
            stop: watch::channel(false).1,
        };
        let push = crate::forge::push::Push {
            git_ref: "refs/heads/main".into(),
            ..Default::default()
        };
        let cut = Run {
            id: 3,
            request: DeployRequest::new(1, "app", Trigger::Webhook, push),
            status: Status::Interrupted,
            exit_code: None,
            signal: None,
            started_at: String::new(),
            finished_at: None,
            log: dir.join("3.log"),
            pid: None,
            outputs: Default::default(),
            hosts: Vec::new(),
        };
        requeue(&cut, &ctx).await;
        let pending = queue.pending("app").expect("queued again");
        assert_eq!(pending.trigger, Trigger::Recovery);
        match events.try_recv().as_deref() {
            Ok(RunEvent::Queued(r)) => assert_eq!(r.trigger, Trigger::Recovery),
            other => panic!("no Queued event: {other:?}"),
        }
        assert!(
            matches!(rx.try_recv(), Ok(Msg::Queued)),
            "executor not woken"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
