//! Real git repositories for the tests whose behaviour is about git: a bare
//! `origin.git`, a developer's `dev/` that pushes to it, and the deployed
//! checkout `app/`, all under one [`TestDir`], with git isolated from the
//! machine's own configuration.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{TestDir, describe, output_of};

/// The repositories of one test.
pub struct Repos {
    pub dir: TestDir,
    /// The bare repository, reached as [`Repos::url`].
    pub origin: PathBuf,
    /// A developer's clone: commits are made and pushed here.
    pub dev: PathBuf,
    /// The checkout a deploy works in, cloned from origin.
    pub app: PathBuf,
}

impl Repos {
    /// `origin.git` whose main holds one commit writing `content` to
    /// `file`, with `dev/` pushing to it and `app/` cloned from it.
    pub fn new(name: &str, file: &str, content: &str) -> Repos {
        let dir = TestDir::new(name);
        let (origin, dev, app) = (dir.join("origin.git"), dir.join("dev"), dir.join("app"));
        let r = Repos {
            dir,
            origin,
            dev,
            app,
        };
        r.git(
            &r.dir.path,
            &["init", "--quiet", "--bare", "-b", "main", "origin.git"],
        );
        r.git(&r.dir.path, &["init", "--quiet", "-b", "main", "dev"]);
        r.git(&r.dev, &["remote", "add", "origin", &r.url()]);
        r.commit_file(file, content, "initial");
        r.git(&r.dir.path, &["clone", "--quiet", &r.url(), "app"]);
        r
    }

    /// Origin's `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.origin.display())
    }

    /// Runs git in `cwd`; panics with its output unless it succeeds; returns
    /// its stdout, trimmed.
    pub fn git(&self, cwd: &Path, args: &[&str]) -> String {
        let out = output_of(
            Command::new("git")
                .args(args)
                .current_dir(cwd)
                .env("HOME", &self.dir.path)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "Dev")
                .env("GIT_AUTHOR_EMAIL", "dev@example.com")
                .env("GIT_COMMITTER_NAME", "Dev")
                .env("GIT_COMMITTER_EMAIL", "dev@example.com")
                .env("GIT_TERMINAL_PROMPT", "0")
                .env_remove("GIT_DIR")
                .env_remove("GIT_WORK_TREE")
                .env_remove("GIT_INDEX_FILE"),
        );
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("git {args:?} in {}", cwd.display()), &out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Writes `content` to `file` in `dev/`, commits it as `message` and
    /// pushes it to origin's main; returns the new commit.
    pub fn commit_file(&self, file: &str, content: &str, message: &str) -> String {
        std::fs::write(self.dev.join(file), content).unwrap();
        self.git(&self.dev, &["add", file]);
        self.git(&self.dev, &["commit", "--quiet", "-m", message]);
        self.git(
            &self.dev,
            &["push", "--quiet", "origin", "HEAD:refs/heads/main"],
        );
        self.git(&self.dev, &["rev-parse", "HEAD"])
    }

    /// The commit `app/` has checked out.
    pub fn deployed(&self) -> String {
        self.git(&self.app, &["rev-parse", "HEAD"])
    }
}
