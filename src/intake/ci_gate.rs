//! What the daemon does with the CI gate's answers ([`crate::store::gates`]): a
//! gated push or a CI event goes through the project's gate, and what the
//! gate decides is carried out here — a green gate queues the push, a red
//! one or a time-out writes its `ci_failed`/`ci_timeout` record through the
//! run lifecycle (so it is a run event like any run's end) — before the
//! HTTP side answers. [`expiry`] is the one timer: armed for the earliest
//! deadline of a waiting push, and not at all while nothing waits.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use crate::daemon::shutdown::Shutdown;
use hyper::StatusCode;
use serde_json::{Value, json};

use crate::config::Project;
use crate::forge::ci::{CiNote, CiRun};
use crate::forge::push::Push;
use crate::state::Shared;
use crate::store::gates::{self, Failure, Gate, Outcome, Policy};
use crate::store::history::Status;
use crate::store::queue::{DeployRequest, Trigger};

/// The gate's rules for `project`, from its config.
pub(crate) fn policy(project: &Project) -> Policy {
    Policy {
        required: project.after_ci.clone(),
        branch: {
            // The push filter's branch rule (`branch`/`branches` globs, see
            // `filter.rs`), for CI events.
            let branches = project.branches.clone();
            Arc::new(move |b: &str| !b.is_empty() && branches.matches(b))
        },
        repository: project.repository.clone(),
        timeout: project.ci_timeout,
    }
}

/// An answer for the hook: status and JSON body.
pub(crate) type Answer = (StatusCode, Value);

fn failed_note(f: &Failure) -> CiNote {
    CiNote {
        workflow: Some(f.workflow.clone()),
        conclusion: Some(f.conclusion.clone()),
        ..CiNote::default()
    }
}

/// Writes the `ci_failed` record of `req`.
async fn record_failure(
    shared: &Shared,
    project: &Project,
    req: DeployRequest,
    f: &Failure,
) -> io::Result<()> {
    let req = DeployRequest {
        ci: Some(failed_note(f)),
        ..req
    };
    let why = format!(
        "required workflow {} concluded {}",
        f.workflow, f.conclusion
    );
    record_not_deployed(shared, project, req, Status::CiFailed, why).await
}

/// Writes the record of `req`, which CI kept from being deployed
/// (`status` says how), and says so in the journal.
async fn record_not_deployed(
    shared: &Shared,
    project: &Project,
    req: DeployRequest,
    status: Status,
    why: String,
) -> io::Result<()> {
    let sha = req.push.short_sha().to_string();
    let run = shared
        .lifecycle
        .not_run(project, req, status, why.clone())
        .await?;
    tracing::warn!(
        "{}: run {} {status}: {sha}: {why}; not deployed",
        project.name,
        run.id
    );
    Ok(())
}

/// Whether `push` goes through `project`'s CI gate before it may deploy:
/// with `after_ci`, unless it is a tag. A tag is a decision to release: it
/// deploys at once, gate or no gate (CI runs are reported for branches).
pub(crate) fn gates(project: &Project, push: &Push) -> bool {
    !project.after_ci.is_empty() && push.tag().is_none()
}

/// A push to the deploy branch of a project with `after_ci`: it waits in the
/// gate, or goes at once if its CI already passed (results before the
/// push), or is recorded `ci_failed` if its CI already failed.
pub(crate) async fn push(
    shared: &Shared,
    project: &Project,
    req: DeployRequest,
) -> io::Result<Answer> {
    let policy = policy(project);
    let sha = req.push.after.clone();
    let base = json!({
        "project": project.name,
        "ref": req.push.git_ref,
        "sha": sha,
        "delivery": req.push.delivery,
    });
    shared
        .gates
        .change_then(
            &project.name,
            |g| {
                // A waiting push this one replaces stays known as accepted
                // (a redelivery of it is a duplicate), as the queue does.
                let mut req = req;
                if let Some(w) = g.waiting().filter(|w| w.sha != sha) {
                    req.absorb(w.request.clone());
                }
                g.push(&sha, req, &policy, SystemTime::now())
            },
            async |(outcome, replaced)| {
                if let Some(old) = replaced {
                    tracing::info!(
                        "{}: push of {} superseded while it waited for CI; it will not deploy",
                        project.name,
                        old.push.short_sha()
                    );
                }
                answer(shared, project, outcome, base, None).await
            },
        )
        .await
}

/// A CI event for a project with `after_ci`, whose delivery id is `id`.
pub(crate) async fn ci(
    shared: &Shared,
    project: &Project,
    run: CiRun,
    id: String,
) -> io::Result<Answer> {
    let policy = policy(project);
    let base = json!({
        "project": project.name,
        "sha": run.sha,
        "workflow": run.workflow,
        "conclusion": run.conclusion,
        "delivery": id,
    });
    shared
        .gates
        .change_then(
            &project.name,
            |g| g.ci(&run, &policy, SystemTime::now()),
            async |outcome| answer(shared, project, outcome, base, Some((&run, &id))).await,
        )
        .await
}

/// The request a green CI event deploys in a project that receives no
/// pushes: the branch, the commit, who caused the run.
fn request_from_ci(shared: &Shared, project: &Project, run: &CiRun, id: &str) -> DeployRequest {
    DeployRequest::new(
        shared.queue.next_seq(),
        &project.name,
        Trigger::Webhook,
        Push {
            git_ref: format!("refs/heads/{}", run.branch),
            after: run.sha.clone(),
            repository: run.repository.clone(),
            pusher: run.actor.clone(),
            delivery: id.to_string(),
            ..Push::default()
        },
    )
}

/// Queues `req`, whose required CI passed; a hook answers it 202.
async fn queue_passed(
    shared: &Shared,
    project: &Project,
    req: DeployRequest,
) -> io::Result<StatusCode> {
    tracing::info!(
        "{}: CI passed on {}; queued",
        project.name,
        req.push.short_sha()
    );
    shared.enqueue(req).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Carries out the gate's `outcome` and says how to answer it.
async fn answer(
    shared: &Shared,
    project: &Project,
    outcome: Outcome<DeployRequest>,
    mut body: Value,
    ci: Option<(&CiRun, &str)>,
) -> io::Result<Answer> {
    let mut set = |status: &str, extra: Value| {
        body["status"] = status.into();
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
    };
    let code = match outcome {
        Outcome::Waiting(missing) => {
            set("waiting", json!({ "waiting_for": missing }));
            // A push that starts waiting is accepted (202); a CI event
            // that leaves the gate waiting changed nothing to act on (200).
            if ci.is_none() {
                tracing::info!(
                    "{}: push of {} waits for CI: {}",
                    project.name,
                    crate::text::short_sha(body["sha"].as_str().unwrap_or_default()),
                    missing.join(", ")
                );
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            }
        }
        Outcome::Ready(req) => {
            // For a CI event, which push it deploys.
            let extra = if ci.is_some() {
                json!({"ref": req.push.git_ref, "push_delivery": req.push.delivery})
            } else {
                json!({})
            };
            set("queued", extra);
            queue_passed(shared, project, req).await?
        }
        Outcome::ReadyFromCi => {
            let Some((run, id)) = ci else {
                unreachable!("only a CI event is ready from CI")
            };
            let req = request_from_ci(shared, project, run, id);
            set("queued", json!({"ref": req.push.git_ref}));
            queue_passed(shared, project, req).await?
        }
        Outcome::Failed(req, f) => {
            set("ci_failed", json!({ "ci": failed_note(&f) }));
            record_failure(shared, project, req, &f).await?;
            StatusCode::OK
        }
        Outcome::FailedFromCi(f) => {
            let Some((run, id)) = ci else {
                unreachable!("only a CI event fails from CI")
            };
            let req = request_from_ci(shared, project, run, id);
            set("ci_failed", json!({ "ci": failed_note(&f) }));
            record_failure(shared, project, req, &f).await?;
            StatusCode::OK
        }
        Outcome::Duplicate => {
            set("duplicate", json!({}));
            StatusCode::OK
        }
        Outcome::Ignored(reason) => {
            set("ignored", json!({ "reason": reason.to_string() }));
            StatusCode::OK
        }
    };
    Ok((code, body))
}

/// `deployd deploy PROJECT --sha SHA` through the daemon: if the push that
/// waits in `project`'s gate is of that commit (or starts with `sha`), it
/// leaves the gate and is returned, to be deployed now as a manual run that
/// says it went past its CI.
pub(crate) async fn bypass(
    shared: &Shared,
    project: &Project,
    sha: &str,
) -> io::Result<Option<DeployRequest>> {
    if project.after_ci.is_empty() {
        return Ok(None);
    }
    let policy = policy(project);
    shared
        .gates
        .change(&project.name, |g| take_past_ci(g, &policy, sha))
        .await
}

/// The same, for a `deployd deploy --sha` that runs the script itself (no
/// daemon answers, so none holds the gate): read, change and write the
/// gate file. Blocking.
pub(crate) fn bypass_on_disk(
    state_dir: &Path,
    project: &Project,
    sha: &str,
) -> io::Result<Option<DeployRequest>> {
    if project.after_ci.is_empty() {
        return Ok(None);
    }
    let mut g: Gate<DeployRequest> = gates::load(state_dir, &project.name)?;
    let found = take_past_ci(&mut g, &policy(project), sha);
    if found.is_some() {
        gates::save(state_dir, &project.name, &g)?;
    }
    Ok(found)
}

/// Takes the waiting push of `sha` out of `g`, noting what it did not wait
/// for.
fn take_past_ci(g: &mut Gate<DeployRequest>, policy: &Policy, sha: &str) -> Option<DeployRequest> {
    let pending: Vec<String> = g
        .states(policy)
        .into_iter()
        .filter(|s| s.state != "passed")
        .map(|s| s.workflow)
        .collect();
    g.bypass(sha).map(|req| DeployRequest {
        ci: Some(CiNote {
            bypassed: true,
            pending,
            ..CiNote::default()
        }),
        ..req
    })
}

/// Drops the pushes that waited `ci_timeout`, each with its `ci_timeout`
/// record. It sleeps until the earliest deadline of a waiting push, and
/// while nothing waits, until a gate changes: an idle daemon never wakes
/// for it. Runs until the daemon's shutdown begins.
pub(crate) async fn expiry(shared: Arc<Shared>, mut stop: Shutdown) {
    loop {
        let config = shared.config();
        let mut earliest: Option<SystemTime> = None;
        let mut failed = false;
        for p in config.projects.values().filter(|p| !p.after_ci.is_empty()) {
            let now = SystemTime::now();
            let policy = policy(p);
            let expired = shared
                .gates
                .change_then(
                    &p.name,
                    |g| g.expire(&policy, now),
                    async |gone| match gone {
                        Some((req, pending)) => {
                            let why = format!(
                                "waited {} for CI; still pending: {}",
                                humantime::format_duration(p.ci_timeout),
                                pending.join(", ")
                            );
                            let req = DeployRequest {
                                ci: Some(CiNote {
                                    pending,
                                    ..CiNote::default()
                                }),
                                ..req
                            };
                            record_not_deployed(&shared, p, req, Status::CiTimeout, why).await
                        }
                        None => Ok(()),
                    },
                )
                .await;
            if let Err(e) = expired {
                failed = true;
                tracing::error!(
                    "{}: cannot record a push that timed out waiting for CI: {e}",
                    p.name
                );
            }
            if let Ok(g) = shared.gates.get(&p.name).await
                && let Some(d) = g.deadline(&policy)
            {
                earliest = Some(earliest.map_or(d, |e| e.min(d)));
            }
        }
        let sleep = async {
            match earliest {
                Some(d) => {
                    let mut wait = d.duration_since(SystemTime::now()).unwrap_or_default();
                    if failed {
                        // A record that could not be written is retried a
                        // second later, not in a tight loop.
                        wait = wait.max(std::time::Duration::from_secs(1));
                    }
                    tokio::time::sleep(wait).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = shared.gates.changed() => {}
            () = stop.recv() => return,
        }
    }
}
