//! Microbenchmarks of what every webhook request costs before any I/O:
//! `cargo bench` (`cargo bench -- verify` for one). The HTTP-level figures
//! are `scripts/bench.sh`'s; these isolate the three steps of the handler on
//! the same 8 KB GitHub push: signature, payload, filter.
#![allow(missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use deployd::config;
use deployd::forge::{self, Event, Key, Provider};
use deployd::intake::filter;
use hyper::HeaderMap;
use hyper::header::HeaderValue;

/// A real-shaped GitHub push of 8 KB (8 commits): `ref` is
/// `refs/heads/main` of `acme/app`.
const PUSH: &[u8] = include_bytes!("push-8k.json");
const SECRET: &str = "bench-secret-5d1f0c";

fn project() -> config::Project {
    let text = format!(
        "[projects.app]\nsecret = \"{SECRET}\"\nrepository = \"acme/app\"\nbranch = \"main\"\n\
         script = \"/bin/true\"\n"
    );
    config::parse(&text, Path::new("/bench.toml"), &config::SystemSecrets)
        .expect("bench config parses")
        .projects
        .remove("app")
        .expect("project app")
}

fn headers(key: &Key, body: &[u8]) -> HeaderMap {
    let (name, value) = forge::sign_header(Provider::Github, key, body).expect("github signs");
    let mut h = HeaderMap::new();
    h.insert(name, HeaderValue::from_str(&value).expect("hex"));
    h.insert("x-github-event", HeaderValue::from_static("push"));
    h.insert(
        "x-github-delivery",
        HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    );
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h
}

fn verify(c: &mut Criterion) {
    let key = Key::new(SECRET.as_bytes());
    let good = headers(&key, PUSH);
    let bad = headers(&Key::new(b"another secret"), PUSH);
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Bytes(PUSH.len() as u64));
    g.bench_function("8 KB, good signature", |b| {
        b.iter(|| forge::verify(Provider::Github, &key, black_box(&good), black_box(PUSH)))
    });
    g.bench_function("8 KB, bad signature", |b| {
        b.iter(|| forge::verify(Provider::Github, &key, black_box(&bad), black_box(PUSH)))
    });
    g.finish();
}

fn parse(c: &mut Criterion) {
    let key = Key::new(SECRET.as_bytes());
    let h = headers(&key, PUSH);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(PUSH.len() as u64));
    g.bench_function("8 KB push", |b| {
        b.iter(|| forge::parse(Provider::Github, black_box(&h), black_box(PUSH)))
    });
    // As the daemon reads it for a project without path filters; then the
    // same push to a branch the project does not deploy, read no further
    // than its first fields.
    let project = project();
    let may_deploy = |push: &deployd::forge::push::Push| filter::may_deploy(&project, push);
    let reading = forge::Reading {
        files: false,
        repository: true,
        may_deploy: Some(&may_deploy),
    };
    g.bench_function("8 KB push, no path filters", |b| {
        b.iter(|| forge::parse_with(Provider::Github, black_box(&h), black_box(PUSH), &reading))
    });
    let other = String::from_utf8(PUSH.to_vec()).expect("UTF-8").replacen(
        "\"ref\":\"refs/heads/main\"",
        "\"ref\":\"refs/heads/feat\"",
        1,
    );
    assert_ne!(other.as_bytes(), PUSH, "the fixture pushes refs/heads/main");
    g.bench_function("8 KB push to another branch", |b| {
        b.iter(|| {
            forge::parse_with(
                Provider::Github,
                black_box(&h),
                black_box(other.as_bytes()),
                &reading,
            )
        })
    });
    g.finish();
}

fn filter(c: &mut Criterion) {
    let project = project();
    let key = Key::new(SECRET.as_bytes());
    let h = headers(&key, PUSH);
    let Ok(forge::Delivery {
        event: Event::Push(pushes),
        ..
    }) = forge::parse(Provider::Github, &h, PUSH)
    else {
        panic!("the fixture is a push");
    };
    let mut ignored = pushes.clone();
    ignored[0].git_ref = "refs/heads/feat".into();
    let mut g = c.benchmark_group("filter");
    g.bench_function("deploys", |b| {
        b.iter(|| filter::choose(black_box(&project), black_box(pushes.clone())))
    });
    g.bench_function("ignored branch", |b| {
        b.iter(|| filter::choose(black_box(&project), black_box(ignored.clone())))
    });
    g.finish();
}

criterion_group!(benches, verify, parse, filter);
criterion_main!(benches);
