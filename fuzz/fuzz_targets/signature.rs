//! `forge::verify` on hostile headers: arbitrary secret, arbitrary
//! authentication headers (any name, any bytes hyper accepts), arbitrary
//! body, for every provider.
//!
//! Input: the secret on the first line, then a message as in `common.rs`.
//! Checks, for every provider:
//! - no panic;
//! - `Ok` only when a header really carries the MAC of the body (or of a
//!   form's `payload` field, which Gitea signs), in hex of any case, or the
//!   secret itself (GitLab's token), or a Standard Webhooks signature for a
//!   `whsec_` secret;
//! - what `sign_headers` produces always verifies, with no content type, as
//!   JSON and as a form; a GitLab token equal to the secret always verifies;
//!   a Standard Webhooks signature further ahead of the clock than the
//!   tolerance is `Expired`, an old one still verifies.
//!
//! The clock is fixed so that a run is reproducible.

#![no_main]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deployd::forge::{self, Key, Provider, SignatureError};
use hyper::HeaderMap;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// 2023-11-14, any fixed time will do.
const NOW: Duration = Duration::from_secs(1_700_000_000);

const CONTENT_TYPES: [Option<&str>; 3] = [
    None,
    Some("application/json"),
    Some("application/x-www-form-urlencoded"),
];

fuzz_target!(|data: &[u8]| {
    let (secret, rest) = common::first_line(data);
    let (headers, body) = common::message(rest);
    let key = Key::new(secret);
    let now = UNIX_EPOCH + NOW;

    for provider in common::PROVIDERS {
        // The real clock once, for the function the server calls.
        let _ = forge::verify(provider, &key, &headers, body);
        if forge::verify_at(provider, &key, &headers, body, now).is_ok() {
            assert!(
                genuine(provider, &key, secret, &headers, body),
                "{provider} accepted headers without the MAC: {headers:?}"
            );
        }
        for content_type in CONTENT_TYPES {
            round_trip(provider, &key, secret, content_type, body, now);
        }
    }
});

/// Whether `headers` could be authentic: they hold the MAC, the secret, or
/// (GitLab with a signing token) a Standard Webhooks signature.
fn genuine(provider: Provider, key: &Key, secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let mut macs = vec![forge::hmac_hex(key, body)];
    if let Some(payload) = forge::form_payload(body) {
        macs.push(forge::hmac_hex(key, &payload));
    }
    let holds_mac = |v: &HeaderValue| {
        let v = v.as_bytes().to_ascii_lowercase();
        macs.iter()
            .any(|m| v.windows(m.len()).any(|w| w == m.as_bytes()))
    };
    headers
        .values()
        .any(|v| v.as_bytes() == secret || holds_mac(v))
        || (provider == Provider::Gitlab
            && key.has_signing_token()
            && headers.contains_key("webhook-signature"))
}

/// Signs `body` as `provider` would, sends it with `content_type`, and
/// checks that it verifies.
fn round_trip(
    provider: Provider,
    key: &Key,
    secret: &[u8],
    content_type: Option<&'static str>,
    body: &[u8],
    now: SystemTime,
) {
    let mut base = HeaderMap::new();
    if let Some(ct) = content_type {
        base.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    // Gitea and Forgejo sign the JSON document, which a form carries in its
    // `payload` field; a form without one cannot be verified at all.
    let form_payload = forge::form_payload(body);
    let signed_over = match (provider, forge::is_form(&base)) {
        (Provider::Gitea, true) => match &form_payload {
            Some(p) => p.as_slice(),
            None => {
                let mut h = base.clone();
                let value = HeaderValue::from_str(&forge::hmac_hex(key, body))
                    .expect("hex is a valid header value");
                h.insert("x-gitea-signature", value);
                assert!(forge::verify_at(provider, key, &h, body, now).is_err());
                return;
            }
        },
        _ => body,
    };

    if let Some(signed) = forge::sign_headers(provider, key, signed_over, now, "msg_fuzz") {
        let mut h = base.clone();
        for (name, value) in signed {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
            let value = HeaderValue::from_str(&value).expect("a valid header value");
            h.append(name, value);
        }
        assert_eq!(
            forge::verify_at(provider, key, &h, body, now),
            Ok(()),
            "{provider}: its own signature {h:?} did not verify"
        );
        if provider == Provider::Gitlab {
            // Signed further ahead of our clock than the tolerance: expired.
            // Signed long ago: still authentic (its age is `max_age`'s to
            // judge, in the server).
            let early = now - forge::TOLERANCE - Duration::from_secs(1);
            assert_eq!(
                forge::verify_at(provider, key, &h, body, early),
                Err(SignatureError::Expired)
            );
            let late = now + Duration::from_secs(365 * 86400);
            assert_eq!(forge::verify_at(provider, key, &h, body, late), Ok(()));
        }
    }

    // GitLab's other way: the secret itself, when it can travel in a header.
    if provider == Provider::Gitlab
        && let Ok(token) = HeaderValue::from_bytes(secret)
    {
        let mut h = base;
        h.insert("x-gitlab-token", token);
        assert_eq!(forge::verify_at(provider, key, &h, body, now), Ok(()));
    }
}
