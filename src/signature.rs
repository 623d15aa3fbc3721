//! Webhook authentication: each forge's header format behind one function,
//! [`verify`], every comparison in constant time.
//!
//! | provider | header | what the HMAC-SHA256 covers |
//! | --- | --- | --- |
//! | `github` | `X-Hub-Signature-256: sha256=<hex>` | the raw body |
//! | `gitea` | `X-Forgejo-Signature` / `X-Gitea-Signature: <hex>` | the JSON document: the body, or a form's `payload` field |
//! | `gitlab` | `X-Gitlab-Token: <secret>`, or `webhook-signature: v1,<base64>` | `{webhook-id}.{webhook-timestamp}.{body}` |
//! | `bitbucket` | `X-Hub-Signature: sha256=<hex>` | the raw body |
//!
//! GitLab has two mechanisms and a project has one secret, so either proves a
//! delivery: the secret token sent as is, or a Standard Webhooks signature
//! made with the secret as GitLab *signing token* (`whsec_` + base64 of the
//! key), whose timestamp must be within [`TOLERANCE`] of our clock. Both need
//! the secret; the signature also covers the body and limits replays.
//!
//! Nothing here allocates on the request path beyond the MAC itself, and no
//! answer says *why* a signature failed: a missing, malformed or wrong
//! signature all answer the same 401 so a prober learns nothing.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use hyper::HeaderMap;
use sha2::Sha256;

use crate::config::Provider;
use crate::event;

type HmacSha256 = Hmac<Sha256>;

/// How far a Standard Webhooks `webhook-timestamp` may be from our clock,
/// either way: the spec's recommendation, and what its libraries enforce.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The prefix of a Standard Webhooks secret (GitLab's signing token).
const WHSEC: &str = "whsec_";

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

    /// Whether `hex_sig` (64 hex digits, either case) is the HMAC of `body`.
    pub fn verify_hex(&self, hex_sig: &str, body: &[u8]) -> bool {
        parse_hex(hex_sig).is_ok_and(|sig| self.verify_raw(&sig, body))
    }

    /// Whether `token` equals the secret, in constant time.
    pub fn verify_token(&self, token: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(token);
        m.verify_slice(&self.token_mac).is_ok()
    }

    fn verify_raw(&self, sig: &[u8; 32], body: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(body);
        m.verify_slice(sig).is_ok()
    }
}

/// The key bytes of a `whsec_<base64>` secret; `None` for any other secret.
fn signing_key(secret: &[u8]) -> Option<Vec<u8>> {
    let rest = secret.strip_prefix(WHSEC.as_bytes())?;
    BASE64.decode(rest).ok().filter(|k| !k.is_empty())
}

/// Why a `secret` cannot be used by a `provider` project, for `check`: a
/// GitLab secret that looks like a signing token (`whsec_…`) but whose key
/// does not decode would silently never verify a signature.
pub fn secret_problem(provider: Provider, secret: &str) -> Option<String> {
    (provider == Provider::Gitlab
        && secret.starts_with(WHSEC)
        && signing_key(secret.as_bytes()).is_none())
    .then(|| {
        "a GitLab signing token is \"whsec_\" followed by base64 (as GitLab generates it); \
         this one does not decode"
            .to_string()
    })
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
    /// [`TOLERANCE`] away from our clock: a replay, or a clock that is off.
    #[error("signature timestamp outside the allowed window (replay, or clock skew)")]
    Expired,
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
    match provider {
        Provider::Github => prefixed(header(headers, "x-hub-signature-256")?, key, body),
        Provider::Bitbucket => prefixed(header(headers, "x-hub-signature")?, key, body),
        Provider::Gitea => gitea(key, headers, body),
        Provider::Gitlab => gitlab(key, headers, body, now),
    }
}

/// Gitea and Forgejo send the same bare hex under both names; Forgejo's is
/// preferred when present (a bad one is not rescued by the other). They sign
/// the JSON payload before encoding it, so a form delivery's signature covers
/// its `payload` field, not the body as received.
fn gitea(key: &Key, headers: &HeaderMap, body: &[u8]) -> Result<(), SignatureError> {
    let value = match header(headers, "x-forgejo-signature") {
        Err(SignatureError::Missing) => header(headers, "x-gitea-signature")?,
        other => other?,
    };
    let sig = parse_hex(value)?;
    let signed = if event::is_form(headers) {
        // Exactly the field `event::parse` reads, so what is parsed is
        // what was verified.
        match event::form_payload(body) {
            Some(p) => Cow::Owned(p),
            None => return Err(SignatureError::Mismatch),
        }
    } else {
        Cow::Borrowed(body)
    };
    if key.verify_raw(&sig, &signed) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// GitLab: the secret token as is, or a Standard Webhooks signature.
fn gitlab(
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    let token = headers.get("x-gitlab-token");
    if token.is_some_and(|t| key.verify_token(t.as_bytes())) {
        return Ok(());
    }
    if headers.contains_key("webhook-signature") {
        return standard_webhooks(key, headers, body, now);
    }
    Err(if token.is_some() {
        SignatureError::Mismatch
    } else {
        SignatureError::Missing
    })
}

/// A Standard Webhooks signature: `webhook-signature` holds space-separated
/// `v1,<base64>` entries, one of which must be the HMAC-SHA256 of
/// `{webhook-id}.{webhook-timestamp}.{body}` under the decoded signing key;
/// the timestamp (Unix seconds) must be within [`TOLERANCE`] of `now`.
fn standard_webhooks(
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), SignatureError> {
    let malformed = |_| SignatureError::Malformed;
    let id = header(headers, "webhook-id").map_err(malformed)?;
    let ts_text = header(headers, "webhook-timestamp").map_err(malformed)?;
    let ts: i64 = ts_text.parse().map_err(|_| SignatureError::Malformed)?;
    let candidates: Vec<[u8; 32]> = header(headers, "webhook-signature")?
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| BASE64.decode(b64).ok()?.try_into().ok())
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let Some(signing) = &key.signing else {
        // The project's secret is a plain token: no signature can match.
        return Err(SignatureError::Mismatch);
    };
    let mut m = signing.clone();
    for part in [id.as_bytes(), b".", ts_text.as_bytes(), b".", body] {
        m.update(part);
    }
    if !candidates.iter().any(|c| m.clone().verify_slice(c).is_ok()) {
        return Err(SignatureError::Mismatch);
    }
    // Checked after the signature, so only an authentic delivery is ever
    // reported as expired: that line then means replay or clock skew.
    if unix_seconds(now).abs_diff(ts) > TOLERANCE.as_secs() {
        return Err(SignatureError::Expired);
    }
    Ok(())
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The header a forge would send for `body`: what `deployd sign` prints.
/// `None` for GitLab, which sends either the secret itself or a signature
/// that needs more than one header (see [`sign_headers`]).
pub fn sign_header(provider: Provider, key: &Key, body: &[u8]) -> Option<(&'static str, String)> {
    let hex = hmac_hex(key, body);
    match provider {
        Provider::Github => Some(("X-Hub-Signature-256", format!("sha256={hex}"))),
        Provider::Bitbucket => Some(("X-Hub-Signature", format!("sha256={hex}"))),
        Provider::Gitea => Some(("X-Gitea-Signature", hex)),
        Provider::Gitlab => None,
    }
}

/// Every header that authenticates `body` as `provider` would send it: the
/// one of [`sign_header`], or for a GitLab project whose secret is a signing
/// token, the Standard Webhooks trio for message `id` at time `now`. `None`
/// for a GitLab project with a plain secret token: there is nothing to
/// compute, and deployd never prints a secret.
pub fn sign_headers(
    provider: Provider,
    key: &Key,
    body: &[u8],
    now: SystemTime,
    id: &str,
) -> Option<Vec<(&'static str, String)>> {
    if provider != Provider::Gitlab {
        return sign_header(provider, key, body).map(|h| vec![h]);
    }
    let mut m = key.signing.clone()?;
    let ts = unix_seconds(now).to_string();
    for part in [id.as_bytes(), b".", ts.as_bytes(), b".", body] {
        m.update(part);
    }
    let sig = BASE64.encode(m.finalize().into_bytes());
    Some(vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts),
        ("webhook-signature", format!("v1,{sig}")),
    ])
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, SignatureError> {
    let v = headers.get(name).ok_or(SignatureError::Missing)?;
    v.to_str().map_err(|_| SignatureError::Malformed)
}

/// `sha256=<64 hex>` as GitHub and Bitbucket send it.
fn prefixed(value: &str, key: &Key, body: &[u8]) -> Result<(), SignatureError> {
    let hex_sig = value
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let sig = parse_hex(hex_sig)?;
    if key.verify_raw(&sig, body) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// 64 hex digits, either case, as the 32 bytes they spell.
fn parse_hex(hex_sig: &str) -> Result<[u8; 32], SignatureError> {
    let mut sig = [0u8; 32];
    let hex_sig = hex_sig.trim();
    if hex_sig.len() != 64 || hex::decode_to_slice(hex_sig, &mut sig).is_err() {
        return Err(SignatureError::Malformed);
    }
    Ok(sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    /// GitHub's published test vector for X-Hub-Signature-256.
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &str = "Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    /// The Standard Webhooks reference vector (also Svix's documented example).
    const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SW_TS: u64 = 1614265330;
    const SW_BODY: &str = r#"{"test": 2432232314}"#;
    const SW_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn github_published_vector() {
        let key = Key::new(GH_SECRET.as_bytes());
        let (name, value) = sign_header(Provider::Github, &key, GH_BODY.as_bytes()).unwrap();
        assert_eq!(name, "X-Hub-Signature-256");
        assert_eq!(value, GH_SIG);
        let h = headers(&[("x-hub-signature-256", GH_SIG)]);
        assert_eq!(
            verify(Provider::Github, &key, &h, GH_BODY.as_bytes()),
            Ok(())
        );
        // Upper-case hex is the same signature.
        let h = headers(&[("x-hub-signature-256", &GH_SIG.replace("ea0e", "EA0E"))]);
        assert_eq!(
            verify(Provider::Github, &key, &h, GH_BODY.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn github_rejections() {
        let key = Key::new(GH_SECRET.as_bytes());
        let body = GH_BODY.as_bytes();
        let check = |h: &HeaderMap| verify(Provider::Github, &key, h, body);
        assert_eq!(check(&HeaderMap::new()), Err(SignatureError::Missing));
        for bad in [
            "",
            "sha256=",
            "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17aa",
            "sha256=z57107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            "sha256=💥",
        ] {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(bad) {
                h.insert("x-hub-signature-256", v);
                assert_eq!(check(&h), Err(SignatureError::Malformed), "{bad:?}");
            }
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            HeaderValue::from_bytes(b"sha256=\xff\xfe").unwrap(),
        );
        assert_eq!(check(&h), Err(SignatureError::Malformed));
        // Right format, wrong secret or changed body.
        let other = Key::new(b"another secret");
        let h = headers(&[("x-hub-signature-256", GH_SIG)]);
        assert_eq!(
            verify(Provider::Github, &other, &h, body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Provider::Github, &key, &h, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        // The old SHA-1 header alone does not count.
        let h = headers(&[("x-hub-signature", GH_SIG)]);
        assert_eq!(check(&h), Err(SignatureError::Missing));
    }

    #[test]
    fn gitea_and_forgejo_sign_the_json_with_bare_hex() {
        let key = Key::new(b"forge secret");
        let json = br#"{"ref":"refs/heads/main","after":"x"}"#;
        let hex = hmac_hex(&key, json);
        let check = |h: &[(&'static str, &str)], body: &[u8]| {
            verify(Provider::Gitea, &key, &headers(h), body)
        };
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

    #[test]
    fn bitbucket_prefixed_sha256() {
        let key = Key::new(b"forge secret");
        let body = br#"{"push":{"changes":[]}}"#;
        let hex = hmac_hex(&key, body);
        let check = |v: &str| {
            verify(
                Provider::Bitbucket,
                &key,
                &headers(&[("x-hub-signature", v)]),
                body,
            )
        };
        assert_eq!(check(&format!("sha256={hex}")), Ok(()));
        let (name, value) = sign_header(Provider::Bitbucket, &key, body).unwrap();
        assert_eq!((name, check(&value)), ("X-Hub-Signature", Ok(())));
        assert_eq!(check(&hex), Err(SignatureError::Malformed));
        assert_eq!(
            check(&format!("sha256={}", hmac_hex(&key, b"x"))),
            Err(SignatureError::Mismatch)
        );
        // GitHub's header name is not Bitbucket's.
        let h = headers(&[("x-hub-signature-256", &format!("sha256={hex}"))]);
        assert_eq!(
            verify(Provider::Bitbucket, &key, &h, body),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn gitlab_secret_token() {
        let key = Key::new(b"forge secret");
        let body = b"{}";
        let check = |h: &HeaderMap| verify(Provider::Gitlab, &key, h, body);
        assert_eq!(
            check(&headers(&[("x-gitlab-token", "forge secret")])),
            Ok(())
        );
        for wrong in ["forge secreT", "forge secret ", "forge", ""] {
            let mut h = HeaderMap::new();
            h.insert("x-gitlab-token", HeaderValue::from_str(wrong).unwrap());
            assert_eq!(check(&h), Err(SignatureError::Mismatch), "{wrong:?}");
        }
        assert_eq!(check(&HeaderMap::new()), Err(SignatureError::Missing));
        assert!(!key.has_signing_token());
        assert!(sign_header(Provider::Gitlab, &key, body).is_none());
        assert!(sign_headers(Provider::Gitlab, &key, body, at(SW_TS), "id").is_none());
    }

    #[test]
    fn gitlab_signing_token_reference_vector() {
        let key = Key::new(SW_SECRET.as_bytes());
        assert!(key.has_signing_token());
        let body = SW_BODY.as_bytes();
        let h = headers(&[
            ("webhook-id", SW_ID),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", SW_SIG),
        ]);
        assert_eq!(
            verify_at(Provider::Gitlab, &key, &h, body, at(SW_TS)),
            Ok(())
        );
        let signed = sign_headers(Provider::Gitlab, &key, body, at(SW_TS), SW_ID).unwrap();
        assert_eq!(
            signed,
            vec![
                ("webhook-id", SW_ID.to_string()),
                ("webhook-timestamp", SW_TS.to_string()),
                ("webhook-signature", SW_SIG.to_string()),
            ]
        );
        // Within the window either way; outside it, expired.
        let window = TOLERANCE.as_secs();
        for now in [SW_TS - window, SW_TS + window] {
            assert_eq!(verify_at(Provider::Gitlab, &key, &h, body, at(now)), Ok(()));
        }
        for now in [SW_TS - window - 1, SW_TS + window + 1, 0] {
            assert_eq!(
                verify_at(Provider::Gitlab, &key, &h, body, at(now)),
                Err(SignatureError::Expired)
            );
        }
        // The secret token header with the same secret also passes.
        let h = headers(&[("x-gitlab-token", SW_SECRET)]);
        assert_eq!(
            verify_at(Provider::Gitlab, &key, &h, body, at(SW_TS)),
            Ok(())
        );
    }

    #[test]
    fn gitlab_signing_token_rejections() {
        let key = Key::new(SW_SECRET.as_bytes());
        let body = SW_BODY.as_bytes();
        let now = at(SW_TS);
        let check = |pairs: &[(&'static str, &str)], body: &[u8]| {
            verify_at(Provider::Gitlab, &key, &headers(pairs), body, now)
        };
        let id = ("webhook-id", SW_ID);
        let ts = ("webhook-timestamp", "1614265330");
        let sig = ("webhook-signature", SW_SIG);
        // Changed body, id or timestamp: the signature covers all three.
        assert_eq!(check(&[id, ts, sig], b"{}"), Err(SignatureError::Mismatch));
        assert_eq!(
            check(&[("webhook-id", "msg_other"), ts, sig], body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&[id, ("webhook-timestamp", "1614265331"), sig], body),
            Err(SignatureError::Mismatch)
        );
        // One right entry among several is enough; none right is a mismatch.
        let other = format!("v1,{}", BASE64.encode([0u8; 32]));
        let several = format!("v2,xyz {other} {SW_SIG}");
        assert_eq!(
            check(&[id, ts, ("webhook-signature", &several)], body),
            Ok(())
        );
        assert_eq!(
            check(&[id, ts, ("webhook-signature", &other)], body),
            Err(SignatureError::Mismatch)
        );
        // Malformed: no v1 entry, bad base64, wrong length, bad timestamp,
        // a signature without its id or timestamp.
        for bad in ["", "v1,", "v1g0hM9SsE", "v1,%%%", "v1,AAAA", "v2,abc"] {
            assert_eq!(
                check(&[id, ts, ("webhook-signature", bad)], body),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        for bad_ts in ["", "soon", "1614265330.5", "99999999999999999999"] {
            assert_eq!(
                check(&[id, ("webhook-timestamp", bad_ts), sig], body),
                Err(SignatureError::Malformed),
                "{bad_ts:?}"
            );
        }
        assert_eq!(check(&[ts, sig], body), Err(SignatureError::Malformed));
        assert_eq!(check(&[id, sig], body), Err(SignatureError::Malformed));
        // A signature made with another signing token.
        let other_key = Key::new(format!("whsec_{}", BASE64.encode(b"another key")).as_bytes());
        let forged = sign_headers(Provider::Gitlab, &other_key, body, now, SW_ID).unwrap();
        let forged: Vec<(&'static str, &str)> =
            forged.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(check(&forged, body), Err(SignatureError::Mismatch));
        // A plain-token project cannot be satisfied by any signature, and a
        // wrong token does not stop a right signature from counting.
        let plain = Key::new(b"forge secret");
        assert_eq!(
            verify_at(
                Provider::Gitlab,
                &plain,
                &headers(&[id, ts, sig]),
                body,
                now
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&[("x-gitlab-token", "nope"), id, ts, sig], body),
            Ok(())
        );
        assert_eq!(
            check(&[("x-gitlab-token", "nope")], body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn signing_token_form() {
        // Only `whsec_` + base64 is a signing token; anything else is a plain
        // secret token, and `check` refuses a `whsec_` that does not decode.
        assert!(Key::new(b"whsec_c2VjcmV0").has_signing_token());
        assert!(!Key::new(b"c2VjcmV0").has_signing_token());
        assert!(!Key::new(b"whsec_").has_signing_token());
        assert!(!Key::new(b"whsec_not base64!").has_signing_token());
        assert!(secret_problem(Provider::Gitlab, "whsec_not base64!").is_some());
        assert!(secret_problem(Provider::Gitlab, "whsec_").is_some());
        assert!(secret_problem(Provider::Gitlab, SW_SECRET).is_none());
        assert!(secret_problem(Provider::Gitlab, "plain token").is_none());
        assert!(secret_problem(Provider::Github, "whsec_not base64!").is_none());
    }

    #[test]
    fn sign_headers_per_forge() {
        let key = Key::new(b"forge secret");
        let body = b"{}";
        let hex = hmac_hex(&key, body);
        let one = |p| sign_headers(p, &key, body, at(0), "unused").unwrap();
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
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = Key::new(b"hunter2");
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    }
}
