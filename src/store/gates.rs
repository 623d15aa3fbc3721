//! The CI gate: a push to a project with `after_ci` waits until the forge's
//! CI is green on that commit, and only then becomes a deploy request.
//!
//! [`Gate`] is one project's gate, pure: it is told of pushes, CI results
//! ([`CiRun`]), the clock and the operator, and answers what to do; it does
//! no I/O and reads no clock. [`load`] and [`save`] keep it under
//! `<state_dir>/gate/<project>.json`, written the way the queue writes
//! (temp file, fsync, rename, directory fsync), so a daemon killed while a
//! push waits loses neither the push nor the results already in. [`Gates`]
//! is the daemon's keeper of every project's gate: one change at a time per
//! project, on disk before the caller answers, and a wake-up for the one
//! timer that expires waiting pushes.
//!
//! The rules (docs/ci-gate.md says them to users):
//!
//! - **One waiting push per project, the newest.** A newer push replaces a
//!   waiting one, which then never deploys, whatever its CI says later.
//! - **Every required workflow must pass** on that commit, on the deploy
//!   branch, from the project's repository (never a fork's run). One that
//!   fails fails the gate: the push is dropped (`ci_failed`). A push still
//!   waiting after `ci_timeout` is dropped too (`ci_timeout`). A re-run
//!   counts: the latest result of each workflow is the one that holds.
//! - **Order is not guaranteed.** A result for a commit deployd has no push
//!   for yet is remembered (at most [`EARLY_MAX`] results, each for
//!   `ci_timeout`) and counted when the push arrives. The same result
//!   reported twice (same run, same attempt, same state) is a duplicate.
//! - **Newer is what deployd saw later.** Each commit is numbered the first
//!   time deployd sees any event of it on the deploy branch: its push, or
//!   any workflow event (GitHub sends `requested` when a run starts, so runs
//!   are seen in the order their commits were pushed). CI of a commit numbered
//!   before the one waiting or the one last released never deploys
//!   (`superseded`): older work never deploys after newer.
//! - **Without pushes.** A project whose hook receives only CI events (no
//!   push has ever arrived) deploys a commit as soon as all its required
//!   workflows passed, unless a newer commit (by the rule above) has been
//!   released or is waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use std::{fmt, fs, io};

use tokio::sync::Notify;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::forge::ci::{CiRun, CiState};
use crate::fsutil;

/// At most this many results for commits without a push are remembered per
/// project; the oldest go first. A hook flooded with CI events of other
/// commits cannot grow the state file without bound.
pub const EARLY_MAX: usize = 64;

/// At most this many commits are remembered with their order of arrival.
/// A commit forgotten is numbered anew if it comes back, as if new.
pub const SEEN_MAX: usize = 256;

/// Whether a branch (its name, without `refs/heads/`) is one a push to
/// deploys: the project's rule, the same the push filter applies.
pub type DeployBranch = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What a project's gate requires, from its config.
#[derive(Clone)]
pub struct Policy {
    /// The workflows that must pass (GitLab: `["pipeline"]`).
    pub required: Vec<String>,
    /// Which branches' CI counts: those whose pushes deploy.
    pub branch: DeployBranch,
    /// When set, results from other repositories are not counted.
    pub repository: Option<String>,
    /// How long a push may wait.
    pub timeout: Duration,
}

/// Why a CI event changes nothing; the `reason` of a `200 ignored` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A result for a commit no push waits for. Remembered, for its push.
    NotWaiting,
    /// For a commit older than the one waiting or last released.
    Superseded,
    /// For a branch other than the deploy branch.
    OtherBranch,
    /// From a repository other than the project's.
    OtherRepository,
    /// A run of a fork's commit.
    Fork,
    /// A workflow `after_ci` does not list.
    NotRequired,
    /// A push of the commit the gate released last, with nothing waiting:
    /// it is deployed (or queued) already. This is how the push arrives that
    /// a hook of CI events alone ran ahead of.
    AlreadyReleased,
    /// Not finished yet.
    InProgress,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::NotWaiting => "not waiting for this commit",
            Reason::Superseded => "superseded",
            Reason::OtherBranch => "other branch",
            Reason::OtherRepository => "other repository",
            Reason::Fork => "fork",
            Reason::NotRequired => "not a required workflow",
            Reason::AlreadyReleased => "already deployed after its CI",
            Reason::InProgress => "in progress",
        })
    }
}

/// The workflow that failed a gate, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The workflow's name.
    pub workflow: String,
    /// The forge's word: `failure`, `cancelled`, `timed_out`…
    pub conclusion: String,
}

/// What became of a push or a CI result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<R> {
    /// The gate is green: deploy this request now.
    Ready(R),
    /// Still waiting, for these workflows.
    Waiting(Vec<String>),
    /// A required workflow did not pass: the request is dropped, and its
    /// `ci_failed` record written.
    Failed(R, Failure),
    /// Green by CI alone, in a project that receives no pushes: deploy this
    /// commit (the caller builds the request from the [`CiRun`]).
    ReadyFromCi,
    /// Failed by CI alone, in a project that receives no pushes: write a
    /// `ci_failed` record for this commit.
    FailedFromCi(Failure),
    /// Already counted.
    Duplicate,
    /// Changes nothing, for this reason.
    Ignored(Reason),
}

/// A recorded result of one workflow on one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Result1 {
    workflow: String,
    state: CiState,
    conclusion: String,
    run: String,
}

/// A result for a commit without a push (yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Early {
    sha: String,
    /// Unix milliseconds when it arrived; forgotten after `ci_timeout`.
    at: u64,
    result: Result1,
}

/// The push that waits, with what its CI said so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting<R> {
    /// Its commit.
    pub sha: String,
    /// Unix milliseconds when it started waiting: `ci_timeout` counts from
    /// here.
    pub since: u64,
    /// The request it becomes once green.
    pub request: R,
    results: Vec<Result1>,
}

/// One workflow's state for `deployd status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowState {
    /// The workflow's name.
    pub workflow: String,
    /// `passed`, `failed` or `pending`.
    pub state: String,
}

/// A project's gate: the waiting push, results ahead of their push, and the
/// order in which deployd saw commits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "R: DeserializeOwned"))]
pub struct Gate<R> {
    /// The push that waits, if any.
    waiting: Option<Waiting<R>>,
    /// Results for commits no push waits for, oldest first.
    #[serde(default)]
    early: Vec<Early>,
    /// Commits in the order deployd first saw them, with their number.
    #[serde(default)]
    seen: Vec<(String, u64)>,
    /// The next commit's number.
    #[serde(default)]
    next: u64,
    /// The number of the commit last released (sent to the queue).
    #[serde(default)]
    released: Option<(String, u64)>,
    /// Whether a push ever arrived: until then, CI alone deploys.
    #[serde(default)]
    pushes: bool,
}

impl<R> Default for Gate<R> {
    fn default() -> Self {
        Gate {
            waiting: None,
            early: Vec::new(),
            seen: Vec::new(),
            next: 0,
            released: None,
            pushes: false,
        }
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Where a project's gate is kept.
pub fn path(state_dir: &Path, project: &str) -> PathBuf {
    state_dir.join("gate").join(format!("{project}.json"))
}

/// Reads a project's gate; a missing file is an empty gate.
pub fn load<R: DeserializeOwned>(state_dir: &Path, project: &str) -> io::Result<Gate<R>> {
    match fs::read(path(state_dir, project)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Gate::default()),
        Err(e) => Err(e),
    }
}

/// Writes a project's gate durably (temp file, fsync, rename, directory
/// fsync). Blocking: call it off the async
/// runtime.
pub fn save<R: Serialize>(state_dir: &Path, project: &str, gate: &Gate<R>) -> io::Result<()> {
    let p = path(state_dir, project);
    let dir = state_dir.join("gate");
    fsutil::create_dir(&dir, fsutil::STATE_DIR_MODE)?;
    let json = serde_json::to_vec(gate).map_err(io::Error::other)?;
    fsutil::write_atomic(&p, &json)
}

impl<R: Clone> Gate<R> {
    /// The push that waits, if any.
    pub fn waiting(&self) -> Option<&Waiting<R>> {
        self.waiting.as_ref()
    }

    /// The number of `sha`, giving it the next one if it is new.
    fn sight(&mut self, sha: &str) -> u64 {
        if let Some((_, n)) = self.seen.iter().find(|(s, _)| s == sha) {
            return *n;
        }
        let n = self.next;
        self.next += 1;
        self.seen.push((sha.to_string(), n));
        if self.seen.len() > SEEN_MAX {
            self.seen.remove(0);
        }
        n
    }

    fn number(&self, sha: &str) -> Option<u64> {
        self.seen.iter().find(|(s, _)| s == sha).map(|(_, n)| *n)
    }

    /// The number below which a commit is older than what deployd already
    /// decided to deploy or wait for.
    fn newest_taken(&self) -> Option<u64> {
        let w = self.waiting.as_ref().and_then(|w| self.number(&w.sha));
        let r = self.released.as_ref().map(|(_, n)| *n);
        w.max(r)
    }

    fn forget_old(&mut self, policy: &Policy, now: SystemTime) {
        let limit = u64::try_from(policy.timeout.as_millis()).unwrap_or(u64::MAX);
        let now = millis(now);
        self.early.retain(|e| now.saturating_sub(e.at) < limit);
    }

    fn release(&mut self, sha: &str) {
        let n = self.sight(sha);
        self.released = Some((sha.to_string(), n));
        self.early.retain(|e| e.sha != sha);
    }

    /// A push of `sha` to the deploy branch, which becomes `request` once
    /// green. Returns what became of it and the waiting push it replaced,
    /// if any (which then never deploys).
    pub fn push(
        &mut self,
        sha: &str,
        request: R,
        policy: &Policy,
        now: SystemTime,
    ) -> (Outcome<R>, Option<R>) {
        self.pushes = true;
        if self.waiting.is_none() && self.released.as_ref().is_some_and(|(s, _)| s == sha) {
            return (Outcome::Ignored(Reason::AlreadyReleased), None);
        }
        self.forget_old(policy, now);
        self.sight(sha);
        let mut results = Vec::new();
        let mut replaced = None;
        let mut since = millis(now);
        match self.waiting.take() {
            // The same commit again (a re-push, or a redelivery under a
            // new id): keep what its CI said so far and how long it waits.
            Some(w) if w.sha == sha => {
                results = w.results;
                since = w.since;
            }
            Some(w) => replaced = Some(w.request),
            None => {}
        }
        let mut rest = Vec::new();
        for e in std::mem::take(&mut self.early) {
            if e.sha == sha {
                record(&mut results, e.result);
            } else {
                rest.push(e);
            }
        }
        self.early = rest;
        let outcome = match verdict(&results, &policy.required) {
            Verdict::Failed(f) => Outcome::Failed(request, f),
            Verdict::Passed => {
                self.release(sha);
                Outcome::Ready(request)
            }
            Verdict::Pending(missing) => {
                self.waiting = Some(Waiting {
                    sha: sha.to_string(),
                    since,
                    request,
                    results,
                });
                Outcome::Waiting(missing)
            }
        };
        (outcome, replaced)
    }

    /// A CI event. Checks the branch, fork, repository and workflow, then
    /// counts it for the waiting push, or remembers it for a push to come.
    pub fn ci(&mut self, run: &CiRun, policy: &Policy, now: SystemTime) -> Outcome<R> {
        if let Some(want) = &policy.repository
            && !want.eq_ignore_ascii_case(&run.repository)
        {
            return Outcome::Ignored(Reason::OtherRepository);
        }
        if !run.head_repository.is_empty()
            && !run.head_repository.eq_ignore_ascii_case(&run.repository)
        {
            return Outcome::Ignored(Reason::Fork);
        }
        if !(policy.branch)(&run.branch) {
            return Outcome::Ignored(Reason::OtherBranch);
        }
        if !policy.required.contains(&run.workflow) {
            return Outcome::Ignored(Reason::NotRequired);
        }
        self.forget_old(policy, now);
        // Seen now even when still running: that is how deployd learns the
        // order of commits it gets no push for.
        let n = self.sight(&run.sha);
        if run.state == CiState::Running {
            return Outcome::Ignored(Reason::InProgress);
        }
        let result = Result1 {
            workflow: run.workflow.clone(),
            state: run.state,
            conclusion: run.conclusion.clone(),
            run: run.run.clone(),
        };
        if let Some(w) = self.waiting.as_mut().filter(|w| w.sha == run.sha) {
            if w.results.contains(&result) {
                return Outcome::Duplicate;
            }
            record(&mut w.results, result);
            return match verdict(&w.results, &policy.required) {
                Verdict::Pending(missing) => Outcome::Waiting(missing),
                Verdict::Failed(f) => {
                    let w = self.waiting.take().map(|w| w.request);
                    // `w` is the waiting push found just above.
                    match w {
                        Some(r) => Outcome::Failed(r, f),
                        None => Outcome::Ignored(Reason::NotWaiting),
                    }
                }
                Verdict::Passed => {
                    let w = self.waiting.take().map(|w| w.request);
                    self.release(&run.sha);
                    match w {
                        Some(r) => Outcome::Ready(r),
                        None => Outcome::Ignored(Reason::NotWaiting),
                    }
                }
            };
        }
        if self.newest_taken().is_some_and(|t| n < t) {
            return Outcome::Ignored(Reason::Superseded);
        }
        if self.released.as_ref().is_some_and(|(s, _)| *s == run.sha) {
            return Outcome::Ignored(Reason::NotWaiting);
        }
        if self
            .early
            .iter()
            .any(|e| e.sha == run.sha && e.result == result)
        {
            return Outcome::Duplicate;
        }
        self.early
            .retain(|e| !(e.sha == run.sha && e.result.workflow == run.workflow));
        self.early.push(Early {
            sha: run.sha.clone(),
            at: millis(now),
            result,
        });
        if self.early.len() > EARLY_MAX {
            self.early.remove(0);
        }
        if self.pushes {
            return Outcome::Ignored(Reason::NotWaiting);
        }
        let results: Vec<Result1> = self
            .early
            .iter()
            .filter(|e| e.sha == run.sha)
            .map(|e| e.result.clone())
            .collect();
        match verdict(&results, &policy.required) {
            Verdict::Pending(missing) => Outcome::Waiting(missing),
            Verdict::Failed(f) => {
                self.early.retain(|e| e.sha != run.sha);
                Outcome::FailedFromCi(f)
            }
            Verdict::Passed => {
                self.release(&run.sha);
                Outcome::ReadyFromCi
            }
        }
    }

    /// When the waiting push times out, if one waits: the one deadline a
    /// timer needs (no timer at all when nothing waits).
    pub fn deadline(&self, policy: &Policy) -> Option<SystemTime> {
        let w = self.waiting.as_ref()?;
        Some(UNIX_EPOCH + Duration::from_millis(w.since) + policy.timeout)
    }

    /// Drops the waiting push if it waited `ci_timeout` by `now`; returns
    /// it with the workflows that had not passed.
    pub fn expire(&mut self, policy: &Policy, now: SystemTime) -> Option<(R, Vec<String>)> {
        if self.deadline(policy).is_none_or(|d| now < d) {
            return None;
        }
        let w = self.waiting.take()?;
        let missing = match verdict(&w.results, &policy.required) {
            Verdict::Pending(m) => m,
            _ => policy.required.clone(),
        };
        self.forget_old(policy, now);
        Some((w.request, missing))
    }

    /// The operator deploys `sha` now, past the gate: the waiting push of
    /// that commit, if it is the one waiting, is taken out and returned.
    pub fn bypass(&mut self, sha: &str) -> Option<R> {
        let w = self
            .waiting
            .take_if(|w| w.sha == sha || w.sha.starts_with(sha) && !sha.is_empty())?;
        let sha = w.sha.clone();
        self.release(&sha);
        Some(w.request)
    }

    /// Each required workflow's state for the waiting push.
    pub fn states(&self, policy: &Policy) -> Vec<WorkflowState> {
        let results = self.waiting.as_ref().map_or(&[][..], |w| &w.results[..]);
        policy
            .required
            .iter()
            .map(|name| {
                let state = match results.iter().find(|r| r.workflow == *name) {
                    Some(r) if r.state == CiState::Passed => "passed",
                    Some(r) if r.state == CiState::Failed => "failed",
                    _ => "pending",
                };
                WorkflowState {
                    workflow: name.clone(),
                    state: state.into(),
                }
            })
            .collect()
    }
}

/// One project's gate in memory: `None` until read from disk.
type Slot<R> = Arc<tokio::sync::Mutex<Option<Gate<R>>>>;

/// Every project's gate, as the daemon keeps them: loaded from disk on first
/// use, changed one at a time per project, written durably before
/// [`Gates::change`] returns (so an answer sent after it is true after a
/// crash), and a [`Notify`] for the expiry timer.
pub struct Gates<R> {
    state_dir: PathBuf,
    /// One lock per project, held across the change and its write: two
    /// deliveries for one project are decided one after the other.
    gates: Mutex<HashMap<String, Slot<R>>>,
    /// Told when a gate changed, so the timer re-arms for the new earliest
    /// deadline; nothing wakes it while nothing waits.
    changed: Notify,
}

impl<R> Gates<R>
where
    R: Clone + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// The gates kept under `state_dir`.
    pub fn new(state_dir: &Path) -> Gates<R> {
        Gates {
            state_dir: state_dir.to_path_buf(),
            gates: Mutex::new(HashMap::new()),
            changed: Notify::new(),
        }
    }

    fn slot(&self, project: &str) -> Slot<R> {
        // A poisoned map only means a panic elsewhere mid-insert; the map
        // itself is still whole.
        let mut map = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(project.to_string()).or_default().clone()
    }

    /// Applies `f` to `project`'s gate and, if it changed, writes it durably
    /// before returning `f`'s answer. On a write error the change is undone
    /// in memory too, so memory never runs ahead of the disk.
    pub async fn change<T>(
        &self,
        project: &str,
        f: impl FnOnce(&mut Gate<R>) -> T,
    ) -> io::Result<T> {
        self.change_then(project, f, async |t| Ok(t)).await
    }

    /// [`Gates::change`], with `act` carried out on `decide`'s answer after
    /// the decision and before the gate is written: what the decision
    /// promises (a request queued, a record written) is on disk before the
    /// gate forgets the push. If `act` fails, the gate is left as it was. A
    /// crash between the two leaves the push in the gate: the worst is that
    /// a redelivered CI event queues it once more (coalesced with itself).
    pub async fn change_then<T, U, Fut>(
        &self,
        project: &str,
        decide: impl FnOnce(&mut Gate<R>) -> T,
        act: impl FnOnce(T) -> Fut,
    ) -> io::Result<U>
    where
        Fut: Future<Output = io::Result<U>>,
    {
        let slot = self.slot(project);
        let mut held = slot.lock().await;
        if held.is_none() {
            let (dir, name) = (self.state_dir.clone(), project.to_string());
            *held = Some(blocking(move || load(&dir, &name)).await?);
        }
        let Some(gate) = held.as_mut() else {
            unreachable!("loaded just above")
        };
        let before = gate.clone();
        let answer = decide(gate);
        let done = match act(answer).await {
            Ok(u) => u,
            Err(e) => {
                *gate = before;
                return Err(e);
            }
        };
        if *gate != before {
            let (dir, name, copy) = (self.state_dir.clone(), project.to_string(), gate.clone());
            if let Err(e) = blocking(move || save(&dir, &name, &copy)).await {
                *gate = before;
                return Err(e);
            }
            self.changed.notify_one();
        }
        Ok(done)
    }

    /// A copy of `project`'s gate, loading it if need be.
    pub async fn get(&self, project: &str) -> io::Result<Gate<R>> {
        self.change(project, |g| g.clone()).await
    }

    /// Waits until some gate changed since the last call (a permit is kept
    /// if none waited), for the expiry timer.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Runs a blocking closure (fsync, a file read) on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Keeps the latest result of each workflow: a re-run replaces the run
/// before it.
fn record(results: &mut Vec<Result1>, r: Result1) {
    results.retain(|x| x.workflow != r.workflow);
    results.push(r);
}

enum Verdict {
    Passed,
    Failed(Failure),
    Pending(Vec<String>),
}

fn verdict(results: &[Result1], required: &[String]) -> Verdict {
    let mut missing = Vec::new();
    for name in required {
        match results.iter().find(|r| r.workflow == *name) {
            Some(r) if r.state == CiState::Failed => {
                return Verdict::Failed(Failure {
                    workflow: name.clone(),
                    conclusion: r.conclusion.clone(),
                });
            }
            Some(r) if r.state == CiState::Passed => {}
            _ => missing.push(name.clone()),
        }
    }
    if missing.is_empty() {
        Verdict::Passed
    } else {
        Verdict::Pending(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::tests::scratch;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn policy() -> Policy {
        Policy {
            required: vec!["CI".into(), "Tests".into()],
            branch: Arc::new(|b| b == "main"),
            repository: Some("acme/app".into()),
            timeout: Duration::from_secs(3600),
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn run(workflow: &str, sha: &str, state: CiState, conclusion: &str) -> CiRun {
        CiRun {
            workflow: workflow.into(),
            sha: sha.into(),
            branch: "main".into(),
            repository: "acme/app".into(),
            head_repository: "acme/app".into(),
            state,
            conclusion: conclusion.into(),
            run: format!("{workflow}-{sha}-1"),
            actor: "octocat".into(),
        }
    }

    fn green(workflow: &str, sha: &str) -> CiRun {
        run(workflow, sha, CiState::Passed, "success")
    }

    fn red(workflow: &str, sha: &str, conclusion: &str) -> CiRun {
        run(workflow, sha, CiState::Failed, conclusion)
    }

    type G = Gate<String>;

    #[test]
    fn a_push_waits_for_every_required_workflow() {
        let p = policy();
        let mut g = G::default();
        let (o, replaced) = g.push(A, "req-a".into(), &p, at(0));
        assert_eq!(o, Outcome::Waiting(vec!["CI".into(), "Tests".into()]));
        assert_eq!(replaced, None);
        assert_eq!(
            g.ci(&green("CI", A), &p, at(1)),
            Outcome::Waiting(vec!["Tests".into()])
        );
        assert_eq!(
            g.states(&p),
            vec![
                WorkflowState {
                    workflow: "CI".into(),
                    state: "passed".into()
                },
                WorkflowState {
                    workflow: "Tests".into(),
                    state: "pending".into()
                },
            ]
        );
        assert_eq!(
            g.ci(&green("Tests", A), &p, at(2)),
            Outcome::Ready("req-a".into())
        );
        assert!(g.waiting().is_none());
        // Its CI reported again later changes nothing.
        assert_eq!(
            g.ci(&green("Tests", A), &p, at(3)),
            Outcome::Ignored(Reason::NotWaiting)
        );
    }

    #[test]
    fn skipped_and_neutral_count_as_passed_when_the_forge_says_so() {
        // The forge files map the words; the gate sees Passed.
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        g.ci(&run("CI", A, CiState::Passed, "skipped"), &p, at(1));
        assert_eq!(
            g.ci(&run("Tests", A, CiState::Passed, "neutral"), &p, at(1)),
            Outcome::Ready("a".into())
        );
    }

    #[test]
    fn a_red_workflow_fails_the_gate_and_drops_the_push() {
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        assert_eq!(
            g.ci(&green("CI", A), &p, at(1)),
            Outcome::Waiting(vec!["Tests".into()])
        );
        let failure = Failure {
            workflow: "Tests".into(),
            conclusion: "cancelled".into(),
        };
        assert_eq!(
            g.ci(&red("Tests", A, "cancelled"), &p, at(2)),
            Outcome::Failed("a".into(), failure)
        );
        assert!(g.waiting().is_none());
        assert_eq!(g.deadline(&p), None);
    }

    #[test]
    fn what_does_not_concern_the_gate_is_ignored_with_its_reason() {
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        let mut other_branch = green("CI", A);
        other_branch.branch = "feature".into();
        assert_eq!(
            g.ci(&other_branch, &p, at(1)),
            Outcome::Ignored(Reason::OtherBranch)
        );
        let mut fork = green("CI", A);
        fork.head_repository = "mallory/app".into();
        assert_eq!(g.ci(&fork, &p, at(1)), Outcome::Ignored(Reason::Fork));
        let mut other_repo = green("CI", A);
        other_repo.repository = "acme/other".into();
        other_repo.head_repository = "acme/other".into();
        assert_eq!(
            g.ci(&other_repo, &p, at(1)),
            Outcome::Ignored(Reason::OtherRepository)
        );
        assert_eq!(
            g.ci(&green("Lint", A), &p, at(1)),
            Outcome::Ignored(Reason::NotRequired)
        );
        assert_eq!(
            g.ci(&run("CI", A, CiState::Running, "in_progress"), &p, at(1)),
            Outcome::Ignored(Reason::InProgress)
        );
        // None of them counted.
        assert_eq!(g.states(&p)[0].state, "pending");
        // A fork's red run does not fail the gate either.
        let mut fork_red = red("CI", A, "failure");
        fork_red.head_repository = "mallory/app".into();
        assert_eq!(g.ci(&fork_red, &p, at(1)), Outcome::Ignored(Reason::Fork));
        assert!(g.waiting().is_some());
    }

    #[test]
    fn a_newer_push_supersedes_and_older_ci_never_deploys() {
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        g.ci(&green("CI", A), &p, at(1));
        let (o, replaced) = g.push(B, "b".into(), &p, at(2));
        assert_eq!(o, Outcome::Waiting(vec!["CI".into(), "Tests".into()]));
        assert_eq!(replaced, Some("a".into()));
        // A's last workflow finishing after B's push deploys nothing.
        assert_eq!(
            g.ci(&green("Tests", A), &p, at(3)),
            Outcome::Ignored(Reason::Superseded)
        );
        g.ci(&green("CI", B), &p, at(4));
        assert_eq!(
            g.ci(&green("Tests", B), &p, at(5)),
            Outcome::Ready("b".into())
        );
        // Nor after B deployed.
        assert_eq!(
            g.ci(&green("CI", A), &p, at(6)),
            Outcome::Ignored(Reason::Superseded)
        );
        // B's red re-run after its deploy fails nothing.
        assert_eq!(
            g.ci(&red("CI", B, "failure"), &p, at(7)),
            Outcome::Ignored(Reason::NotWaiting)
        );
    }

    #[test]
    fn results_before_their_push_are_remembered_and_counted() {
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        // B's CI comes before B's push (forges do not promise an order).
        assert_eq!(
            g.ci(&green("CI", B), &p, at(1)),
            Outcome::Ignored(Reason::NotWaiting)
        );
        assert_eq!(g.ci(&green("CI", B), &p, at(1)), Outcome::Duplicate);
        let (o, replaced) = g.push(B, "b".into(), &p, at(2));
        assert_eq!(o, Outcome::Waiting(vec!["Tests".into()]));
        assert_eq!(replaced, Some("a".into()));
        assert_eq!(
            g.ci(&green("Tests", B), &p, at(3)),
            Outcome::Ready("b".into())
        );
        // All in before the push: it is ready at once.
        g.ci(&green("CI", C), &p, at(4));
        g.ci(&green("Tests", C), &p, at(4));
        assert_eq!(
            g.push(C, "c".into(), &p, at(5)).0,
            Outcome::Ready("c".into())
        );
        // A red one before the push fails it at once.
        let d = "dddddddddddddddddddddddddddddddddddddddd";
        g.ci(&red("Tests", d, "failure"), &p, at(6));
        let failure = Failure {
            workflow: "Tests".into(),
            conclusion: "failure".into(),
        };
        assert_eq!(
            g.push(d, "d".into(), &p, at(7)).0,
            Outcome::Failed("d".into(), failure)
        );
    }

    #[test]
    fn early_results_are_bounded_in_number_and_time() {
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        for i in 0..(EARLY_MAX + 10) {
            g.ci(&green("CI", &format!("{i:040}")), &p, at(1));
        }
        assert_eq!(g.early.len(), EARLY_MAX);
        // The oldest went first.
        assert!(!g.early.iter().any(|e| e.sha == format!("{:040}", 0)));
        // After ci_timeout they are forgotten: the push waits for all again.
        let sha = format!("{:040}", EARLY_MAX + 9);
        let late = at(1) + p.timeout;
        assert_eq!(
            g.push(&sha, "late".into(), &p, late).0,
            Outcome::Waiting(vec!["CI".into(), "Tests".into()])
        );
        assert!(g.early.is_empty());
    }

    #[test]
    fn redelivered_results_are_duplicates_but_reruns_count() {
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        let first = red("CI", A, "failure");
        let failure = Failure {
            workflow: "CI".into(),
            conclusion: "failure".into(),
        };
        assert_eq!(
            g.ci(&first, &p, at(1)),
            Outcome::Failed("a".into(), failure)
        );
        // Pushed again (say, an empty commit would be new; the same commit
        // re-pushed is the same push), and the workflow re-run green.
        g.push(B, "b".into(), &p, at(2));
        let ci = green("CI", B);
        assert_eq!(g.ci(&ci, &p, at(3)), Outcome::Waiting(vec!["Tests".into()]));
        assert_eq!(g.ci(&ci, &p, at(3)), Outcome::Duplicate);
        let mut rerun = red("CI", B, "failure");
        rerun.run = "CI-b-2".into();
        assert!(matches!(g.ci(&rerun, &p, at(4)), Outcome::Failed(..)));
    }

    #[test]
    fn the_same_commit_pushed_again_keeps_its_results_and_clock() {
        let p = policy();
        let mut g = G::default();
        g.push(A, "a1".into(), &p, at(0));
        g.ci(&green("CI", A), &p, at(1));
        let (o, replaced) = g.push(A, "a2".into(), &p, at(10));
        assert_eq!(o, Outcome::Waiting(vec!["Tests".into()]));
        assert_eq!(replaced, None);
        assert_eq!(g.deadline(&p), Some(at(0) + p.timeout));
        assert_eq!(
            g.ci(&green("Tests", A), &p, at(11)),
            Outcome::Ready("a2".into())
        );
    }

    #[test]
    fn a_push_times_out_with_one_deadline_and_none_when_idle() {
        let p = policy();
        let mut g = G::default();
        assert_eq!(g.deadline(&p), None);
        assert_eq!(g.expire(&p, at(1_000_000)), None);
        g.push(A, "a".into(), &p, at(0));
        g.ci(&green("Tests", A), &p, at(1));
        assert_eq!(g.deadline(&p), Some(at(3600)));
        assert_eq!(g.expire(&p, at(3599)), None);
        assert_eq!(
            g.expire(&p, at(3600)),
            Some(("a".into(), vec!["CI".into()]))
        );
        assert_eq!(g.deadline(&p), None);
        // Its CI, late, deploys nothing.
        assert_eq!(
            g.ci(&green("CI", A), &p, at(3700)),
            Outcome::Ignored(Reason::NotWaiting)
        );
    }

    #[test]
    fn the_operator_deploys_the_waiting_commit_past_the_gate() {
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        assert_eq!(g.bypass(B), None);
        assert!(g.waiting().is_some());
        assert_eq!(g.bypass(&A[..12]), Some("a".into()));
        assert!(g.waiting().is_none());
        // Its CI, later, deploys it no second time.
        g.ci(&green("CI", A), &p, at(1));
        assert_eq!(
            g.ci(&green("Tests", A), &p, at(2)),
            Outcome::Ignored(Reason::NotWaiting)
        );
    }

    #[test]
    fn without_pushes_ci_alone_deploys_and_never_older_work() {
        let p = policy();
        let mut g = G::default();
        // A's and B's runs start in push order; B's finish first.
        for sha in [A, B] {
            for w in ["CI", "Tests"] {
                let o = g.ci(&run(w, sha, CiState::Running, "requested"), &p, at(0));
                assert_eq!(o, Outcome::Ignored(Reason::InProgress));
            }
        }
        assert_eq!(
            g.ci(&green("CI", B), &p, at(1)),
            Outcome::Waiting(vec!["Tests".into()])
        );
        assert_eq!(g.ci(&green("Tests", B), &p, at(2)), Outcome::ReadyFromCi);
        // A finishing later never rolls back.
        assert_eq!(
            g.ci(&green("CI", A), &p, at(3)),
            Outcome::Ignored(Reason::Superseded)
        );
        assert_eq!(
            g.ci(&green("Tests", A), &p, at(3)),
            Outcome::Ignored(Reason::Superseded)
        );
        // A newer red one is recorded as failed.
        let failure = Failure {
            workflow: "CI".into(),
            conclusion: "failure".into(),
        };
        assert_eq!(
            g.ci(&red("CI", C, "failure"), &p, at(4)),
            Outcome::FailedFromCi(failure)
        );
        // B's push, late, deploys it no second time; from now on pushes
        // lead.
        assert_eq!(
            g.push(B, "b".into(), &p, at(5)).0,
            Outcome::Ignored(Reason::AlreadyReleased)
        );
        let d = "dddddddddddddddddddddddddddddddddddddddd";
        assert_eq!(
            g.ci(&green("CI", d), &p, at(6)),
            Outcome::Ignored(Reason::NotWaiting)
        );
    }

    #[test]
    fn it_survives_a_round_trip_through_its_file() {
        let dir = scratch("gate");
        let p = policy();
        let mut g = G::default();
        g.push(A, "a".into(), &p, at(0));
        g.ci(&green("CI", A), &p, at(1));
        g.ci(&green("CI", B), &p, at(1));
        save(&dir, "app", &g).unwrap();
        let mut back: G = load(&dir, "app").unwrap();
        assert_eq!(back, g);
        assert_eq!(
            back.ci(&green("Tests", A), &p, at(2)),
            Outcome::Ready("a".into())
        );
        let none: G = load(&dir, "other").unwrap();
        assert_eq!(none, G::default());
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn the_keeper_writes_each_change_before_it_answers() {
        let dir = scratch("gates");
        let p = policy();
        let gates: Gates<String> = Gates::new(&dir);
        let o = gates
            .change("app", |g| g.push(A, "a".into(), &p, at(0)).0)
            .await
            .unwrap();
        assert_eq!(o, Outcome::Waiting(vec!["CI".into(), "Tests".into()]));
        // The timer is told.
        gates.changed().await;
        gates
            .change("app", |g| g.ci(&green("CI", A), &p, at(1)))
            .await
            .unwrap();
        // What a new daemon finds after a crash at this point.
        let mut after_crash: G = load(&dir, "app").unwrap();
        assert_eq!(after_crash.states(&p)[0].state, "passed");
        assert_eq!(
            after_crash.ci(&green("Tests", A), &p, at(2)),
            Outcome::Ready("a".into())
        );
        // A change that fails to reach the disk is undone in memory too.
        let gate_dir = dir.join("gate");
        fs::remove_dir_all(&gate_dir).unwrap();
        fs::write(&gate_dir, b"not a directory").unwrap();
        assert!(
            gates
                .change("app", |g| g.ci(&green("Tests", A), &p, at(2)))
                .await
                .is_err()
        );
        assert!(gates.get("app").await.unwrap().waiting().is_some());
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_file(&gate_dir);
    }
}
