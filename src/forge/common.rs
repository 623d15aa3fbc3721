//! What every forge's file is built from, and knows no forge itself: the
//! prepared secret ([`Key`]) and constant-time checks, the forge-neutral
//! answer ([`Delivery`], [`Event`]) and its errors, and the readers of headers
//! and bodies (JSON, or a form whose `payload` field holds the JSON).
//!
//! No answer says *why* a signature failed: a missing, malformed or wrong
//! signature all answer the same 401 so a prober learns nothing; the kinds of
//! [`SignatureError`] exist for tests and for the (rate-limited) log line.

use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use hyper::HeaderMap;
use serde::Deserialize;
use sha2::Sha256;

use crate::forge::ci::CiRun;
use crate::forge::push::{Files, Push, changed_paths, zeros};

/// HMAC-SHA256, the MAC every forge uses.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The prefix of a Standard Webhooks secret (GitLab's signing token).
pub(crate) const WHSEC: &str = "whsec_";

/// A project's secret, ready to sign: the HMAC key schedule is done once at
/// config load, and each request clones the prepared state.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
    /// MAC of the secret under itself: lets a token-style forge (GitLab) be
    /// compared in constant time without keeping the secret around.
    token_mac: Vec<u8>,
    /// When the secret is a Standard Webhooks secret (`whsec_<base64>`, the
    /// form GitLab requires of a signing token), the HMAC keyed with the
    /// decoded bytes: such signatures are not keyed with the text itself.
    signing: Option<HmacSha256>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// Prepares `secret` for signing and verifying.
    pub fn new(secret: &[u8]) -> Key {
        // HMAC takes keys of any length; this cannot fail.
        let mac = <HmacSha256 as KeyInit>::new_from_slice(secret)
            .expect("HMAC accepts keys of any length");
        let mut t = mac.clone();
        t.update(secret);
        let signing = signing_key(secret).map(|k| {
            <HmacSha256 as KeyInit>::new_from_slice(&k).expect("HMAC accepts keys of any length")
        });
        Key {
            token_mac: t.finalize().into_bytes().to_vec(),
            mac,
            signing,
        }
    }

    /// Whether the secret is a Standard Webhooks secret (`whsec_<base64>`),
    /// so that GitLab signing-token signatures can be checked with it.
    pub fn has_signing_token(&self) -> bool {
        self.signing.is_some()
    }

    /// The raw HMAC-SHA256 of `body`.
    pub fn sign(&self, body: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(body);
        m.finalize().into_bytes().into()
    }

    /// Whether `token` equals the secret, in constant time.
    pub fn verify_token(&self, token: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(token);
        m.verify_slice(&self.token_mac).is_ok()
    }

    /// Whether `sig` is the HMAC of `body`, in constant time.
    pub(crate) fn verify_raw(&self, sig: &[u8; 32], body: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(body);
        m.verify_slice(sig).is_ok()
    }

    /// The HMAC keyed with a Standard Webhooks secret's decoded bytes, when
    /// the secret is one.
    pub(crate) fn signing(&self) -> Option<&HmacSha256> {
        self.signing.as_ref()
    }
}

/// The key bytes of a `whsec_<base64>` secret; `None` for any other secret.
pub(crate) fn signing_key(secret: &[u8]) -> Option<Vec<u8>> {
    let rest = secret.strip_prefix(WHSEC.as_bytes())?;
    BASE64.decode(rest).ok().filter(|k| !k.is_empty())
}

/// The HMAC-SHA256 of `body` as lowercase hex.
pub fn hmac_hex(key: &Key, body: &[u8]) -> String {
    hex::encode(key.sign(body))
}

/// Why a delivery was not authenticated. Callers answer 401 for every kind;
/// the kinds exist for tests and for the (rate-limited) log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header at all.
    #[error("missing signature")]
    Missing,
    /// A header that is not of the forge's format.
    #[error("malformed signature")]
    Malformed,
    /// Well-formed, but not made with this project's secret over this body.
    #[error("wrong signature")]
    Mismatch,
    /// A right Standard Webhooks signature whose timestamp is more than
    /// the tolerance away from our clock: a replay, or a clock that is off.
    #[error("signature timestamp outside the allowed window (replay, or clock skew)")]
    Expired,
}

/// A header's text for a signature check: missing and non-text values are
/// told apart, as [`SignatureError`] does.
pub(crate) fn auth_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<&'a str, SignatureError> {
    let v = headers.get(name).ok_or(SignatureError::Missing)?;
    v.to_str().map_err(|_| SignatureError::Malformed)
}

/// 64 hex digits, either case, as the 32 bytes they spell.
pub(crate) fn parse_hex(hex_sig: &str) -> Result<[u8; 32], SignatureError> {
    let mut sig = [0u8; 32];
    let hex_sig = hex_sig.trim();
    if hex_sig.len() != 64 || hex::decode_to_slice(hex_sig, &mut sig).is_err() {
        return Err(SignatureError::Malformed);
    }
    Ok(sig)
}

/// `sha256=<64 hex>` over the raw body, as GitHub and Bitbucket send it
/// (each under its own header name).
pub(crate) fn verify_sha256_prefixed(
    value: &str,
    key: &Key,
    body: &[u8],
) -> Result<BodyMac, SignatureError> {
    let hex_sig = value
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let sig = parse_hex(hex_sig)?;
    if key.verify_raw(&sig, body) {
        // Equal, in constant time, to the body's HMAC under the key.
        Ok(Some(sig))
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// What verifying a delivery learnt of the body's HMAC-SHA256 under the
/// key: the MAC itself when the forge signs the body as received (it is the
/// signature that matched), else nothing (a token, a signature over more
/// than the body, a form's field).
pub(crate) type BodyMac = Option<[u8; 32]>;

/// Seconds since the Unix epoch, negative before it.
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The event a delivery carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The forge checking the hook works: GitHub's `ping`, Gitea's and
    /// Forgejo's "Test delivery", Bitbucket's `diagnostics:ping`.
    Ping,
    /// The ref updates of one push (GitHub sends one, Bitbucket may send
    /// several, or none). `filter::choose` picks the one that deploys.
    Push(Vec<Push>),
    /// A CI run's news about a commit (GitHub's and Gitea's `workflow_run`,
    /// GitLab's `Pipeline Hook`, Bitbucket's `repo:commit_status_*`): what
    /// the CI gate (`gate.rs`) counts.
    Ci(CiRun),
    /// Any other event, by its name; answered `ignored`.
    Other(String),
}

/// A verified and parsed delivery, whatever forge sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The forge's delivery id, used to answer redeliveries `duplicate`.
    pub id: Option<String>,
    /// What happened.
    pub event: Event,
    /// When the forge says the event happened, where that time is covered
    /// by the signature (GitHub's `repository.pushed_at`, GitLab's
    /// `webhook-timestamp`): deliveries older than `max_age` are stale.
    pub signed_at: Option<SystemTime>,
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

/// A delivery's body: JSON, or a form whose `payload` field holds JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    Json,
    Form,
}

/// Checks the content type (415) without looking at the body.
pub(crate) fn content_type(headers: &HeaderMap) -> Result<Body, EventError> {
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

/// Whether the body is a form (`application/x-www-form-urlencoded`), whose
/// JSON is in the `payload` field.
pub fn is_form(headers: &HeaderMap) -> bool {
    matches!(content_type(headers), Ok(Body::Form))
}

/// The decoded `payload` field of a form body (the first, if repeated): the
/// JSON document parsed, and what Gitea and Forgejo sign.
pub fn form_payload(body: &[u8]) -> Option<Vec<u8>> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned().into_bytes())
}

/// The JSON document of a body: itself, or a form's `payload` field.
pub(crate) fn json_of(kind: Body, body: &[u8]) -> Result<Cow<'_, [u8]>, EventError> {
    match kind {
        Body::Json => Ok(Cow::Borrowed(body)),
        Body::Form => form_payload(body)
            .map(Cow::Owned)
            .ok_or_else(|| EventError::Payload(
                "form body without a payload field (a JSON body needs `Content-Type: application/json`)"
                    .into(),
            )),
    }
}

/// A header's trimmed text, `None` when missing, empty or not text.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The first of `names` present: a forge's delivery-id headers, best first.
pub(crate) fn first_header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|h| header_str(headers, h))
}

/// A verified delivery read the way every forge's is: content type first
/// (415), then the forge's `event` reader on the body (400), with the first
/// of the forge's delivery-id headers `ids`.
pub(crate) fn read_delivery(
    headers: &HeaderMap,
    body: &[u8],
    ids: &[&str],
    event: impl FnOnce(&HeaderMap, Body, &[u8]) -> Result<Event, EventError>,
) -> Result<Delivery, EventError> {
    let kind = content_type(headers)?;
    let id = first_header(headers, ids).map(str::to_string);
    Ok(Delivery {
        id,
        event: event(headers, kind, body)?,
        signed_at: None,
    })
}

/// A pushed commit as GitHub, Gitea, Forgejo and GitLab list it: only what
/// deployd reads of it.
#[derive(Deserialize)]
pub(crate) struct Commit<'a> {
    /// The commit id.
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    /// Its whole message.
    #[serde(borrow, default)]
    pub message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    added: Option<Vec<PathText<'a>>>,
    #[serde(borrow, default)]
    modified: Option<Vec<PathText<'a>>>,
    #[serde(borrow, default)]
    removed: Option<Vec<PathText<'a>>>,
}

/// A path in a commit's file list: borrowed from the body unless it holds
/// an escape (a `Cow` directly inside a `Vec` would always be copied).
#[derive(Debug, Deserialize)]
struct PathText<'a>(#[serde(borrow)] Cow<'a, str>);

impl AsRef<str> for PathText<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'a> Commit<'a> {
    /// Its three file lists, when the forge sent all three.
    fn lists(&self) -> Option<[&[PathText<'a>]; 3]> {
        Some([
            self.added.as_deref()?,
            self.modified.as_deref()?,
            self.removed.as_deref()?,
        ])
    }
}

/// What `commits` say `push` changed. `cut` is the forge's own reason to
/// doubt the list is whole (a count it sent that the list falls short of).
/// A new branch and a force push are never [`Files::Listed`]: their commits
/// are not the difference from what was deployed before.
pub(crate) fn files_of(push: &Push, commits: &[Commit<'_>], cut: Option<String>) -> Files {
    let unknown = |why: &str| Files::Unknown(why.to_string());
    if push.tag().is_some() {
        return unknown("a tag push lists no changed files");
    }
    if zeros(&push.before) || push.before.is_empty() {
        return unknown("a new branch: its commits are not listed against what was deployed");
    }
    if push.forced {
        return unknown("a force push: the commits it dropped are not listed");
    }
    if let Some(why) = cut {
        return Files::Unknown(why);
    }
    if commits.is_empty() {
        return unknown("the push lists no commits");
    }
    match changed_paths(commits.iter().map(Commit::lists)) {
        Some(paths) => Files::Listed(paths),
        None => unknown("a commit came without its file lists"),
    }
}

/// Deserializes a payload, any error a 400.
pub(crate) fn payload<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, EventError> {
    serde_json::from_slice(json).map_err(|e| EventError::Payload(e.to_string()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    /// A commit id for fixtures.
    pub(crate) const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    /// A passed CI run at [`SHA`] (conclusion `success`) of `workflow` on
    /// `branch` of `repository`, not from a fork, as a forge's `run` id and
    /// `actor` name it.
    pub(crate) fn passed_run(
        workflow: &str,
        branch: &str,
        repository: &str,
        run: &str,
        actor: &str,
    ) -> CiRun {
        CiRun {
            workflow: workflow.into(),
            sha: SHA.into(),
            branch: branch.into(),
            repository: repository.into(),
            head_repository: repository.into(),
            state: crate::forge::ci::CiState::Passed,
            conclusion: "success".into(),
            run: run.into(),
            actor: actor.into(),
        }
    }

    /// Headers from pairs; a repeated name keeps every value.
    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn file_lists_borrow_plain_paths_and_unescape_the_rest() {
        let json = br#"[{"id":"a","added":["src/a.rs","caf\u00e9.md"],"modified":["src/a.rs"],"removed":["dir\/gone.txt"]},
                        {"id":"b","added":[],"modified":["src/a.rs"],"removed":[]}]"#;
        let commits: Vec<Commit<'_>> = serde_json::from_slice(json).unwrap();
        let lists = commits[0].lists().unwrap();
        assert!(matches!(lists[0][0].0, Cow::Borrowed("src/a.rs")));
        assert!(matches!(lists[0][1].0, Cow::Owned(_)));
        let paths = changed_paths(commits.iter().map(Commit::lists)).unwrap();
        assert_eq!(paths, ["café.md", "dir/gone.txt", "src/a.rs"]);
    }

    /// The pushes of an event that must be a push.
    pub(crate) fn push_of(e: Event) -> Vec<Push> {
        match e {
            Event::Push(p) => p,
            e => panic!("not a push: {e:?}"),
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = Key::new(b"hunter2");
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    }
}
