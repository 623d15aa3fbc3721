//! GitHub's failed deliveries, redelivered (docs/catch-up.md): GitHub does
//! not deliver a webhook again by itself, so at start deployd lists the
//! recent deliveries of a project's hook (`hook_id` in its `report`) and
//! asks GitHub to make again each one that failed since deployd last
//! looked — unless a later delivery of the same event already succeeded.
//!
//! The calls run on the blocking pool, each under the HTTP client's
//! timeouts, in a task of their own: the webhook path never waits on them.
//! A failure is logged once and changes nothing else. The time of the last
//! look is kept in the state directory ([`crate::store::reconcile`]); the
//! first start with a `hook_id` only records it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::Project;
use crate::forge::{self, HookDelivery, Provider};
use crate::fsutil;
use crate::run::lifecycle::blocking;
use crate::state::Shared;
use crate::store::reconcile;

/// What one project's redelivery needs from its config.
pub(crate) struct Job {
    project: String,
    api_url: String,
    token: String,
    repository: String,
    hook_id: u64,
    /// Whether a failed push is asked for again: not when catch-up
    /// reconciles the project, which deploys the branch's head already (an
    /// older push redelivered after it would replace it in the queue).
    pushes: bool,
}

impl Job {
    /// The redelivery of `p`, if it asks for one: a GitHub project with a
    /// `repository` and a `report` that names its `hook_id`.
    pub(crate) fn of(p: &Project) -> Option<Job> {
        let report = p.report.as_ref()?;
        if p.provider != Provider::Github {
            return None;
        }
        Some(Job {
            project: p.name.clone(),
            api_url: report.api_url.clone(),
            token: report.token.0.clone(),
            repository: p.repository.clone()?,
            hook_id: report.hook_id?,
            pushes: p.reconcile.mode == crate::config::reconcile::Mode::Off,
        })
    }
}

/// Lists the hook's deliveries and asks for each failed one since the last
/// look to be made again; logs what it did.
pub(crate) async fn run(shared: Arc<Shared>, job: Job) {
    let state_dir = shared.config().server.state_dir.clone();
    let started = SystemTime::now();
    let since = {
        let (dir, name) = (state_dir.clone(), job.project.clone());
        blocking(move || reconcile::redelivery_mark(&dir, &name)).await
    };
    let name = job.project.clone();
    let done = blocking(move || redeliver(&job, since.as_deref(), started)).await;
    match done {
        Ok(said) => tracing::info!("{name}: GitHub redelivery: {said}"),
        Err(e) => {
            tracing::warn!("{name}: GitHub redelivery: {e}; nothing redelivered");
            return;
        }
    }
    let at = fsutil::rfc3339(started);
    let who = name.clone();
    let saved = blocking(move || reconcile::save_redelivery_mark(&state_dir, &who, &at)).await;
    if let Err(e) = saved {
        tracing::warn!("{name}: cannot record the time of the redelivery: {e}");
    }
}

/// The blocking half: list, choose, ask. Returns what it did, in words.
fn redeliver(job: &Job, since: Option<&str>, started: SystemTime) -> Result<String, String> {
    let Some(since) = since else {
        return Ok(format!(
            "first look at hook {}: deliveries that fail from now on are redelivered at the \
             next start",
            job.hook_id
        ));
    };
    let since = humantime::parse_rfc3339_weak(since)
        .map_err(|e| format!("the time of the last look ({since:?}) does not read: {e}"))?;
    let listed =
        forge::github_hook_deliveries(&job.api_url, &job.token, &job.repository, job.hook_id)?;
    let chosen = choose(&listed, since, started, job.pushes);
    if chosen.is_empty() {
        return Ok(format!(
            "no failed delivery since {} among the {} listed",
            fsutil::rfc3339(since),
            listed.len()
        ));
    }
    let mut asked = Vec::new();
    let mut failed = Vec::new();
    for d in &chosen {
        match forge::github_redeliver(&job.api_url, &job.token, &job.repository, job.hook_id, d.id)
        {
            Ok(()) => asked.push(format!(
                "{} {} (answered {})",
                d.event,
                d.guid,
                d.status_code
                    .map_or_else(|| "nothing".to_string(), |c| c.to_string())
            )),
            Err(e) => failed.push((d.guid.clone(), e)),
        }
    }
    let mut said = format!("asked for {} of {}", asked.len(), chosen.len());
    if !asked.is_empty() {
        said.push_str(&format!(": {}", asked.join(", ")));
    }
    if let Some((guid, e)) = failed.first() {
        said.push_str(&format!(
            "; {} refused, the first ({guid}): {e}",
            failed.len()
        ));
    }
    Ok(said)
}

/// The deliveries to ask for again, oldest first (so events come in the
/// order they were made): failed (no 2xx answer), delivered between
/// `since` and `until`, of an event no listed delivery succeeded for; one
/// per event, its latest attempt. Of pushes (only with `pushes`), the
/// newest failed one alone, and only if no push was delivered after it:
/// an older push would deploy an older commit.
fn choose(
    listed: &[HookDelivery],
    since: SystemTime,
    until: SystemTime,
    pushes: bool,
) -> Vec<&HookDelivery> {
    let at = |d: &HookDelivery| humantime::parse_rfc3339_weak(&d.delivered_at).ok();
    let succeeded: HashSet<&str> = listed
        .iter()
        .filter(|d| d.delivered())
        .map(|d| d.guid.as_str())
        .collect();
    let last_push = listed
        .iter()
        .filter(|d| d.event == "push" && d.delivered())
        .filter_map(at)
        .max();
    let mut push_taken = !pushes;
    let mut seen = HashSet::new();
    let mut chosen: Vec<&HookDelivery> = listed
        .iter()
        .filter(|d| !d.delivered() && !succeeded.contains(d.guid.as_str()))
        .filter(|d| at(d).is_some_and(|at| at >= since && at <= until))
        // Listed newest first: the first of an event is its latest attempt,
        // the first push the newest.
        .filter(|d| seen.insert(d.guid.as_str()))
        .filter(|d| {
            if d.event != "push" {
                return true;
            }
            let newest = !push_taken && last_push.is_none_or(|l| at(d).is_some_and(|a| a > l));
            push_taken = true;
            newest
        })
        .collect();
    chosen.reverse();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: u64, guid: &str, at: &str, code: Option<u16>) -> HookDelivery {
        HookDelivery {
            event: "workflow_run".into(),
            ..push(id, guid, at, code)
        }
    }

    fn push(id: u64, guid: &str, at: &str, code: Option<u16>) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.into(),
            delivered_at: at.into(),
            redelivery: false,
            status_code: code,
            event: "push".into(),
        }
    }

    fn t(s: &str) -> SystemTime {
        humantime::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn only_failed_events_since_the_last_look_without_a_later_success() {
        // Newest first, as GitHub lists them.
        let listed = [
            d(7, "g-ok-later", "2024-05-01T10:07:00Z", Some(200)),
            d(6, "g-twice", "2024-05-01T10:06:00Z", Some(502)),
            d(5, "g-down", "2024-05-01T10:05:00Z", None),
            d(4, "g-twice", "2024-05-01T10:04:00Z", Some(500)),
            d(3, "g-ok-later", "2024-05-01T10:03:00Z", Some(503)),
            d(2, "g-ok", "2024-05-01T10:02:00Z", Some(202)),
            d(1, "g-old", "2024-05-01T09:00:00Z", Some(500)),
        ];
        let got: Vec<u64> = choose(
            &listed,
            t("2024-05-01T10:00:00Z"),
            t("2024-05-01T11:00:00Z"),
            true,
        )
        .iter()
        .map(|d| d.id)
        .collect();
        // Oldest first; g-twice once, by its latest attempt; g-ok-later
        // succeeded on redelivery; g-old is from before the last look.
        assert_eq!(got, vec![5, 6]);
    }

    #[test]
    fn an_unreadable_time_is_not_since_anything() {
        let listed = [d(1, "g", "yesterday", Some(500))];
        assert!(choose(&listed, SystemTime::UNIX_EPOCH, SystemTime::now(), true).is_empty());
    }

    #[test]
    fn of_pushes_only_the_newest_failed_one_and_only_if_nothing_newer_came() {
        let (since, until) = (t("2024-05-01T10:00:00Z"), t("2024-05-01T11:00:00Z"));
        let ids = |listed: &[HookDelivery], pushes| -> Vec<u64> {
            choose(listed, since, until, pushes)
                .iter()
                .map(|d| d.id)
                .collect()
        };
        // Newest first. Two failed pushes: the older would deploy an older
        // commit after the newer one.
        let listed = [
            push(3, "p-new", "2024-05-01T10:30:00Z", Some(502)),
            push(2, "p-old", "2024-05-01T10:20:00Z", None),
            d(1, "ci", "2024-05-01T10:10:00Z", Some(500)),
        ];
        assert_eq!(ids(&listed, true), vec![1, 3]);
        // With catch-up on, no push: it deploys the branch's head itself.
        assert_eq!(ids(&listed, false), vec![1]);
        // A push delivered after the failed one carries a newer commit.
        let listed = [
            push(2, "p-ok", "2024-05-01T10:40:00Z", Some(202)),
            push(1, "p-failed", "2024-05-01T10:30:00Z", Some(502)),
        ];
        assert!(ids(&listed, true).is_empty());
    }
}
