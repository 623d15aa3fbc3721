//! A `deployd deploy` with no daemon, run by root over a state_dir another
//! user owns (the daemon's): refused with a usage error before anything
//! runs, so no root-owned file lands in the daemon's state.

use crate::common;
use common::*;

use std::os::unix::fs::MetadataExt;

/// The uid of `nobody` on Debian: an owner that is not root.
const NOBODY: u32 = 65534;

#[test]
fn root_may_not_deploy_over_a_state_dir_another_user_owns() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root is refused this");
        return;
    }
    let dir = TestDir::new("foreign-root");
    let ran = dir.join("ran");
    let script = dir.script(
        "deploy.sh",
        &format!("#!/bin/sh\ntouch {}\n", ran.display()),
    );
    let config = write_config(&dir, "", &project("app", &script, ""));
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).unwrap();

    let args = ["deploy", "app", "--sha", SHA_A];
    let out = cli(&config, &args);
    let (_, stderr) = expect_code(&out, 2, &explain(&config, &args, &out));
    let owner = nix::unistd::User::from_uid(NOBODY.into())
        .ok()
        .flatten()
        .map_or(NOBODY.to_string(), |u| u.name);
    assert!(
        stderr.contains(&format!("belongs to {owner}: run the deploy as that user")),
        "{}",
        explain(&config, &args, &out)
    );
    assert!(!ran.exists(), "the script ran");
    // Nothing was created in it as root.
    for entry in std::fs::read_dir(&state).unwrap() {
        let entry = entry.unwrap();
        assert_ne!(entry.metadata().unwrap().uid(), 0, "{:?}", entry.path());
    }
}
