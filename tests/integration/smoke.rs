//! A first end-to-end check: a signed push deploys the demo-like project.

use crate::common;
use common::*;
use std::time::Duration;

#[test]
fn signed_push_deploys_once() {
    let dir = TestDir::new("smoke");
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\necho \"deploying $DEPLOY_SHA for $DEPLOY_PROJECT\"\n",
    );
    let config = write_config(&dir, "", &project("app", &script, ""));
    let d = Daemon::start(&config);
    let (status, body) = d.push("app", "refs/heads/main", SHA_A, "smoke-1");
    assert_eq!(status, 202, "{body}");
    let runs = wait_runs(&config, "app", 1, Duration::from_secs(20));
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["sha"], SHA_A);
    let log = cli_ok(&config, &["logs", "app"], 0);
    assert!(log.contains(&format!("deploying {SHA_A} for app")), "{log}");
}
