//! A fleet run's record as every reader sees it, without sshd or root: the
//! hosts are 127.0.0.1 on ports nobody listens on, so ssh is refused at
//! once and each host the rollout reaches fails (exit code 255). With
//! `max_failures = 1` and three hosts, web1 and web2 fail and web3 is
//! skipped: a record with host states, timings and logs. It is read back by
//! `history` (text and JSON), `logs --host`, the status page (the hosts'
//! badges, each host's page and plain log), `/metrics` and a notification.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use crate::common::*;
use crate::web::{bearer, get, openmetrics_families, web_addr};

const T: Duration = Duration::from_secs(30);

/// A port of 127.0.0.1 nobody listens on (bound, then let go).
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_fleet_record_in_history_logs_page_metrics_and_notifications() {
    let dir = TestDir::new("fleet-web");
    let script = dir.script("deploy.sh", "#!/bin/sh\necho deploying\n");
    let solo = dir.script("solo.sh", "#!/bin/sh\necho here\n");
    let known = dir.join("known_hosts");
    std::fs::write(&known, "").unwrap();
    let said = dir.join("notified.json");
    let notify = dir.script(
        "notify.sh",
        &format!("#!/bin/sh\ncat > {}\n", said.display()),
    );
    let hosts: Vec<String> = ["web1", "web2", "web3"]
        .iter()
        .map(|n| {
            format!(
                "{{ name = \"{n}\", address = \"127.0.0.1\", port = {} }}",
                closed_port()
            )
        })
        .collect();
    let fleet = format!(
        "hosts = [{}]\nknown_hosts = \"{}\"\nmax_failures = 1\n",
        hosts.join(", "),
        known.display()
    );
    let config = write_config(
        &dir,
        &format!(
            "[web]\nlisten = \"127.0.0.1:0\"\ntoken = \"{}\"\nmetrics_public = true\n",
            crate::web::TOKEN
        ),
        &format!(
            "{}{}[notify.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\non = [\"failed\"]\n",
            project("app", &script, &fleet),
            project("solo", &solo, ""),
            notify.display()
        ),
    );
    let d = Daemon::start(&config);
    let w = web_addr(&d);
    // Through the daemon, so that its metrics count the run.
    cli_ok(&config, &["deploy", "app"], 1);
    cli_ok(&config, &["deploy", "solo"], 0);

    // The record: each host's status, timings and exit code.
    let run = &history(&config, "app")[0];
    assert_eq!(run["status"], "failed", "{run}");
    let hosts = run["hosts"].as_array().unwrap();
    let field = |i: usize, k: &str| hosts[i][k].clone();
    for i in 0..2 {
        assert_eq!(field(i, "status"), "failed", "{run}");
        assert_eq!(field(i, "exit_code"), 255, "{run}");
        assert!(field(i, "started_at").is_string(), "{run}");
        assert!(field(i, "finished_at").is_string(), "{run}");
        assert!(
            field(i, "note").as_str().unwrap().contains("unreachable"),
            "{run}"
        );
    }
    assert_eq!(field(2, "status"), "skipped", "{run}");
    for k in ["exit_code", "started_at", "finished_at"] {
        assert!(field(2, k).is_null(), "{k}: {run}");
    }
    let text = cli_ok(&config, &["history", "app"], 0);
    assert!(
        text.contains(
            "hosts: web1 failed (exit code 255), web2 failed (exit code 255), web3 skipped"
        ),
        "{text}"
    );
    assert!(
        !cli_ok(&config, &["history", "solo"], 0).contains("hosts:"),
        "a run without hosts shows none"
    );

    // One log per host; the run's log holds their lines prefixed.
    let id = run["id"].to_string();
    let own = cli_ok(&config, &["logs", "app", &id, "--host", "web2"], 0);
    assert!(
        own.contains("=== deployd: deploy of") && own.contains("on web2"),
        "{own}"
    );
    assert!(!own.contains("web1"), "{own}");
    let all = cli_ok(&config, &["logs", "app"], 0);
    assert!(
        all.contains("[web1] === deployd: deploy of") && all.contains("[web2] "),
        "{all}"
    );
    let unknown = cli(&config, &["logs", "app", &id, "--host", "web9"]);
    let (_, err) = expect_code(&unknown, 2, "logs --host web9");
    assert!(
        err.contains("no host \"web9\"") && err.contains("web1, web2, web3"),
        "{err}"
    );
    let skipped = cli(&config, &["logs", "app", &id, "--host", "web3"]);
    let (_, err) = expect_code(&skipped, 1, "logs --host web3");
    assert!(
        err.contains("web3 has no log") && err.contains("skipped"),
        "{err}"
    );
    let no_hosts = cli(&config, &["logs", "solo", "--host", "web1"]);
    let (_, err) = expect_code(&no_hosts, 2, "logs solo --host web1");
    assert!(err.contains("has no hosts"), "{err}");

    // The status page: the hosts as labelled badges, each host's own log,
    // escaped like the run's.
    let (k, v) = bearer();
    let auth = [(k, v.as_str())];
    let page = get(w, &format!("/projects/app/runs/{id}"), &auth);
    assert_eq!(page.status, 200, "{}", page.body);
    for needle in [
        "<ul class=\"hosts\" aria-label=\"Hosts\">",
        &format!("<a class=\"st bad\" href=\"/projects/app/runs/{id}/hosts/web1\""),
        ">web1: failed</a>",
        &format!("<a class=\"st idle\" href=\"/projects/app/runs/{id}/hosts/web3\""),
        ">web3: skipped</a>",
    ] {
        assert!(page.body.contains(needle), "{needle} not in\n{}", page.body);
    }
    let list = get(w, "/projects/app", &auth).body;
    assert!(
        list.contains("<th scope=\"col\">Hosts</th>")
            && list.contains("<span class=\"st bad\"")
            && list.contains(">web2: failed</span>")
            && list.contains(">web3: skipped</span>"),
        "{list}"
    );
    assert!(
        !get(w, "/projects/solo", &auth).body.contains(">Hosts</th>"),
        "a project without hosts has no hosts column"
    );
    let log_path = PathBuf::from(field(0, "log").as_str().unwrap());
    let mut hostile = std::fs::read_to_string(&log_path).unwrap();
    hostile.push_str("<script>alert(1)</script>\n");
    std::fs::write(&log_path, &hostile).unwrap();
    let host_page = get(w, &format!("/projects/app/runs/{id}/hosts/web1"), &auth);
    assert_eq!(host_page.status, 200, "{}", host_page.body);
    assert!(
        host_page.body.contains("Log of web1")
            && host_page
                .body
                .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            && !host_page.body.contains("<script>alert")
            && host_page.body.contains("<dt>Exit code</dt><dd>255</dd>"),
        "{}",
        host_page.body
    );
    assert!(!host_page.body.contains("on web2"), "{}", host_page.body);
    let plain = get(w, &format!("/projects/app/runs/{id}/hosts/web1/log"), &auth);
    // Chunked: the body holds the file between chunk sizes.
    assert_eq!(plain.status, 200);
    assert!(
        plain.body.contains("<script>alert(1)</script>")
            && plain.body.contains("Connection refused")
            && plain
                .header("content-type")
                .unwrap()
                .starts_with("text/plain"),
        "{}",
        plain.body
    );
    // The live stream of a host's log, here of a run that ended: its
    // lines, then the end.
    let live = get(
        w,
        &format!("/projects/app/runs/{id}/hosts/web1/events"),
        &auth,
    );
    assert!(
        live.body.contains("Connection refused")
            && live.body.contains("&lt;script&gt;")
            && live.body.contains("event: end")
            && !live.body.contains("on web2"),
        "{}",
        live.body
    );
    for missing in ["hosts/web9", "hosts/web9/log", "hosts/web1/nope"] {
        let a = get(w, &format!("/projects/app/runs/{id}/{missing}"), &auth);
        assert_eq!(a.status, 404, "{missing}");
    }

    // Metrics per host, valid OpenMetrics.
    let mut text = String::new();
    wait_until(T, "the hosts counted", || {
        text = get(w, "/metrics", &[]).body;
        text.contains("deployd_host_runs_total{project=\"app\",host=\"web3\",status=\"skipped\"} 1")
    });
    for needle in [
        "deployd_host_runs_total{project=\"app\",host=\"web1\",status=\"failed\"} 1",
        "deployd_host_runs_total{project=\"app\",host=\"web2\",status=\"failed\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing:\n{text}");
    }
    assert!(!text.contains("host=\"\""), "{text}");
    let names = openmetrics_families(&text);
    assert!(
        names.split_whitespace().any(|f| f == "deployd_host_runs"),
        "{names}"
    );

    // The notification names the hosts that failed.
    wait_until(T, "the failure notified", || said.exists());
    let doc: serde_json::Value = poll(T, "the notification written", || {
        serde_json::from_str(&std::fs::read_to_string(&said).unwrap()).map_err(|e| e.to_string())
    });
    assert_eq!(
        doc["failed_hosts"],
        serde_json::json!(["web1 (failed)", "web2 (failed)"]),
        "{doc}"
    );
    drop(d);
}
