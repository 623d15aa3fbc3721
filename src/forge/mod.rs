//! The forges deployd takes webhooks from, one file each: its header names,
//! signature scheme and payload shapes live in that file and nowhere else.
//! Adding an event kind or an API call to a forge is editing its file.
//!
//! The rest of deployd sees one seam: [`receive`] — given a project's forge
//! and key (and a previous key during a rotation), and a request's headers
//! and body, verify the request and read it into a forge-neutral
//! [`Delivery`]: a push ([`crate::forge::push::Push`]), a CI result
//! ([`crate::forge::ci::CiRun`], for the CI gate), a ping, or another event that is
//! ignored; with the body's MAC, for dedupe whatever the event, and
//! the time the forge signed, if any. [`read`] is the same with one key.
//! [`sign_headers`] is the other way round, for `deployd sign`.
//!
//! | provider | file | signature | event header | delivery id |
//! | --- | --- | --- | --- | --- |
//! | `github` | `github.rs` | `X-Hub-Signature-256: sha256=<hex>` | `X-GitHub-Event` | `X-GitHub-Delivery` |
//! | `gitea` | `gitea.rs` | `X-Forgejo-Signature` / `X-Gitea-Signature: <hex>` | `X-Forgejo-Event` / `X-Gitea-Event` | `X-Forgejo-Delivery` / `X-Gitea-Delivery` |
//! | `gitlab` | `gitlab.rs` | `X-Gitlab-Token`, or Standard Webhooks `webhook-signature` | `X-Gitlab-Event` | `Idempotency-Key`, else `X-Gitlab-Webhook-UUID` |
//! | `bitbucket` | `bitbucket.rs` | `X-Hub-Signature: sha256=<hex>` | `X-Event-Key` | `X-Request-UUID` |
//!
//! `common.rs` holds what they share and is specific to none: the prepared
//! secret, constant-time checks, header and body readers. Payloads are
//! parsed only after the signature checked out, and only the fields used are
//! read (borrowed where the JSON has no escapes). The checks run in the
//! order docs/security.md's *HTTP* section lists them: signature (401), content
//! type (415), then event and payload (400). docs/forges.md is the same
//! ground from the user's side.

use std::fmt;
use std::time::SystemTime;

use hyper::HeaderMap;
use serde::Deserialize;

use crate::forge::push::Push;

// `pub(crate)` so that the filter's tests can build each forge's payloads;
// what each file offers the rest of the crate goes through the functions
// below.
pub(crate) mod bitbucket;
pub mod ci;
mod common;
pub(crate) mod gitea;
pub(crate) mod github;
pub(crate) mod gitlab;
pub mod push;

pub use common::{
    Delivery, Event, EventError, Key, SignatureError, form_payload, hmac_hex, is_form,
};
pub use gitlab::TOLERANCE;

/// Which forge sends a project's webhooks; decides header names, signature
/// format and payload shape (each forge's file in this module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// GitHub: `X-Hub-Signature-256`, `X-GitHub-Event`, `X-GitHub-Delivery`.
    #[default]
    Github,
    /// Gitea and Forgejo: `X-Gitea-Signature`/`X-Forgejo-Signature` (bare hex).
    Gitea,
    /// GitLab: `X-Gitlab-Token` (and Standard Webhooks signatures).
    Gitlab,
    /// Bitbucket Cloud: `X-Hub-Signature`, `X-Event-Key`.
    Bitbucket,
}

impl Provider {
    /// Every forge, in the order [`any_delivery_id`] tries them.
    pub const ALL: [Provider; 4] = [
        Provider::Github,
        Provider::Gitea,
        Provider::Gitlab,
        Provider::Bitbucket,
    ];
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Github => "github",
            Provider::Gitea => "gitea",
            Provider::Gitlab => "gitlab",
            Provider::Bitbucket => "bitbucket",
        })
    }
}

/// Why a request to a project's hook is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Not authenticated: 401, whatever the kind.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Authenticated, but not understood: 415 or 400.
    #[error(transparent)]
    Event(#[from] EventError),
}

/// A delivery that passed [`receive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// What it says.
    pub delivery: Delivery,
    /// The HMAC-SHA256 of the body under the secret that verified it: what
    /// the forge signed, whatever its scheme, so the same body under a new
    /// delivery id is known again (a replay). Kept per key: a capture made
    /// under the previous secret still matches its own MAC.
    pub mac: [u8; 32],
    /// It was signed with the project's previous secret: a rotation is not
    /// finished in the forge.
    pub previous: bool,
}

/// The seam for the HTTP side: verifies a request with the project's
/// secret and, during a rotation, its previous one — both always checked,
/// each in constant time, so the answer's timing does not say which
/// matched — then reads it. Errors are the current secret's, except that a
/// right signature under the previous secret that is out of its time window
/// says so. `reading`: what the project needs of a push (see [`Reading`]).
pub fn receive(
    provider: Provider,
    key: &Key,
    previous: Option<&Key>,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    reading: &Reading<'_>,
) -> Result<Received, Rejected> {
    let current = verified(provider, key, headers, body, now);
    let old = previous.map(|k| (k, verified(provider, k, headers, body, now)));
    let (signer, learnt, was_previous) = match (current, old) {
        (Ok(mac), _) => (key, mac, false),
        (Err(_), Some((k, Ok(mac)))) => (k, mac, true),
        (Err(_), Some((_, Err(SignatureError::Expired)))) => {
            return Err(SignatureError::Expired.into());
        }
        (Err(e), _) => return Err(e.into()),
    };
    Ok(Received {
        delivery: parse_with(provider, headers, body, reading)?,
        // The signature that matched, when it is the body's MAC: one pass
        // of SHA-256 over the body instead of two.
        mac: learnt.unwrap_or_else(|| signer.sign(body)),
        previous: was_previous,
    })
}

/// The seam: verifies a request to a project of `provider` whose secret is
/// `key`, then reads it into a [`Delivery`].
pub fn read(
    provider: Provider,
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Delivery, Rejected> {
    verify(provider, key, headers, body)?;
    Ok(parse(provider, headers, body)?)
}

/// Checks the authentication headers of `provider` on a delivery, now.
pub fn verify(
    provider: Provider,
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    verify_at(provider, key, headers, body, SystemTime::now())
}

/// [`verify`] as if the clock said `now` (only GitLab signatures carry a time).
pub fn verify_at(
    provider: Provider,
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    verified(provider, key, headers, body, now).map(|_| ())
}

/// [`verify_at`], and the body's MAC under `key` when checking the
/// signature computed it.
fn verified(
    provider: Provider,
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<common::BodyMac, SignatureError> {
    match provider {
        Provider::Github => github::verify(key, headers, body, now),
        Provider::Gitea => gitea::verify(key, headers, body, now),
        Provider::Gitlab => gitlab::verify(key, headers, body, now),
        Provider::Bitbucket => bitbucket::verify(key, headers, body, now),
    }
}

/// Parses a delivery that already passed signature verification: content
/// type (415), then event and payload (400).
pub fn parse(provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, EventError> {
    parse_with(provider, headers, body, &Reading::ALL)
}

/// What a project needs read of a push; the rest of the body can go
/// unread (GitLab's and Bitbucket's readers read it all regardless).
pub struct Reading<'a> {
    /// The commits' file lists: the project filters on paths, and nothing
    /// else looks at them. Without them a GitHub or Gitea push keeps no
    /// path.
    pub files: bool,
    /// The project names a repository: a push's is needed to judge it.
    pub repository: bool,
    /// Whether a push with this `repository` and `git_ref` (the only fields
    /// it may look at) could deploy the project. When it cannot, a GitHub
    /// or Gitea push is read no further than its `ref`, `before`, `after`
    /// and `repository` — what GitHub sends first, before the commits that
    /// are most of a body; the push comes back with only those set.
    pub may_deploy: Option<&'a dyn Fn(&Push) -> bool>,
}

impl Reading<'_> {
    /// Everything, whatever the push.
    pub const ALL: Reading<'static> = Reading {
        files: true,
        repository: true,
        may_deploy: None,
    };
}

/// [`parse`], reading of a push what `reading` asks for.
pub fn parse_with(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    reading: &Reading<'_>,
) -> Result<Delivery, EventError> {
    match provider {
        Provider::Github => github::parse(headers, body, reading),
        Provider::Gitea => gitea::parse(headers, body, reading),
        Provider::Gitlab => gitlab::parse(headers, body),
        Provider::Bitbucket => bitbucket::parse(headers, body),
    }
}

/// Each forge's delivery-id headers, best first. The id that matters is the
/// one a redelivery repeats, so it can be answered `duplicate`.
fn delivery_headers(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Github => github::DELIVERY_HEADERS,
        Provider::Gitea => gitea::DELIVERY_HEADERS,
        Provider::Gitlab => gitlab::DELIVERY_HEADERS,
        Provider::Bitbucket => bitbucket::DELIVERY_HEADERS,
    }
}

/// The delivery id `provider` sends, if any.
pub fn delivery_id(provider: Provider, headers: &HeaderMap) -> Option<&str> {
    common::first_header(headers, delivery_headers(provider))
}

/// The delivery id of a request whose project (and so forge) is not known
/// yet, for the log line: the first forge's whose headers are present. It is
/// the id [`parse`] finds, since each forge sends only its own headers (and
/// Gitea's X-GitHub-Delivery is its own id again).
pub fn any_delivery_id(headers: &HeaderMap) -> Option<&str> {
    Provider::ALL
        .into_iter()
        .find_map(|p| delivery_id(p, headers))
}

/// Why a `secret` cannot be used by a `provider` project, for `check`.
pub fn secret_problem(provider: Provider, secret: &str) -> Option<String> {
    match provider {
        Provider::Gitlab => gitlab::secret_problem(secret),
        Provider::Github | Provider::Gitea | Provider::Bitbucket => None,
    }
}

/// Every header that authenticates `body` as `provider` would send it; for
/// a GitLab project whose secret is a signing token, the Standard Webhooks
/// trio for message `id` at time `now`. `None` for a GitLab project with a
/// plain secret token: there is nothing to compute, and deployd never prints
/// a secret.
pub fn sign_headers(
    provider: Provider,
    key: &Key,
    body: &[u8],
    now: SystemTime,
    id: &str,
) -> Option<Vec<(&'static str, String)>> {
    match provider {
        Provider::Github => Some(github::sign(key, body)),
        Provider::Gitea => Some(gitea::sign(key, body)),
        Provider::Gitlab => gitlab::sign(key, body, now, id),
        Provider::Bitbucket => Some(bitbucket::sign(key, body)),
    }
}

/// The one header a forge would send for `body`. `None` for GitLab, which
/// sends either the secret itself or a signature that needs more than one
/// header (see [`sign_headers`]).
pub fn sign_header(provider: Provider, key: &Key, body: &[u8]) -> Option<(&'static str, String)> {
    match provider {
        Provider::Github => Some(github::sign(key, body)),
        Provider::Gitea => Some(gitea::sign(key, body)),
        Provider::Bitbucket => Some(bitbucket::sign(key, body)),
        Provider::Gitlab => None,
    }?
    .pop()
}

#[cfg(test)]
mod tests {
    #[test]
    fn of_a_workflow_run_again_only_the_newest_run_counts() {
        use crate::forge::ci::CiState;
        use crate::forge::common::tests::{SHA, passed_run};
        let failed = crate::forge::ci::CiRun {
            state: CiState::Failed,
            conclusion: "timed_out".into(),
            ..passed_run("CI", "main", "acme/app", "7#1", "x")
        };
        let other_commit = crate::forge::ci::CiRun {
            sha: "f".repeat(40),
            ..passed_run("Lint", "main", "acme/app", "8#1", "x")
        };
        // Newest first, as the forges list them.
        let runs = vec![
            passed_run("CI", "main", "acme/app", "7#2", "x"),
            other_commit,
            failed,
            passed_run("Lint", "main", "acme/app", "9#1", "x"),
        ];
        let kept: Vec<(String, String)> = newest_per_workflow(runs, SHA)
            .into_iter()
            .map(|r| (r.workflow, r.run))
            .collect();
        assert_eq!(
            kept,
            [
                ("CI".to_string(), "7#2".to_string()),
                ("Lint".into(), "9#1".into())
            ]
        );
    }

    use super::*;
    use common::tests::headers;

    #[test]
    fn sign_headers_per_forge() {
        let key = Key::new(b"forge secret");
        let body = b"{}";
        let hex = hmac_hex(&key, body);
        let at0 = SystemTime::UNIX_EPOCH;
        let one = |p| sign_headers(p, &key, body, at0, "unused").unwrap();
        assert_eq!(
            one(Provider::Github),
            vec![("X-Hub-Signature-256", format!("sha256={hex}"))]
        );
        assert_eq!(
            one(Provider::Gitea),
            vec![("X-Gitea-Signature", hex.clone())]
        );
        assert_eq!(
            one(Provider::Bitbucket),
            vec![("X-Hub-Signature", format!("sha256={hex}"))]
        );
        // One header each, the same as `sign_header`; none for GitLab,
        // whatever its secret.
        for p in [Provider::Github, Provider::Gitea, Provider::Bitbucket] {
            assert_eq!(sign_header(p, &key, body), one(p).pop());
        }
        assert!(sign_header(Provider::Gitlab, &key, body).is_none());
        assert!(sign_headers(Provider::Gitlab, &key, body, at0, "id").is_none());
        let whsec = Key::new(b"whsec_c2VjcmV0");
        assert!(sign_header(Provider::Gitlab, &whsec, body).is_none());
    }

    #[test]
    fn only_gitlab_has_a_secret_form() {
        assert!(secret_problem(Provider::Gitlab, "whsec_not base64!").is_some());
        assert!(secret_problem(Provider::Github, "whsec_not base64!").is_none());
    }

    #[test]
    fn the_seam_verifies_before_it_reads() {
        let key = Key::new(b"forge secret");
        let body = br#"{"ref":"refs/heads/main","after":"1"}"#;
        // Not signed: 401 before the missing content type (415) is seen.
        assert_eq!(
            read(Provider::Github, &key, &HeaderMap::new(), body),
            Err(Rejected::Signature(SignatureError::Missing))
        );
        let (name, value) = sign_header(Provider::Github, &key, body).unwrap();
        let signed = headers(&[(name, &value)]);
        assert!(matches!(
            read(Provider::Github, &key, &signed, body),
            Err(Rejected::Event(EventError::ContentType(_)))
        ));
        let h = headers(&[
            (name, &value),
            ("content-type", "application/json"),
            ("x-github-event", "push"),
        ]);
        assert_eq!(
            read(Provider::Github, &key, &h, body),
            Ok(parse(Provider::Github, &h, body).unwrap())
        );
    }

    #[test]
    fn the_signature_that_matched_is_the_body_mac_only_when_it_signs_the_body() {
        let key = Key::new(b"secret");
        let body = br#"{"ref":"refs/heads/main","after":"1"}"#;
        let now = SystemTime::now();
        for provider in [Provider::Github, Provider::Gitea, Provider::Bitbucket] {
            let (name, value) = sign_header(provider, &key, body).unwrap();
            let h = headers(&[(name, &value), ("content-type", "application/json")]);
            assert_eq!(
                verified(provider, &key, &h, body, now),
                Ok(Some(key.sign(body))),
                "{provider:?}"
            );
        }
        // A Gitea form: the signature covers the payload field, not the body.
        let form = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
        let field = br#"{"ref":"refs/heads/main"}"#;
        let (name, value) = sign_header(Provider::Gitea, &key, field).unwrap();
        let h = headers(&[
            (name, &value),
            ("content-type", "application/x-www-form-urlencoded"),
        ]);
        assert_eq!(verified(Provider::Gitea, &key, &h, form, now), Ok(None));
        // A GitLab token says nothing of the body.
        let h = headers(&[("x-gitlab-token", "secret")]);
        assert_eq!(verified(Provider::Gitlab, &key, &h, body, now), Ok(None));
    }

    #[test]
    fn a_rotation_accepts_either_secret_and_says_which() {
        let new = Key::new(b"new secret");
        let old = Key::new(b"old secret");
        let body = br#"{"ref":"refs/heads/main","after":"1"}"#;
        let now = SystemTime::now();
        let with = |key: &Key| {
            let (name, value) = sign_header(Provider::Github, key, body).unwrap();
            headers(&[
                (name, &value),
                ("content-type", "application/json"),
                ("x-github-event", "push"),
            ])
        };
        // The delivery signed with `signer`, checked against `previous` too.
        let rx = |previous: Option<&Key>, signer: &Key| {
            receive(
                Provider::Github,
                &new,
                previous,
                &with(signer),
                body,
                now,
                &Reading::ALL,
            )
        };
        let got = rx(Some(&old), &new).unwrap();
        assert!(!got.previous);
        assert_eq!(got.mac, new.sign(body));
        let got = rx(Some(&old), &old).unwrap();
        assert!(got.previous);
        // The MAC under the key that verified it: a capture made before the
        // rotation is known by the MAC it was accepted with.
        assert_eq!(got.mac, old.sign(body));
        // Without the previous key, the old signature is refused; and a
        // third secret is refused either way.
        assert_eq!(
            rx(None, &old),
            Err(Rejected::Signature(SignatureError::Mismatch))
        );
        let other = Key::new(b"neither");
        assert_eq!(
            rx(Some(&old), &other),
            Err(Rejected::Signature(SignatureError::Mismatch))
        );
        // GitLab's token works the same way.
        let token = |t: &str| {
            headers(&[
                ("x-gitlab-token", t),
                ("content-type", "application/json"),
                ("x-gitlab-event", "Push Hook"),
            ])
        };
        let got = receive(
            Provider::Gitlab,
            &new,
            Some(&old),
            &token("old secret"),
            body,
            now,
            &Reading::ALL,
        )
        .unwrap();
        assert!(got.previous);
    }

    #[test]
    fn delivery_ids_agree_with_the_log_line() {
        // What a forge sends; the log line (project unknown) must name the
        // same id the dedupe uses.
        type Case<'a> = (Provider, &'a [(&'static str, &'a str)], Option<&'a str>);
        let cases: [Case; 6] = [
            (Provider::Github, &[("x-github-delivery", "gh")], Some("gh")),
            (
                Provider::Gitea,
                &[
                    ("x-github-delivery", "u"),
                    ("x-gitea-delivery", "u"),
                    ("x-forgejo-delivery", "u"),
                ],
                Some("u"),
            ),
            (
                Provider::Gitlab,
                &[
                    ("x-gitlab-webhook-uuid", "per-request"),
                    ("x-gitlab-event-uuid", "per-event"),
                    ("idempotency-key", "kept"),
                    ("webhook-id", "kept"),
                ],
                Some("kept"),
            ),
            (
                Provider::Gitlab,
                &[("x-gitlab-webhook-uuid", "per-request")],
                Some("per-request"),
            ),
            (
                Provider::Bitbucket,
                &[("x-request-uuid", "bb"), ("x-hook-uuid", "the-hook")],
                Some("bb"),
            ),
            (Provider::Bitbucket, &[("x-hook-uuid", "the-hook")], None),
        ];
        for (provider, pairs, want) in cases {
            let h = headers(pairs);
            assert_eq!(delivery_id(provider, &h), want, "{provider}");
            assert_eq!(any_delivery_id(&h), want, "{provider}");
        }
    }
}

/// What a commit status says (each forge has its own words for these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    /// Under way (GitHub/Gitea `pending`, GitLab `running`, Bitbucket
    /// `INPROGRESS`).
    Pending,
    /// Deployed.
    Success,
    /// The deploy failed.
    Failure,
    /// It did not finish (timed out, interrupted).
    Error,
}

/// One commit status to set: what the run lifecycle says, in no forge's
/// words. Each forge's file turns it into its API call.
#[derive(Debug, Clone)]
pub struct StatusReport {
    /// The project (names the deployment kept between calls).
    pub project: String,
    /// The run (names the deployment kept between calls).
    pub run_id: u64,
    /// `owner/name` (GitLab: the full path; Bitbucket: `workspace/slug`).
    pub repository: String,
    /// The commits to mark: the pushed one, and the deployed one when the
    /// script says it differs.
    pub shas: Vec<String>,
    /// What to say.
    pub state: CommitState,
    /// One line.
    pub description: String,
    /// Where the deployed thing lives (`outputs.url`).
    pub target_url: Option<String>,
    /// The status's name.
    pub context: String,
    /// GitHub: report as a deployment to this environment.
    pub environment: Option<String>,
}

/// The API a provider's status calls go to when `api_url` is not set.
pub fn default_api_url(provider: Provider) -> &'static str {
    match provider {
        Provider::Github => "https://api.github.com",
        Provider::Gitea => "https://gitea.com/api/v1",
        Provider::Gitlab => "https://gitlab.com/api/v4",
        Provider::Bitbucket => "https://api.bitbucket.org",
    }
}

/// Sets `status` on the forge (blocking). `api_url` and `token` come from
/// the project's `report`; `store` is a directory where a forge keeps what
/// must outlive one call (GitHub's deployment ids).
pub fn report(
    provider: Provider,
    api_url: &str,
    token: &str,
    status: &StatusReport,
    store: &std::path::Path,
) -> crate::http_client::Attempt {
    if status.shas.is_empty() {
        return crate::http_client::Attempt::Delivered("no commit to report on".into());
    }
    match provider {
        Provider::Github => github::report(api_url, token, status, store),
        Provider::Gitea => gitea::report(api_url, token, status),
        Provider::Gitlab => gitlab::report(api_url, token, status),
        Provider::Bitbucket => bitbucket::report(api_url, token, status),
    }
}

/// Sends each request in turn, stopping at the first that is not delivered.
pub(crate) fn send_all(
    requests: Vec<crate::http_client::Outgoing>,
    hint: &str,
) -> crate::http_client::Attempt {
    use crate::http_client::{self, Attempt};
    let mut last = Attempt::Delivered(String::new());
    for req in requests {
        last = match http_client::send(&req) {
            Ok(resp) => Attempt::from_response(&resp, hint),
            Err(error) => Attempt::Retry { error, after: None },
        };
        if !matches!(last, Attempt::Delivered(_)) {
            return last;
        }
    }
    last
}

/// One call to a forge's API whose answer is read (blocking): the body of a
/// 2xx answer (up to [`crate::http_client::MAX_LIST`]), or why there is none
/// — a transport error, or the status with the start of the answer and
/// `hint`, what to check.
pub(crate) fn fetch(req: &crate::http_client::Outgoing, hint: &str) -> Result<String, String> {
    use crate::http_client::{self, Attempt};
    let resp = http_client::send_limited(req, http_client::MAX_LIST)?;
    match Attempt::from_response(&resp, hint) {
        Attempt::Delivered(_) => Ok(resp.body),
        Attempt::Retry { error, .. } => Err(error),
        Attempt::Refused { error, hint } => Err(format!("{error} ({hint})")),
    }
}

/// The CI results `provider` holds for commit `sha` of `repository`
/// (blocking), in the shape its CI events are read into, oldest first:
/// GitHub's and Gitea's workflow runs, GitLab's pipelines, Bitbucket's build
/// statuses. `api_url` and `token` are the project's `report`'s. What the
/// forge does not say is left empty (a run's branch, often, on Bitbucket).
pub fn ci_of_commit(
    provider: Provider,
    api_url: &str,
    token: &str,
    repository: &str,
    sha: &str,
) -> Result<Vec<crate::forge::ci::CiRun>, String> {
    let runs = match provider {
        Provider::Github => github::ci_of_commit(api_url, token, repository, sha),
        Provider::Gitea => gitea::ci_of_commit(api_url, token, repository, sha),
        Provider::Gitlab => gitlab::ci_of_commit(api_url, token, repository, sha),
        Provider::Bitbucket => bitbucket::ci_of_commit(api_url, token, repository, sha),
    }?;
    Ok(newest_per_workflow(runs, sha))
}

/// The runs of commit `sha`, the newest of each workflow. A forge that
/// ignores the filter lists other commits' runs too. Each lists the newest
/// first: of a workflow run again (a re-run, a new pipeline), only the
/// newest counts, as its webhook would have come last; an older failure
/// must not fail what passed since.
fn newest_per_workflow(
    runs: Vec<crate::forge::ci::CiRun>,
    sha: &str,
) -> Vec<crate::forge::ci::CiRun> {
    let mut seen = std::collections::HashSet::new();
    runs.into_iter()
        .filter(|r| r.sha == sha && seen.insert(r.workflow.clone()))
        .collect()
}

pub use github::HookDelivery;

/// GitHub's list of a webhook's deliveries and its ask to make one again,
/// used at start to redeliver the failed ones (docs/catch-up.md; no other
/// forge has them).
pub use github::{hook_deliveries as github_hook_deliveries, redeliver as github_redeliver};
