//! Gitea and Forgejo: everything deployd knows of their webhooks. Forgejo
//! sends Gitea's headers and its own; Forgejo's are preferred when present.
//!
//! | what | where |
//! | --- | --- |
//! | signature | `X-Forgejo-Signature` / `X-Gitea-Signature: <hex>`, the HMAC-SHA256 of the JSON document: the body, or a form's `payload` field |
//! | event | `X-Forgejo-Event` / `X-Gitea-Event`: `push`, `workflow_run` (Gitea's Actions; Forgejo sends none); any other is ignored |
//! | delivery id | `X-Forgejo-Delivery` / `X-Gitea-Delivery` |
//! | push | GitHub's shape (see `github.rs`), pusher `pusher.login`; no `forced` flag; `commits` holds at most the instance's webhook commit limit of `total_commits` |

use std::borrow::Cow;
use std::time::SystemTime;

use hyper::HeaderMap;

use super::common::{
    Body, BodyMac, Delivery, Event, EventError, Key, SignatureError, auth_header, form_payload,
    header_str, hmac_hex, is_form, parse_hex, read_delivery,
};
use super::{Reading, StatusReport, github};
use crate::forge::ci::CiRun;
use crate::http_client::Attempt;

/// The delivery-id headers, best first. Forgejo sends one UUID under both
/// names (and as X-GitHub-Delivery).
pub(super) const DELIVERY_HEADERS: &[&str] = &["x-forgejo-delivery", "x-gitea-delivery"];

/// Gitea and Forgejo send the same bare hex under both names; Forgejo's is
/// preferred when present (a bad one is not rescued by the other). They sign
/// the JSON payload before encoding it, so a form delivery's signature covers
/// its `payload` field, not the body as received.
pub(super) fn verify(
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    _now: SystemTime,
) -> Result<BodyMac, SignatureError> {
    let value = match auth_header(headers, "x-forgejo-signature") {
        Err(SignatureError::Missing) => auth_header(headers, "x-gitea-signature")?,
        other => other?,
    };
    let sig = parse_hex(value)?;
    let signed = if is_form(headers) {
        // Exactly the field `parse` reads, so what is parsed is what was
        // verified.
        match form_payload(body) {
            Some(p) => Cow::Owned(p),
            None => return Err(SignatureError::Mismatch),
        }
    } else {
        Cow::Borrowed(body)
    };
    if key.verify_raw(&sig, &signed) {
        // A form's signature covers its field, not the body.
        Ok(matches!(signed, Cow::Borrowed(_)).then_some(sig))
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The header Gitea would send for `body` (the JSON document).
pub(super) fn sign(key: &Key, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![("X-Gitea-Signature", hmac_hex(key, body))]
}

/// Reads a verified delivery.
pub(super) fn parse(
    headers: &HeaderMap,
    body: &[u8],
    reading: &Reading<'_>,
) -> Result<Delivery, EventError> {
    read_delivery(headers, body, DELIVERY_HEADERS, |h, kind, b| {
        event(h, kind, b, reading)
    })
}

/// GitHub's push shape under their own headers. A branch deletion comes as
/// a `delete` event (ignored); a push with zeros for `after` is read as one
/// too, to be safe.
fn event(
    headers: &HeaderMap,
    kind: Body,
    body: &[u8],
    reading: &Reading<'_>,
) -> Result<Event, EventError> {
    let event = header_str(headers, "x-forgejo-event")
        .or_else(|| header_str(headers, "x-gitea-event"))
        .ok_or(EventError::MissingEvent("X-Gitea-Event"))?;
    Ok(match event {
        "push" => {
            let push = github::read_push(kind, body, github::Shape::Gitea, reading)?;
            // The "Test delivery" button sends a push of the default branch
            // with before == after (the head commit, or zeros since Gitea
            // 1.22). No ref moved: answer it as a ping, as GitHub's test is.
            if push.before == push.after {
                Event::Ping
            } else {
                Event::Push(vec![push])
            }
        }
        // Gitea's Actions runs, in GitHub's shape. Forgejo sends no
        // `workflow_run`; its `action_run_success`/`action_run_failure`
        // events are ignored like any other.
        "workflow_run" => Event::Ci(github::read_workflow_run(kind, body)?),
        other => Event::Other(other.to_string()),
    })
}

/// Gitea and Forgejo commit statuses: `POST /repos/{owner}/{repo}/statuses/{sha}`
/// with `Authorization: token <token>` and `state` (`pending`, `success`,
/// `failure`, `error`), `target_url`, `description`, `context`.
pub(super) fn report(api_url: &str, token: &str, s: &StatusReport) -> Attempt {
    let requests = super::github::commit_statuses(api_url, s, &s.description)
        .into_iter()
        .map(|r| {
            r.header("Authorization", format!("token {token}"))
                .header("Accept", "application/json")
        })
        .collect();
    super::send_all(
        requests,
        "check the report token (Gitea/Forgejo: scope write:repository), \
         api_url, and the project's repository",
    )
}

/// The Actions runs Gitea holds for commit `sha` (blocking):
/// `GET /repos/{owner}/{repo}/actions/runs?head_sha={sha}` (Gitea 1.24 and
/// later, the versions that send `workflow_run` too), read in GitHub's
/// shape. A Forgejo without that call answers 404: the catch-up then waits
/// for a CI event.
pub(super) fn ci_of_commit(
    api_url: &str,
    token: &str,
    repository: &str,
    sha: &str,
) -> Result<Vec<CiRun>, String> {
    let req = github::workflow_runs_request(api_url, repository, sha)
        .header("Authorization", format!("token {token}"))
        .header("Accept", "application/json");
    let body = super::fetch(
        &req,
        "check the report token (Gitea: scope read:repository), api_url, the project's \
         repository, and that this Gitea has Actions (1.24 or later)",
    )?;
    github::read_workflow_runs(&body, repository)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Reads as for a project with path filters: everything.
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Delivery, EventError> {
        super::parse(headers, body, &Reading::ALL)
    }
    use crate::forge::common::tests::{SHA, headers, push_of};

    fn check(key: &Key, h: &[(&'static str, &str)], body: &[u8]) -> Result<(), SignatureError> {
        verify(key, &headers(h), body, SystemTime::now()).map(|_| ())
    }

    #[test]
    fn gitea_and_forgejo_sign_the_json_with_bare_hex() {
        let key = Key::new(b"forge secret");
        let json = br#"{"ref":"refs/heads/main","after":"x"}"#;
        let hex = hmac_hex(&key, json);
        let check = |h: &[(&'static str, &str)], body: &[u8]| check(&key, h, body);
        let ct = ("content-type", "application/json");
        assert_eq!(check(&[ct, ("x-gitea-signature", &hex)], json), Ok(()));
        assert_eq!(check(&[ct, ("x-forgejo-signature", &hex)], json), Ok(()));
        assert_eq!(
            check(&[ct, ("x-gitea-signature", &hex.to_uppercase())], json),
            Ok(())
        );
        // Forgejo sends both; a bad Forgejo one is not rescued by Gitea's.
        let wrong = hmac_hex(&key, b"other");
        assert_eq!(
            check(
                &[
                    ct,
                    ("x-forgejo-signature", &wrong),
                    ("x-gitea-signature", &hex)
                ],
                json
            ),
            Err(SignatureError::Mismatch)
        );
        // GitHub's prefixed form is not Gitea's.
        assert_eq!(
            check(&[ct, ("x-gitea-signature", &format!("sha256={hex}"))], json),
            Err(SignatureError::Malformed)
        );
        assert_eq!(check(&[ct], json), Err(SignatureError::Missing));
        assert_eq!(
            check(&[ct, ("x-gitea-signature", &hex)], b"{}"),
            Err(SignatureError::Mismatch)
        );

        // A form delivery: the signature covers the `payload` field, as Gitea
        // computes it before encoding, not the body as received.
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", std::str::from_utf8(json).unwrap())
            .finish();
        let fct = ("content-type", "application/x-www-form-urlencoded");
        assert_eq!(
            check(&[fct, ("x-gitea-signature", &hex)], form.as_bytes()),
            Ok(())
        );
        let raw_hex = hmac_hex(&key, form.as_bytes());
        assert_eq!(
            check(&[fct, ("x-gitea-signature", &raw_hex)], form.as_bytes()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&[fct, ("x-gitea-signature", &hex)], b"other=1"),
            Err(SignatureError::Mismatch)
        );
    }

    /// A Gitea/Forgejo push in the documented shape (trimmed).
    pub(crate) fn gitea_push(git_ref: &str, before: &str, after: &str) -> String {
        serde_json::json!({
            "ref": git_ref,
            "before": before,
            "after": after,
            "compare_url": "http://localhost:3000/gitea/webhooks/compare/a...b",
            "commits": [{
                "id": after,
                "message": "Webhooks Yay!",
                "url": "http://localhost:3000/gitea/webhooks/commit/x",
                "author": {"name": "Gitea", "email": "someone@gitea.io", "username": "gitea"},
                "committer": {"name": "Gitea", "email": "someone@gitea.io", "username": "gitea"},
                "timestamp": "2017-03-13T13:52:11-04:00",
                "added": [], "removed": [], "modified": ["README.md"]
            }],
            "total_commits": 1,
            "head_commit": {
                "id": after,
                "message": "Webhooks Yay!",
                "added": [], "removed": [], "modified": ["README.md"]
            },
            "repository": {
                "id": 140,
                "owner": {"id": 1, "login": "gitea", "full_name": "Gitea", "username": "gitea"},
                "name": "webhooks",
                "full_name": "gitea/webhooks",
                "private": false,
                "default_branch": "master"
            },
            "pusher": {"id": 1, "login": "gitea", "full_name": "Gitea Admin", "email": "someone@gitea.io", "username": "gitea"},
            "sender": {"id": 1, "login": "gitea", "username": "gitea"}
        })
        .to_string()
    }

    fn gitea_headers<'a>(event: &'a str, ctype: &'a str) -> Vec<(&'static str, &'a str)> {
        vec![
            ("x-gitea-event", event),
            ("x-gitea-event-type", event),
            ("x-gitea-delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"),
            ("x-github-event", event),
            ("x-github-delivery", "f6266f16-1bf3-46a5-9ea4-602e06ead473"),
            ("content-type", ctype),
        ]
    }

    /// The event of a Gitea delivery of `event` with a JSON `body`.
    pub(crate) fn gitea(event: &str, body: &str) -> Event {
        parse(
            &headers(&gitea_headers(event, "application/json")),
            body.as_bytes(),
        )
        .unwrap()
        .event
    }

    #[test]
    fn gitea_push_is_read() {
        let body = gitea_push("refs/heads/master", SHA, &SHA.replace('0', "f"));
        let d = parse(
            &headers(&gitea_headers("push", "application/json")),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            d.id.as_deref(),
            Some("f6266f16-1bf3-46a5-9ea4-602e06ead473")
        );
        let p = push_of(d.event).remove(0);
        assert_eq!(p.git_ref, "refs/heads/master");
        assert_eq!(p.before, SHA);
        assert_eq!(p.after, SHA.replace('0', "f"));
        assert_eq!(p.repository, "gitea/webhooks");
        assert_eq!(p.pusher, "gitea");
        assert!(!p.deleted);
        // (That it deploys is in filter.rs's tests.)

        // Forgejo's own headers, and a form body, read the same.
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &body)
            .finish();
        let forgejo = parse(
            &headers(&[
                ("x-forgejo-event", "push"),
                ("x-forgejo-delivery", "fj-1"),
                ("content-type", "application/x-www-form-urlencoded"),
            ]),
            form.as_bytes(),
        )
        .unwrap();
        assert_eq!(forgejo.id.as_deref(), Some("fj-1"));
        assert_eq!(push_of(forgejo.event).remove(0), p);

        // Without an event header: 400 naming the header.
        assert_eq!(
            parse(
                &headers(&[("content-type", "application/json")]),
                body.as_bytes()
            ),
            Err(EventError::MissingEvent("X-Gitea-Event"))
        );
    }

    #[test]
    fn gitea_test_delivery_deletion_and_tags() {
        let zero = "0".repeat(40);
        // "Test delivery": before == after, the head commit (old Gitea) or
        // zeros (Gitea 1.22+).
        assert_eq!(
            gitea("push", &gitea_push("refs/heads/master", SHA, SHA)),
            Event::Ping
        );
        assert_eq!(
            gitea("push", &gitea_push("refs/heads/master", &zero, &zero)),
            Event::Ping
        );
        // A branch deletion is its own event; a push to zeros is one too.
        assert_eq!(
            gitea("delete", r#"{"ref":"main","ref_type":"branch"}"#),
            Event::Other("delete".into())
        );
        let p = push_of(gitea("push", &gitea_push("refs/heads/main", SHA, &zero)));
        assert!(p[0].deleted);
        // A tag push is a push of refs/tags/… (what the filter says of both
        // is in filter.rs's tests).
        let p = push_of(gitea("push", &gitea_push("refs/tags/v1.2", &zero, SHA)));
        assert_eq!(p[0].git_ref, "refs/tags/v1.2");
    }

    #[test]
    fn gitea_workflow_run_is_read_as_github_shapes_it() {
        let body = crate::forge::github::tests::gh_workflow_run(
            "completed",
            "CI",
            SHA,
            "main",
            Some("failure"),
            "acme/app",
        );
        let Event::Ci(run) = gitea("workflow_run", &body) else {
            panic!("not a CI event")
        };
        assert_eq!(run.workflow, "CI");
        assert_eq!(run.state, crate::forge::ci::CiState::Failed);
        // Forgejo's own action events are not read.
        assert_eq!(
            gitea("action_run_success", "{}"),
            Event::Other("action_run_success".into())
        );
    }
}
