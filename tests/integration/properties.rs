//! Properties of the code that reads hostile input, checked on generated
//! cases through the library API (no daemon): signatures verify exactly when
//! made with the secret over the body, the filter deploys exactly the
//! project's branch, and parsing never panics. The fuzz targets in `fuzz/`
//! go deeper; these run with every `cargo test` and stay fast (256 cases
//! each).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use deployd::config::pattern::Patterns;
use deployd::config::{self, Project};
use deployd::forge::push::Push;
use deployd::forge::{self, Key, Provider, SignatureError};
use deployd::intake::filter::{self, Verdict};
use hyper::HeaderMap;
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::json;

const PROVIDERS: [Provider; 4] = [
    Provider::Github,
    Provider::Gitea,
    Provider::Gitlab,
    Provider::Bitbucket,
];

/// The forges that sign with the secret used as the HMAC key, in hex.
const HEX_SIGNERS: [Provider; 3] = [Provider::Github, Provider::Gitea, Provider::Bitbucket];

/// A fixed clock, for GitLab's timestamped signatures.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// The headers `provider` would send for `body`, or `None` when it signs
/// nothing (GitLab with a plain token).
fn signed(provider: Provider, key: &Key, body: &[u8]) -> Option<HeaderMap> {
    let pairs = forge::sign_headers(provider, key, body, now(), "msg_prop")?;
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a valid header name"),
            HeaderValue::from_str(&value).expect("a valid header value"),
        );
    }
    Some(h)
}

fn verify(
    provider: Provider,
    key: &Key,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    forge::verify_at(provider, key, headers, body, now())
}

/// The one header of `headers` that carries the MAC.
fn sig_header(provider: Provider) -> &'static str {
    match provider {
        Provider::Github => "x-hub-signature-256",
        Provider::Gitea => "x-gitea-signature",
        Provider::Bitbucket => "x-hub-signature",
        Provider::Gitlab => "webhook-signature",
    }
}

/// `headers` with the MAC in its signature header replaced by `f(mac)`.
fn with_mac(provider: Provider, headers: &HeaderMap, f: impl FnOnce(&mut Vec<u8>)) -> HeaderMap {
    let name = sig_header(provider);
    let value = headers[name].to_str().expect("ASCII").to_string();
    let new_value = match provider {
        Provider::Gitlab => {
            let b64 = value.strip_prefix("v1,").expect("a v1 signature");
            let mut mac = BASE64.decode(b64).expect("base64");
            f(&mut mac);
            format!("v1,{}", BASE64.encode(mac))
        }
        _ => {
            let (prefix, hex) = value.split_at(value.len() - 64);
            let mut mac = hex::decode(hex).expect("hex");
            f(&mut mac);
            format!("{prefix}{}", hex::encode(mac))
        }
    };
    let mut h = headers.clone();
    h.insert(name, HeaderValue::from_str(&new_value).expect("ASCII"));
    h
}

/// A GitLab signing token: `whsec_` and the base64 of a non-empty key.
fn whsec() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..48)
        .prop_map(|k| format!("whsec_{}", BASE64.encode(k)).into_bytes())
}

/// Any secret: arbitrary bytes, or a GitLab signing token.
fn secret() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..100), whsec()]
}

/// Whether two secrets are the same HMAC key after all. HMAC pads a key
/// shorter than its block with zero bytes, so `k` and `k\0` sign alike; and
/// a GitLab signing token signs with its decoded bytes.
fn same_key(a: &[u8], b: &[u8]) -> bool {
    fn padded(k: &[u8]) -> &[u8] {
        let end = k.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        &k[..end]
    }
    let decoded = |s: &[u8]| {
        s.strip_prefix(b"whsec_")
            .and_then(|rest| BASE64.decode(rest).ok())
    };
    padded(a) == padded(b)
        || matches!((decoded(a), decoded(b)), (Some(x), Some(y)) if padded(&x) == padded(&y))
}

/// A glob matching exactly `name`, when a branch can be called that
/// (`None` for what `branch` refuses: empty, `refs/…`, a leading `!`).
fn exactly(name: &str) -> Option<Patterns> {
    Patterns::exact(name).ok()
}

/// The project `app` with these keys besides its secret and script.
fn project_with(keys: &str) -> Project {
    config::parse(
        &format!("[projects.app]\nsecret = \"s\"\nscript = \"/bin/sh\"\n{keys}"),
        Path::new("/props/deploy.toml"),
        &config::SystemSecrets,
    )
    .expect("a valid config")
    .projects
    .remove("app")
    .expect("its project")
}

fn project(branch: &str, repository: Option<&str>) -> Option<Project> {
    let mut p = project_with("");
    p.branches = exactly(branch)?;
    p.repository = repository.map(str::to_string);
    Some(p)
}

/// Names as forges allow them, and the odd characters they do not.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._/-]{1,20}",
        any::<String>(),
        Just("main".to_string()),
        Just("MAIN".to_string()),
    ]
}

/// Swaps the case of some ASCII letters, as `mask` says.
fn recase(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// What deployd signs, it verifies: every forge that signs, any secret,
    /// any body (and a GitLab token that is the secret).
    #[test]
    fn sign_then_verify(secret in secret(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        let key = Key::new(&secret);
        for provider in PROVIDERS {
            match signed(provider, &key, &body) {
                Some(h) => prop_assert_eq!(verify(provider, &key, &h, &body), Ok(()), "{}", provider),
                None => prop_assert_eq!(provider, Provider::Gitlab),
            }
        }
        if let Ok(token) = HeaderValue::from_bytes(&secret) {
            let mut h = HeaderMap::new();
            h.insert("x-gitlab-token", token);
            prop_assert_eq!(verify(Provider::Gitlab, &key, &h, &body), Ok(()));
        }
    }

    /// Flipping any one bit of the body, or of the MAC, is caught.
    #[test]
    fn any_bit_flip_fails(
        secret in secret(),
        body in prop::collection::vec(any::<u8>(), 1..512),
        at in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let key = Key::new(&secret);
        for provider in PROVIDERS {
            let Some(h) = signed(provider, &key, &body) else { continue };
            let mut flipped = body.clone();
            flipped[at.index(body.len())] ^= 1 << bit;
            prop_assert_eq!(verify(provider, &key, &h, &flipped), Err(SignatureError::Mismatch), "{}", provider);
            let bad_mac = with_mac(provider, &h, |mac| {
                let i = at.index(mac.len());
                mac[i] ^= 1 << bit;
            });
            prop_assert_eq!(verify(provider, &key, &bad_mac, &body), Err(SignatureError::Mismatch), "{}", provider);
        }
    }

    /// A signature made with another secret never verifies, nor does
    /// another secret as GitLab's token.
    #[test]
    fn wrong_secret_fails(
        a in secret(),
        b in secret(),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        prop_assume!(!same_key(&a, &b));
        let (ka, kb) = (Key::new(&a), Key::new(&b));
        for provider in PROVIDERS {
            if let Some(h) = signed(provider, &ka, &body) {
                prop_assert_eq!(verify(provider, &kb, &h, &body), Err(SignatureError::Mismatch), "{}", provider);
            }
        }
        if let Ok(token) = HeaderValue::from_bytes(&a) {
            let mut h = HeaderMap::new();
            h.insert("x-gitlab-token", token);
            prop_assert_eq!(verify(Provider::Gitlab, &kb, &h, &body), Err(SignatureError::Mismatch));
        }
    }

    /// Hex signatures compare as numbers: any mix of upper and lower case
    /// verifies (GitHub documents lower case; proxies are known to change it).
    #[test]
    fn hex_case_does_not_matter(
        secret in secret(),
        body in prop::collection::vec(any::<u8>(), 0..256),
        mask in any::<u64>(),
    ) {
        let key = Key::new(&secret);
        for provider in HEX_SIGNERS {
            let h = signed(provider, &key, &body).expect("a hex signer signs");
            let name = sig_header(provider);
            let value = h[name].to_str().expect("ASCII");
            let (prefix, hex) = value.split_at(value.len() - 64);
            let mut recased = HeaderMap::new();
            recased.insert(name, HeaderValue::from_str(&format!("{prefix}{}", recase(hex, mask))).expect("ASCII"));
            prop_assert_eq!(verify(provider, &key, &recased, &body), Ok(()), "{}", provider);
        }
    }

    /// The filter deploys iff the ref is `refs/heads/<branch>`, the push did
    /// not delete it, and the repository matches without regard to ASCII
    /// case when the project names one.
    #[test]
    fn filter_deploys_exactly_its_branch(
        branch in name(),
        want_repo in prop::option::of(name()),
        git_ref in prop_oneof![
            name().prop_map(|b| format!("refs/heads/{b}")),
            name().prop_map(|t| format!("refs/tags/{t}")),
            name(),
            Just(String::new()),
        ],
        own_ref in any::<bool>(),
        repo in name(),
        same_repo in any::<bool>(),
        mask in any::<u64>(),
        deleted in any::<bool>(),
    ) {
        let p = project(&branch, want_repo.as_deref());
        prop_assume!(p.is_some());
        let p = p.unwrap();
        let push = Push {
            git_ref: if own_ref { format!("refs/heads/{branch}") } else { git_ref },
            repository: match (&want_repo, same_repo) {
                (Some(r), true) => recase(r, mask),
                _ => repo,
            },
            deleted,
            ..Push::default()
        };
        let expected = push.git_ref == format!("refs/heads/{branch}")
            && !push.deleted
            && want_repo.as_deref().is_none_or(|r| r.eq_ignore_ascii_case(&push.repository));
        let verdict = filter::filter(&p, &push);
        prop_assert_eq!(verdict == Verdict::Deploy, expected, "{:?} {:?}: {:?}", push, p, verdict);

        // `choose` takes the first push that deploys, wherever it is.
        let other = Push { git_ref: "refs/notes/x".into(), ..push.clone() };
        let chosen = filter::choose(&p, vec![other, push.clone()]);
        prop_assert_eq!(chosen.is_ok(), expected);
        if let Ok(c) = chosen {
            prop_assert_eq!(c, push);
        }
    }

    /// A push read only as far as the project needs (its first fields,
    /// when its ref or repository cannot deploy) is answered as the push
    /// read whole is: same event, same chosen push, same reason — for
    /// GitHub's and Gitea's shapes, whatever order the fields come in.
    #[test]
    fn a_push_read_as_far_as_needed_is_answered_alike(
        gitea in any::<bool>(),
        branch in prop_oneof![Just("main"), Just("dev")],
        tags in prop_oneof![Just(""), Just("v*")],
        want_repo in prop::option::of(prop_oneof![Just("acme/app"), Just("ACME/App"), Just("evil/app")]),
        paths in any::<bool>(),
        git_ref in prop_oneof![
            Just("refs/heads/main"), Just("refs/heads/dev"), Just("refs/tags/v1.2"),
            Just("refs/tags/nightly"), Just("refs/notes/x"), Just("main"),
        ],
        repo in prop::option::of(prop_oneof![Just("acme/app"), Just("evil/app")]),
        deleted in any::<bool>(),
        same in any::<bool>(),
        skip in any::<bool>(),
        order in Just((0..9).collect::<Vec<usize>>()).prop_shuffle(),
    ) {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        let zeros = "0".repeat(40);
        let after = if deleted { zeros.as_str() } else { sha };
        let before = if same { after } else { "1111111111111111111111111111111111111111" };
        let message = if skip { "Fix it [skip deploy]" } else { "Fix it" };
        let fields = [
            ("ref", json!(git_ref)),
            ("before", json!(before)),
            ("after", json!(after)),
            ("repository", repo.map_or(json!(null), |r| json!({"full_name": r, "pushed_at": 1_700_000_000}))),
            ("pusher", json!({"name": "octocat"})),
            ("deleted", json!(deleted)),
            ("commits", json!([{"id": after, "message": message, "added": ["src/a.rs"], "modified": [], "removed": []}])),
            ("head_commit", json!({"id": after, "message": message, "added": ["src/a.rs"], "modified": [], "removed": []})),
            ("total_commits", json!(1)),
        ];
        let body = format!(
            "{{{}}}",
            order.iter().map(|&i| format!("{:?}:{}", fields[i].0, fields[i].1)).collect::<Vec<_>>().join(",")
        );
        let mut keys = format!("branch = \"{branch}\"\n");
        if !tags.is_empty() {
            keys += &format!("tags = [\"{tags}\"]\n");
        }
        if let Some(r) = want_repo {
            keys += &format!("repository = \"{r}\"\n");
        }
        if paths {
            keys += "paths = [\"src/**\"]\n";
        }
        let p = project_with(&keys);
        let (provider, event) = if gitea {
            (Provider::Gitea, "x-gitea-event")
        } else {
            (Provider::Github, "x-github-event")
        };
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(event, HeaderValue::from_static("push"));
        let judge = |push: &Push| filter::may_deploy(&p, push);
        let reading = forge::Reading {
            files: paths,
            repository: want_repo.is_some(),
            may_deploy: Some(&judge),
        };
        let answer = |d: Result<forge::Delivery, forge::EventError>| match d {
            Ok(forge::Delivery { event: forge::Event::Push(pushes), signed_at, .. }) => {
                format!("{:?} {signed_at:?}", filter::choose(&p, pushes).map(|p| p.after))
            }
            other => format!("{other:?}"),
        };
        let whole = answer(forge::parse(provider, &h, body.as_bytes()));
        let part = answer(forge::parse_with(provider, &h, body.as_bytes(), &reading));
        prop_assert_eq!(&part, &whole, "{}", body);
    }

    /// A tag push never deploys, whatever the project's branch is called.
    #[test]
    fn tags_never_deploy(branch in name(), tag in name(), repo in name()) {
        let p = project(&branch, Some(&repo));
        prop_assume!(p.is_some());
        let mut p = p.unwrap();
        let push = Push {
            git_ref: format!("refs/tags/{tag}"),
            repository: repo,
            ..Push::default()
        };
        prop_assert_ne!(filter::filter(&p, &push), Verdict::Deploy);
        // Not even a project "on" the tag's own name.
        if let Some(on_tag) = exactly(&tag) {
            p.branches = on_tag;
            prop_assert_ne!(filter::filter(&p, &push), Verdict::Deploy);
        }
    }

    /// Parsing and verifying never panic, whatever the bytes, the event
    /// header and the content type.
    #[test]
    fn parse_never_panics(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            // JSON-ish bytes get further into the payload types.
            "[\\[\\]{}\":,a-z0-9 ]{0,200}".prop_map(String::into_bytes),
            "\\{\"(ref|after|push|changes|new|old)\":.{0,80}".prop_map(String::into_bytes),
        ],
        event_name in prop_oneof![
            Just("push".to_string()),
            Just("ping".to_string()),
            Just("Push Hook".to_string()),
            Just("Tag Push Hook".to_string()),
            Just("repo:push".to_string()),
            Just("diagnostics:ping".to_string()),
            "[ -~]{0,20}",
        ],
        form in any::<bool>(),
        sig in prop::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut h = HeaderMap::new();
        let content_type = if form { "application/x-www-form-urlencoded" } else { "application/json" };
        h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        let event_name = HeaderValue::from_str(&event_name).expect("printable ASCII");
        for name in ["x-github-event", "x-gitea-event", "x-forgejo-event", "x-gitlab-event", "x-event-key"] {
            h.insert(name, event_name.clone());
        }
        if let Ok(sig) = HeaderValue::from_bytes(&sig) {
            for name in ["x-hub-signature-256", "x-hub-signature", "x-gitea-signature", "x-gitlab-token", "webhook-signature", "webhook-id", "webhook-timestamp"] {
                h.insert(name, sig.clone());
            }
        }
        let key = Key::new(b"s3cret");
        let p = project("main", None).expect("main is a branch name");
        for provider in PROVIDERS {
            let _ = forge::verify(provider, &key, &h, &body);
            if let Ok(forge::Delivery { event: forge::Event::Push(pushes), .. }) = forge::parse(provider, &h, &body) {
                let _ = filter::choose(&p, pushes);
            }
        }
    }
}
