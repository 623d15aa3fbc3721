//! `config::parse` on arbitrary UTF-8 text.
//!
//! Secrets come from a fake that answers every file and variable with a
//! fixed value (a few names fail on purpose), and relative paths resolve
//! against the repository root, so `script = "/bin/sh"` or
//! `script = "scripts/deploy-git.sh"` pass and validation goes all the way.
//! Checks: no panic; an error's line is within the text (never 0); a config that
//! parses keeps the promises `Config` documents, and each of its durations
//! can be added to the clock (the daemon turns them into deadlines).

#![no_main]

use std::io;
use std::path::Path;
use std::time::Instant;

use deployd::config::{self, ConfigError, Secrets};
use libfuzzer_sys::fuzz_target;

struct Fixed;

impl Secrets for Fixed {
    fn file(&self, path: &Path) -> io::Result<String> {
        match path.file_name().and_then(|f| f.to_str()) {
            Some("missing.secret") => Err(io::ErrorKind::NotFound.into()),
            Some("empty.secret") => Ok("\n".into()),
            _ => Ok("s3cret\r\n".into()),
        }
    }
    fn env(&self, name: &str) -> Option<String> {
        match name {
            "UNSET" => None,
            "CREDENTIALS_DIRECTORY" => Some("/run/credentials/deployd.service".into()),
            _ => Some("from-env".into()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy.toml"));
    match config::parse(text, path, &Fixed) {
        Err(e) => {
            let _ = e.to_string();
            if let ConfigError::Invalid { line, .. } = e {
                assert!(
                    line >= 1 && line <= text.lines().count() + 1,
                    "line {line} of a {}-line text",
                    text.lines().count()
                );
            }
        }
        Ok(c) => {
            let s = &c.server;
            assert!(s.parallel >= 1 && s.max_connections >= 1 && s.max_body > 0);
            for d in [s.header_timeout, s.request_timeout, s.idle_timeout] {
                assert!(!d.is_zero());
            }
            let now = Instant::now();
            let durations = [
                s.shutdown_grace,
                s.header_timeout,
                s.request_timeout,
                s.idle_timeout,
            ];
            let per_project = c.projects.values().flat_map(|p| [p.timeout, p.kill_grace]);
            for d in durations.into_iter().chain(per_project) {
                assert!(now.checked_add(d).is_some(), "{d:?} cannot be a deadline");
            }
            for (name, p) in &c.projects {
                assert_eq!(name, &p.name);
                assert_eq!(p.hook_path(), format!("/hooks/{name}"));
                assert!(
                    p.branches
                        .written()
                        .iter()
                        .all(|b| !b.is_empty() && !b.starts_with("refs/"))
                );
                assert!(p.script.is_file(), "{}", p.script.display());
                assert!(!p.timeout.is_zero() && p.keep_runs >= 1);
                assert_ne!(p.repository.as_deref(), Some(""));
            }
        }
    }
});
