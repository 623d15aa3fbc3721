//! Webhook authentication: HMAC-SHA256 over the raw body, compared in
//! constant time, with each forge's header format behind one function.
//!
//! Nothing here allocates on the request path beyond the MAC itself, and no
//! error says *why* a signature failed: a missing, malformed or wrong
//! signature all answer the same 401 so a prober learns nothing.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use hyper::HeaderMap;
use sha2::Sha256;

use crate::config::Provider;

type HmacSha256 = Hmac<Sha256>;

/// A project's secret, ready to sign: the HMAC key schedule is done once at
/// config load, and each request clones the prepared state.
#[derive(Clone)]
pub struct Key {
    mac: HmacSha256,
    /// MAC of the secret under itself: lets a token-style forge (GitLab) be
    /// compared in constant time without keeping the secret around.
    token_mac: Vec<u8>,
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
        Key {
            token_mac: t.finalize().into_bytes().to_vec(),
            mac,
        }
    }

    /// The raw HMAC-SHA256 of `body`.
    pub fn sign(&self, body: &[u8]) -> [u8; 32] {
        let mut m = self.mac.clone();
        m.update(body);
        m.finalize().into_bytes().into()
    }

    /// Whether `hex_sig` (64 hex digits, either case) is the HMAC of `body`.
    pub fn verify_hex(&self, hex_sig: &str, body: &[u8]) -> bool {
        let mut expected = [0u8; 32];
        if hex_sig.len() != 64 || hex::decode_to_slice(hex_sig, &mut expected).is_err() {
            return false;
        }
        let mut m = self.mac.clone();
        m.update(body);
        m.verify_slice(&expected).is_ok()
    }

    /// Whether `token` equals the secret, in constant time.
    pub fn verify_token(&self, token: &[u8]) -> bool {
        let mut m = self.mac.clone();
        m.update(token);
        m.verify_slice(&self.token_mac).is_ok()
    }
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
}

/// Checks the signature header of `provider` on a delivery.
pub fn verify(
    provider: Provider,
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    match provider {
        Provider::Github => prefixed(header(headers, "x-hub-signature-256")?, key, body),
        Provider::Bitbucket => prefixed(header(headers, "x-hub-signature")?, key, body),
        Provider::Gitea => {
            let value = header(headers, "x-gitea-signature")
                .or_else(|_| header(headers, "x-forgejo-signature"))?;
            bare(value, key, body)
        }
        Provider::Gitlab => {
            let token = headers
                .get("x-gitlab-token")
                .ok_or(SignatureError::Missing)?;
            if key.verify_token(token.as_bytes()) {
                Ok(())
            } else {
                Err(SignatureError::Mismatch)
            }
        }
    }
}

/// The header a forge would send for `body`: what `deployd sign` prints.
/// For GitLab, whose header carries the secret itself, there is nothing to
/// compute and `None` is returned.
pub fn sign_header(provider: Provider, key: &Key, body: &[u8]) -> Option<(&'static str, String)> {
    let hex = hmac_hex(key, body);
    match provider {
        Provider::Github => Some(("X-Hub-Signature-256", format!("sha256={hex}"))),
        Provider::Bitbucket => Some(("X-Hub-Signature", format!("sha256={hex}"))),
        Provider::Gitea => Some(("X-Gitea-Signature", hex)),
        Provider::Gitlab => None,
    }
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
    bare(hex_sig, key, body)
}

/// Bare hex, as Gitea and Forgejo send it.
fn bare(hex_sig: &str, key: &Key, body: &[u8]) -> Result<(), SignatureError> {
    let hex_sig = hex_sig.trim();
    if hex_sig.len() != 64 || !hex_sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed);
    }
    if key.verify_hex(hex_sig, body) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    /// GitHub's published test vector for X-Hub-Signature-256.
    const GH_SECRET: &str = "It's a Secret to Everybody";
    const GH_BODY: &str = "Hello, World!";
    const GH_SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn github_published_vector() {
        let key = Key::new(GH_SECRET.as_bytes());
        let (name, value) = sign_header(Provider::Github, &key, GH_BODY.as_bytes()).unwrap();
        assert_eq!(name, "X-Hub-Signature-256");
        assert_eq!(value, GH_SIG);
        let h = headers("x-hub-signature-256", GH_SIG);
        assert_eq!(
            verify(Provider::Github, &key, &h, GH_BODY.as_bytes()),
            Ok(())
        );
        // Upper-case hex is the same signature.
        let h = headers("x-hub-signature-256", &GH_SIG.replace("ea0e", "EA0E"));
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
        let h = headers("x-hub-signature-256", GH_SIG);
        assert_eq!(
            verify(Provider::Github, &other, &h, body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Provider::Github, &key, &h, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        // The old SHA-1 header alone does not count.
        let h = headers("x-hub-signature", GH_SIG);
        assert_eq!(check(&h), Err(SignatureError::Missing));
    }

    #[test]
    fn other_forges() {
        let key = Key::new(b"forge secret");
        let body = br#"{"ref":"refs/heads/main"}"#;
        let hex = hmac_hex(&key, body);
        assert_eq!(
            verify(
                Provider::Gitea,
                &key,
                &headers("x-gitea-signature", &hex),
                body
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                Provider::Gitea,
                &key,
                &headers("x-forgejo-signature", &hex),
                body
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                Provider::Gitea,
                &key,
                &headers("x-gitea-signature", &format!("sha256={hex}")),
                body
            ),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(
                Provider::Bitbucket,
                &key,
                &headers("x-hub-signature", &format!("sha256={hex}")),
                body
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                Provider::Gitlab,
                &key,
                &headers("x-gitlab-token", "forge secret"),
                body
            ),
            Ok(())
        );
        assert_eq!(
            verify(
                Provider::Gitlab,
                &key,
                &headers("x-gitlab-token", "forge secreT"),
                body
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Provider::Gitlab, &key, &HeaderMap::new(), body),
            Err(SignatureError::Missing)
        );
        assert!(sign_header(Provider::Gitlab, &key, body).is_none());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = Key::new(b"hunter2");
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    }
}
