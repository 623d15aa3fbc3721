//! What a verified delivery says: its event, its delivery id and, for a push,
//! the few payload fields deployd uses; then the filter that decides whether
//! a push deploys.
//!
//! Payloads are parsed only after the signature checked out, and only the
//! fields used are read (borrowed where the JSON has no escapes). Each forge
//! has its own small function here; the rest of the program sees [`Push`].

use std::borrow::Cow;

use hyper::HeaderMap;
use serde::Deserialize;

use crate::config::{Project, Provider};

/// A push, whatever forge sent it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main`.
    pub git_ref: String,
    /// Commit before the push (40 zeros for a new branch).
    pub before: String,
    /// Commit after the push (40 zeros for a deleted branch).
    pub after: String,
    /// `owner/name`.
    pub repository: String,
    /// Who pushed (a user name).
    pub pusher: String,
    /// The push deleted the ref.
    pub deleted: bool,
}

/// The event a delivery carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The forge checking the hook works.
    Ping,
    /// One or more ref updates (GitHub sends one, Bitbucket may send
    /// several); never empty. The filter picks the one that deploys.
    Push(Vec<Push>),
    /// Any other event, by its name; answered `ignored`.
    Other(String),
}

/// A parsed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The forge's delivery id, used to answer redeliveries `duplicate`.
    pub id: Option<String>,
    /// What happened.
    pub event: Event,
}

/// Why a signed delivery could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Neither JSON nor a form with a `payload` field: 415.
    #[error(
        "unsupported content type {0:?}: send application/json or application/x-www-form-urlencoded"
    )]
    ContentType(String),
    /// No event header: 400.
    #[error("missing {0} header")]
    MissingEvent(&'static str),
    /// The body is not the payload the event promises: 400.
    #[error("malformed payload: {0}")]
    Payload(String),
}

/// A project's content types: JSON, or a form whose `payload` field holds JSON.
enum Body {
    Json,
    Form,
}

/// Checks the content type (415) without looking at the body.
fn content_type(headers: &HeaderMap) -> Result<Body, EventError> {
    let raw = headers
        .get(hyper::header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let media = raw.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(Body::Json)
    } else if media.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(Body::Form)
    } else {
        Err(EventError::ContentType(raw))
    }
}

/// The JSON document of a body: itself, or a form's `payload` field.
fn json_of<'a>(kind: Body, body: &'a [u8]) -> Result<Cow<'a, [u8]>, EventError> {
    match kind {
        Body::Json => Ok(Cow::Borrowed(body)),
        Body::Form => form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| Cow::Owned(v.into_owned().into_bytes()))
            .ok_or_else(|| EventError::Payload("form body without a payload field".into())),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Parses a delivery that already passed signature verification.
/// Checks run in SPEC order: content type (415), then event and payload (400).
pub fn parse(provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, EventError> {
    let kind = content_type(headers)?;
    match provider {
        Provider::Github => github(headers, kind, body),
        Provider::Gitea => gitea(headers, kind, body),
        Provider::Gitlab => gitlab(headers, kind, body),
        Provider::Bitbucket => bitbucket(headers, kind, body),
    }
}

fn payload<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, EventError> {
    serde_json::from_slice(json).map_err(|e| EventError::Payload(e.to_string()))
}

#[derive(Deserialize)]
struct GhPush<'a> {
    #[serde(rename = "ref", borrow)]
    git_ref: Cow<'a, str>,
    #[serde(borrow, default)]
    before: Cow<'a, str>,
    #[serde(borrow)]
    after: Cow<'a, str>,
    #[serde(default)]
    deleted: bool,
    #[serde(borrow)]
    repository: Option<Repo<'a>>,
    #[serde(borrow)]
    pusher: Option<Who<'a>>,
}

#[derive(Deserialize)]
struct Repo<'a> {
    #[serde(borrow)]
    full_name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Who<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    login: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
}

impl Who<'_> {
    fn user(&self) -> String {
        self.login
            .as_ref()
            .or(self.username.as_ref())
            .or(self.name.as_ref())
            .map(|s| s.to_string())
            .unwrap_or_default()
    }
}

fn zeros(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// GitHub, and Gitea/Forgejo which send the same push shape.
fn github_like(
    event: &str,
    id: Option<&str>,
    kind: Body,
    body: &[u8],
) -> Result<Delivery, EventError> {
    let id = id.map(str::to_string);
    let event = match event {
        "ping" => Event::Ping,
        "push" => {
            let json = json_of(kind, body)?;
            let p: GhPush = payload(&json)?;
            let after = p.after.into_owned();
            Event::Push(vec![Push {
                deleted: p.deleted || zeros(&after),
                git_ref: p.git_ref.into_owned(),
                before: p.before.into_owned(),
                after,
                repository: p
                    .repository
                    .and_then(|r| r.full_name)
                    .map(Cow::into_owned)
                    .unwrap_or_default(),
                pusher: p.pusher.map(|w| w.user()).unwrap_or_default(),
            }])
        }
        other => Event::Other(other.to_string()),
    };
    Ok(Delivery { id, event })
}

fn github(headers: &HeaderMap, kind: Body, body: &[u8]) -> Result<Delivery, EventError> {
    let event =
        header_str(headers, "x-github-event").ok_or(EventError::MissingEvent("X-GitHub-Event"))?;
    github_like(event, header_str(headers, "x-github-delivery"), kind, body)
}

fn gitea(headers: &HeaderMap, kind: Body, body: &[u8]) -> Result<Delivery, EventError> {
    let event = header_str(headers, "x-gitea-event")
        .or_else(|| header_str(headers, "x-forgejo-event"))
        .ok_or(EventError::MissingEvent("X-Gitea-Event"))?;
    let id = header_str(headers, "x-gitea-delivery")
        .or_else(|| header_str(headers, "x-forgejo-delivery"));
    github_like(event, id, kind, body)
}

#[derive(Deserialize)]
struct GlPush<'a> {
    #[serde(rename = "ref", borrow)]
    git_ref: Cow<'a, str>,
    #[serde(borrow, default)]
    before: Cow<'a, str>,
    #[serde(borrow)]
    after: Cow<'a, str>,
    #[serde(borrow, default)]
    checkout_sha: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    user_username: Option<Cow<'a, str>>,
    #[serde(borrow)]
    project: Option<GlProject<'a>>,
}

#[derive(Deserialize)]
struct GlProject<'a> {
    #[serde(borrow)]
    path_with_namespace: Option<Cow<'a, str>>,
}

fn gitlab(headers: &HeaderMap, kind: Body, body: &[u8]) -> Result<Delivery, EventError> {
    let event =
        header_str(headers, "x-gitlab-event").ok_or(EventError::MissingEvent("X-Gitlab-Event"))?;
    let id = header_str(headers, "x-gitlab-webhook-uuid")
        .or_else(|| header_str(headers, "idempotency-key"))
        .map(str::to_string);
    let event = match event {
        "Push Hook" => {
            let json = json_of(kind, body)?;
            let p: GlPush = payload(&json)?;
            let after = p.after.into_owned();
            // GitLab sends `checkout_sha: null` for a deletion; otherwise it
            // names the commit to check out, which is `after` for a branch push.
            let deleted = zeros(&after) || p.checkout_sha.is_none();
            Event::Push(vec![Push {
                deleted,
                git_ref: p.git_ref.into_owned(),
                before: p.before.into_owned(),
                after,
                repository: p
                    .project
                    .and_then(|p| p.path_with_namespace)
                    .map(Cow::into_owned)
                    .unwrap_or_default(),
                pusher: p.user_username.map(Cow::into_owned).unwrap_or_default(),
            }])
        }
        other => Event::Other(other.to_string()),
    };
    Ok(Delivery { id, event })
}

#[derive(Deserialize)]
struct BbPush<'a> {
    #[serde(borrow)]
    push: BbChanges<'a>,
    #[serde(borrow)]
    repository: Option<Repo<'a>>,
    #[serde(borrow)]
    actor: Option<BbActor<'a>>,
}

#[derive(Deserialize)]
struct BbChanges<'a> {
    #[serde(borrow, default)]
    changes: Vec<BbChange<'a>>,
}

#[derive(Deserialize)]
struct BbChange<'a> {
    #[serde(borrow)]
    new: Option<BbRef<'a>>,
    #[serde(borrow)]
    old: Option<BbRef<'a>>,
}

#[derive(Deserialize)]
struct BbRef<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    target: Option<BbTarget<'a>>,
}

#[derive(Deserialize)]
struct BbTarget<'a> {
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

#[derive(Deserialize)]
struct BbActor<'a> {
    #[serde(borrow, default)]
    nickname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    display_name: Option<Cow<'a, str>>,
}

/// Bitbucket Cloud: one delivery may carry several ref changes, each a
/// [`Push`]; [`choose`] deploys the one to the project's branch.
fn bitbucket(headers: &HeaderMap, kind: Body, body: &[u8]) -> Result<Delivery, EventError> {
    let event =
        header_str(headers, "x-event-key").ok_or(EventError::MissingEvent("X-Event-Key"))?;
    let id = header_str(headers, "x-request-uuid").map(str::to_string);
    let event = match event {
        "repo:push" => {
            let json = json_of(kind, body)?;
            let p: BbPush = payload(&json)?;
            let repository = p
                .repository
                .and_then(|r| r.full_name)
                .map(Cow::into_owned)
                .unwrap_or_default();
            let pusher = p
                .actor
                .and_then(|a| a.nickname.or(a.username).or(a.display_name))
                .map(Cow::into_owned)
                .unwrap_or_default();
            let pushes = p
                .push
                .changes
                .into_iter()
                .map(|c| bitbucket_change(c, &repository, &pusher))
                .collect::<Vec<_>>();
            if pushes.is_empty() {
                return Err(EventError::Payload("push without changes".into()));
            }
            Event::Push(pushes)
        }
        other => Event::Other(other.to_string()),
    };
    Ok(Delivery { id, event })
}

fn bitbucket_change(c: BbChange<'_>, repository: &str, pusher: &str) -> Push {
    let zero = "0".repeat(40);
    let hash = |r: &Option<BbRef<'_>>| {
        r.as_ref()
            .and_then(|r| r.target.as_ref())
            .map(|t| t.hash.to_string())
            .unwrap_or_else(|| zero.clone())
    };
    let (before, after) = (hash(&c.old), hash(&c.new));
    let named = c.new.as_ref().or(c.old.as_ref());
    let git_ref = named
        .map(|r| match r.kind.as_ref() {
            "tag" => format!("refs/tags/{}", r.name),
            _ => format!("refs/heads/{}", r.name),
        })
        .unwrap_or_default();
    Push {
        git_ref,
        before,
        deleted: c.new.is_none(),
        after,
        repository: repository.to_string(),
        pusher: pusher.to_string(),
    }
}

/// What to do with a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deploy it.
    Deploy,
    /// Answer `ignored` with this reason.
    Ignore(String),
}

/// Picks the push of a delivery that deploys `project`, or says why none does
/// (the reason of the first push).
pub fn choose(project: &Project, pushes: Vec<Push>) -> Result<Push, String> {
    let mut reason = None;
    for push in pushes {
        match filter(project, &push) {
            Verdict::Deploy => return Ok(push),
            Verdict::Ignore(r) => {
                reason.get_or_insert(r);
            }
        }
    }
    Err(reason.unwrap_or_else(|| "push without changes".into()))
}

/// Decides whether `push` deploys `project`.
pub fn filter(project: &Project, push: &Push) -> Verdict {
    if let Some(want) = &project.repository
        && !want.eq_ignore_ascii_case(&push.repository)
    {
        return Verdict::Ignore(format!(
            "repository {:?} is not {:?}",
            push.repository, want
        ));
    }
    if let Some(tag) = push.git_ref.strip_prefix("refs/tags/") {
        return Verdict::Ignore(format!("tag {tag}"));
    }
    let Some(branch) = push.git_ref.strip_prefix("refs/heads/") else {
        return Verdict::Ignore(format!("ref {:?} is not a branch", push.git_ref));
    };
    if branch != project.branch {
        return Verdict::Ignore(format!(
            "branch {branch} is not the deploy branch {}",
            project.branch
        ));
    }
    if push.deleted {
        return Verdict::Ignore(format!("branch {branch} was deleted"));
    }
    Verdict::Deploy
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn gh_push(git_ref: &str, after: &str, repo: &str) -> String {
        serde_json::json!({
            "ref": git_ref, "before": "1111111111111111111111111111111111111111", "after": after,
            "created": false, "deleted": zeros(after),
            "repository": {"full_name": repo, "name": "x", "owner": {"login": "acme"}},
            "pusher": {"name": "octocat", "email": "o@example.com"},
            "commits": [{"id": after, "message": "a \"quoted\" message\n"}],
        })
        .to_string()
    }

    fn project(branch: &str, repository: Option<&str>) -> Project {
        let text = format!(
            "[projects.app]\nsecret = \"x\"\nscript = \"/bin/sh\"\nbranch = \"{branch}\"\n{}",
            repository
                .map(|r| format!("repository = \"{r}\"\n"))
                .unwrap_or_default()
        );
        crate::config::parse(
            &text,
            std::path::Path::new("/x.toml"),
            &crate::config::SystemSecrets,
        )
        .unwrap()
        .projects
        .remove("app")
        .unwrap()
    }

    fn gh(event: &str, ctype: &str, body: &[u8]) -> Result<Delivery, EventError> {
        parse(
            Provider::Github,
            &headers(&[
                ("x-github-event", event),
                ("x-github-delivery", "d-1"),
                ("content-type", ctype),
            ]),
            body,
        )
    }

    #[test]
    fn json_and_form_bodies_parse_alike() {
        let json = gh_push("refs/heads/main", SHA, "acme/app");
        let a = gh("push", "application/json", json.as_bytes()).unwrap();
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &json)
            .finish();
        let b = gh("push", "application/x-www-form-urlencoded", form.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.id.as_deref(), Some("d-1"));
        let Event::Push(mut p) = a.event else {
            panic!()
        };
        let p = p.remove(0);
        assert_eq!(p.git_ref, "refs/heads/main");
        assert_eq!(p.after, SHA);
        assert_eq!(p.repository, "acme/app");
        assert_eq!(p.pusher, "octocat");
        assert!(!p.deleted);
        // Charset parameters and case do not matter.
        assert!(gh("push", "Application/JSON; charset=utf-8", json.as_bytes()).is_ok());
    }

    #[test]
    fn malformed_input() {
        assert!(matches!(
            gh("push", "text/plain", b"{}"),
            Err(EventError::ContentType(_))
        ));
        assert!(matches!(
            gh("push", "", b"{}"),
            Err(EventError::ContentType(_))
        ));
        assert!(matches!(
            gh("push", "application/json", b"{\"ref\": 1}"),
            Err(EventError::Payload(_))
        ));
        assert!(matches!(
            gh("push", "application/json", b"\xff\xfe"),
            Err(EventError::Payload(_))
        ));
        assert!(matches!(
            gh("push", "application/x-www-form-urlencoded", b"other=1"),
            Err(EventError::Payload(_))
        ));
        let no_event = parse(
            Provider::Github,
            &headers(&[("content-type", "application/json")]),
            b"{}",
        );
        assert_eq!(no_event, Err(EventError::MissingEvent("X-GitHub-Event")));
        // Ping and other events need no particular payload.
        assert_eq!(
            gh("ping", "application/json", b"{}").unwrap().event,
            Event::Ping
        );
        assert_eq!(
            gh("issues", "application/json", b"{}").unwrap().event,
            Event::Other("issues".into())
        );
    }

    #[test]
    fn the_filter() {
        let p = project("main", Some("acme/app"));
        let push = |r: &str, after: &str, repo: &str| {
            let body = gh_push(r, after, repo);
            match gh("push", "application/json", body.as_bytes())
                .unwrap()
                .event
            {
                Event::Push(mut p) => p.remove(0),
                e => panic!("{e:?}"),
            }
        };
        assert_eq!(
            filter(&p, &push("refs/heads/main", SHA, "acme/app")),
            Verdict::Deploy
        );
        // Repository names compare without case, as GitHub treats them.
        assert_eq!(
            filter(&p, &push("refs/heads/main", SHA, "ACME/App")),
            Verdict::Deploy
        );
        let ignored = |v: Verdict| match v {
            Verdict::Ignore(r) => r,
            Verdict::Deploy => panic!("deployed"),
        };
        assert!(
            ignored(filter(&p, &push("refs/heads/dev", SHA, "acme/app"))).contains("branch dev")
        );
        assert!(ignored(filter(&p, &push("refs/tags/v1.0", SHA, "acme/app"))).contains("tag v1.0"));
        assert!(
            ignored(filter(
                &p,
                &push("refs/heads/main", &"0".repeat(40), "acme/app")
            ))
            .contains("deleted")
        );
        assert!(
            ignored(filter(&p, &push("refs/heads/main", SHA, "evil/app"))).contains("repository")
        );
        assert!(
            ignored(filter(&p, &push("refs/notes/x", SHA, "acme/app"))).contains("not a branch")
        );
        // A push that creates the deploy branch deploys.
        let mut created = push("refs/heads/main", SHA, "acme/app");
        created.before = "0".repeat(40);
        assert_eq!(filter(&p, &created), Verdict::Deploy);
        // Without `repository`, any repository's push counts.
        let any = project("release", None);
        assert_eq!(
            filter(&any, &push("refs/heads/release", SHA, "who/ever")),
            Verdict::Deploy
        );
    }
}
