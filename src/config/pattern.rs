//! Globs a project's triggers are written in: branch and tag names
//! (`release/*`, `v*`) and changed paths in the gitignore style
//! (`api/**`, `*.md`, `docs/`). Compiled once, when the config is read, so
//! a glob that does not compile is a config error and a delivery only
//! matches. Knows nothing of the crate: config and filter both use it.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A list of globs as written, and compiled into one matcher.
#[derive(Debug, Clone)]
pub struct Patterns {
    /// As the config wrote them, for `check` and for messages.
    written: Vec<String>,
    /// Every glob (and its variants, for paths) at once.
    set: GlobSet,
}

impl Default for Patterns {
    fn default() -> Self {
        Patterns {
            written: Vec::new(),
            set: GlobSet::empty(),
        }
    }
}

/// How a written glob is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A branch or tag name: the whole name must match; `*` stays within
    /// one `/`-separated part and `**` crosses them (`release/*` matches
    /// `release/1.2`, not `release/1.2/hotfix`), as GitHub Actions reads
    /// its `branches` and `tags` filters.
    Name,
    /// A path of the repository, read as a `.gitignore` line reads: a glob
    /// without a `/` matches a file or directory of that name at any depth
    /// (`*.md`, `node_modules`), one with a `/` is anchored at the root
    /// (`api/**`, `/Cargo.lock`, `docs/`), and a directory matches every
    /// path under it.
    Path,
}

impl Patterns {
    /// Compiles `globs` read as `kind`; the error names the glob and says
    /// what is wrong with it.
    pub fn new(kind: Kind, globs: &[String]) -> Result<Patterns, String> {
        let mut set = GlobSetBuilder::new();
        for written in globs {
            for glob in variants(kind, written)? {
                let compiled = GlobBuilder::new(&glob)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| format!("{written:?} is not a glob: {}", e.kind()))?;
                set.add(compiled);
            }
        }
        let set = set
            .build()
            .map_err(|e| format!("the globs do not compile: {e}"))?;
        Ok(Patterns {
            written: globs.to_vec(),
            set,
        })
    }

    /// One name matched exactly, whatever characters it holds (glob
    /// characters and backslashes are escaped); for a branch named in code
    /// rather than in a config. Fails for what [`Kind::Name`] refuses.
    pub fn exact(name: &str) -> Result<Patterns, String> {
        let glob = globset::escape(name).replace('\\', "\\\\");
        let mut p = Patterns::new(Kind::Name, &[glob])?;
        p.written = vec![name.to_string()];
        Ok(p)
    }

    /// Whether some glob matches `text` (a name or a path).
    pub fn matches(&self, text: &str) -> bool {
        self.set.is_match(text)
    }

    /// Whether there is no glob at all.
    pub fn is_empty(&self) -> bool {
        self.written.is_empty()
    }

    /// The globs as written.
    pub fn written(&self) -> &[String] {
        &self.written
    }
}

/// The globs one written glob stands for.
fn variants(kind: Kind, written: &str) -> Result<Vec<String>, String> {
    if written.is_empty() {
        return Err("an empty glob matches nothing".into());
    }
    if written.starts_with('!') {
        return Err(format!(
            "{written:?}: negation with '!' is not supported; \
             list what should not count in paths_ignore"
        ));
    }
    match kind {
        Kind::Name => {
            if written.starts_with("refs/") {
                return Err(format!(
                    "{written:?}: give the name alone, without refs/heads/ or refs/tags/"
                ));
            }
            Ok(vec![written.to_string()])
        }
        Kind::Path => {
            let anchored = written.starts_with('/');
            let trimmed = written.trim_start_matches('/').trim_end_matches('/');
            if trimmed.is_empty() {
                return Err(format!("{written:?} names no path"));
            }
            let base = if anchored || trimmed.contains('/') {
                trimmed.to_string()
            } else {
                format!("**/{trimmed}")
            };
            // The glob itself (a file, or a directory as a whole) and
            // everything under a directory it names. A trailing `/` is
            // gitignore's "directories only"; changed paths are files, so
            // only what is under it can match.
            let under = format!("{base}/**");
            Ok(if written.ends_with('/') {
                vec![under]
            } else {
                vec![base, under]
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kind: Kind, globs: &[&str]) -> Patterns {
        Patterns::new(
            kind,
            &globs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn names() {
        let b = p(Kind::Name, &["main", "release/*", "v*"]);
        for yes in ["main", "release/1.2", "v1.2.0"] {
            assert!(b.matches(yes), "{yes}");
        }
        for no in ["mainline", "release/1.2/hotfix", "release", "x/main", "dev"] {
            assert!(!b.matches(no), "{no}");
        }
        assert!(p(Kind::Name, &["release/**"]).matches("release/a/b"));
        assert!(Patterns::new(Kind::Name, &["refs/heads/main".into()]).is_err());
        let odd = Patterns::exact("a*b\\[c]").unwrap();
        assert!(odd.matches("a*b\\[c]"));
        assert!(!odd.matches("axb\\[c]") && !odd.matches("a*b\\c"));
        assert_eq!(odd.written(), ["a*b\\[c]"]);
    }

    #[test]
    fn paths_read_as_gitignore_lines() {
        let api = p(Kind::Path, &["api/**", "Cargo.lock", "*.sql", "docs/"]);
        for yes in [
            "api/src/main.rs",
            "Cargo.lock",
            "crates/x/Cargo.lock",
            "db/001.sql",
            "init.sql",
            "docs/a/b.md",
        ] {
            assert!(api.matches(yes), "{yes}");
        }
        for no in ["web/api/x", "apix/y", "Cargo.toml", "x.sqlite", "docs"] {
            assert!(!api.matches(no), "{no}");
        }
        // Anchored at the root by a leading '/' or an inner one.
        let root = p(Kind::Path, &["/README.md", "web/*.html"]);
        assert!(root.matches("README.md"));
        assert!(!root.matches("docs/README.md"));
        assert!(root.matches("web/index.html"));
        assert!(!root.matches("web/a/index.html"));
        assert!(!root.matches("x/web/index.html"));
        // A bare name is a file or a directory at any depth.
        let nm = p(Kind::Path, &["node_modules"]);
        assert!(nm.matches("node_modules/a/b.js"));
        assert!(nm.matches("web/node_modules/a.js"));
    }

    #[test]
    fn bad_globs_say_why() {
        for (bad, says) in [
            ("api/[", "not a glob"),
            ("", "empty"),
            ("!docs/**", "paths_ignore"),
            ("/", "no path"),
        ] {
            let e = Patterns::new(Kind::Path, &[bad.to_string()]).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
