//! `forge::parse` on hostile deliveries, then the filter on what it yields.
//!
//! Input: a message as in `common.rs` (headers, blank line, body). For every
//! provider the message is parsed with its own `Content-Type`, then as
//! `application/json` and as `application/x-www-form-urlencoded`; every push
//! that comes out goes through `filter` and `choose`. Checks:
//! - no panic;
//! - a UTF-8 body parses the same as JSON and as the `payload` field of a
//!   form (the two ways a forge may send it);
//! - `filter` deploys a push to exactly its own branch and repository (any
//!   case) unless it deleted the branch or its message says to skip it;
//!   `choose` picks a push that `filter` deploys, or none when no push
//!   deploys.

#![no_main]

mod common;

use std::path::Path;
use std::sync::LazyLock;

use deployd::config::{self, Project};
use deployd::intake::filter::{self, Verdict};
use deployd::forge::{self, Delivery, Event, EventError, Provider};
use deployd::config::pattern::Patterns;
use deployd::forge::push::Push;
use hyper::HeaderMap;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// A project as a config file makes it; the target only changes its
/// branch and repository.
static PROJECT: LazyLock<Project> = LazyLock::new(|| {
    let text = "[projects.app]\nsecret = \"s\"\nscript = \"/bin/sh\"\n\
                branch = \"main\"\nrepository = \"acme/app\"\n";
    config::parse(text, Path::new("/fuzz/deploy.toml"), &config::SystemSecrets)
        .expect("the fixed project is valid")
        .projects
        .remove("app")
        .expect("the fixed project is there")
});

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

fuzz_target!(|data: &[u8]| {
    let (headers, body) = common::message(data);
    for provider in common::PROVIDERS {
        let _ = check(provider, &headers, body);
        let as_json = check(provider, &with_type(&headers, JSON), body);
        let form = with_type(&headers, FORM);
        let _ = check(provider, &form, body);
        if let Ok(text) = std::str::from_utf8(body) {
            let wrapped = form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", text)
                .finish();
            let as_form = check(provider, &form, wrapped.as_bytes());
            assert_eq!(
                as_json, as_form,
                "{provider}: JSON and form bodies parse differently"
            );
        }
    }
});

fn with_type(headers: &HeaderMap, content_type: &'static str) -> HeaderMap {
    let mut h = headers.clone();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h
}

fn check(provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<Delivery, EventError> {
    let parsed = forge::parse(provider, headers, body);
    if let Ok(Delivery {
        event: Event::Push(pushes),
        ..
    }) = &parsed
    {
        filter_all(pushes);
    }
    // Errors are shown to the sender; rendering them must not panic either.
    if let Err(e) = &parsed {
        let _ = e.to_string();
    }
    parsed
}

fn filter_all(pushes: &[Push]) {
    let fixed = &*PROJECT;
    for push in pushes {
        let _ = filter::filter(fixed, push);

        // A project made for this very push deploys it, unless the branch
        // went away; one for another branch never does.
        if let Some(branch) = push.git_ref.strip_prefix("refs/heads/") {
            let mut own = fixed.clone();
            // Names a branch cannot have (empty, refs/…, a leading '!') are
            // refused by the config, so no project is made for them.
            let Ok(exact) = Patterns::exact(branch) else {
                continue;
            };
            own.branches = exact;
            own.repository = Some(push.repository.to_ascii_uppercase());
            let verdict = filter::filter(&own, push);
            let message = push.message.to_ascii_lowercase();
            let skipped = filter::SKIP_MARKERS.iter().any(|m| message.contains(m));
            assert_eq!(
                verdict == Verdict::Deploy,
                !push.deleted && !skipped,
                "{push:?} under {own:?}: {verdict:?}"
            );
            own.branches = Patterns::exact(&format!("{branch}x")).expect("a longer name");
            assert_ne!(filter::filter(&own, push), Verdict::Deploy, "{push:?}");
        } else {
            assert_ne!(filter::filter(fixed, push), Verdict::Deploy, "{push:?}");
        }
    }

    match filter::choose(fixed, pushes.to_vec()) {
        Ok(chosen) => {
            assert_eq!(filter::filter(fixed, &chosen), Verdict::Deploy);
            assert!(pushes.contains(&chosen));
        }
        Err(_) => assert!(
            pushes
                .iter()
                .all(|p| filter::filter(fixed, p) != Verdict::Deploy)
        ),
    }
}
