//! Secret values: where each one may be given, and the one rule for all of
//! them — a project's `secret` and `secret_previous`, a report's `token`, a
//! notify target's `url` and `secret`, the web page's `token` — that at most
//! one of `X`, `X_file`, `X_env`, `X_credential` gives it ([`choose`]); then
//! reading it ([`Chosen::read`]) and saying where it came from without
//! saying what it is ([`Chosen::describe`]).

use std::path::{Path, PathBuf};

use crate::config::places::{credential_file, resolve_in};
use crate::config::shape::{PathText, SecretText, Text};

/// A secret value read from one of the four sources (a token, or a URL
/// that is itself a secret): never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Reads secrets named by a config; a trait so tests need no files or variables.
pub trait Secrets {
    /// Contents of a secret file.
    fn file(&self, path: &Path) -> std::io::Result<String>;
    /// Value of an environment variable.
    fn env(&self, name: &str) -> Option<String>;
    /// Whether the paths a run will use (script, working directory) are
    /// looked at too. The commands that only read state (status, history,
    /// logs) say no: they must still work when a script has just broken —
    /// that is when an operator reads the history.
    fn check_run_paths(&self) -> bool {
        true
    }
}

/// The real sources: the filesystem and the process environment.
pub struct SystemSecrets;

impl Secrets for SystemSecrets {
    fn file(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Stands in for every secret source (see [`crate::config::load_without_secrets`]).
pub(super) struct NoSecrets;

impl Secrets for NoSecrets {
    fn file(&self, _: &Path) -> std::io::Result<String> {
        Ok("secret not loaded".into())
    }
    fn env(&self, name: &str) -> Option<String> {
        Some(if name == "CREDENTIALS_DIRECTORY" {
            "/".into()
        } else {
            "secret not loaded".into()
        })
    }
    fn check_run_paths(&self) -> bool {
        false
    }
}

/// Where a secret comes from, before it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SecretSource {
    Inline(String),
    File(PathBuf),
    Env(String),
    Credential(String),
}

/// The four keys one secret value may be given under, in the order the
/// file's reader is told them: the value itself, `_file`, `_env`,
/// `_credential`.
pub(super) type Keys = [&'static str; 4];

/// A project's webhook secret.
pub(super) const SECRET: Keys = ["secret", "secret_file", "secret_env", "secret_credential"];
/// The webhook secret being rotated out.
pub(super) const SECRET_PREVIOUS: Keys = [
    "secret_previous",
    "secret_previous_file",
    "secret_previous_env",
    "secret_previous_credential",
];
/// An API token (`[projects.NAME.report]`) or the status page's token (`[web]`).
pub(super) const TOKEN: Keys = ["token", "token_file", "token_env", "token_credential"];
/// A notify target's URL, often a secret itself.
pub(super) const URL: Keys = ["url", "url_file", "url_env", "url_credential"];

/// What a second key is told: "give exactly one of …" where the value is
/// needed (or, for the optional ones, always was said so); the web page's
/// token has always said "at most".
#[derive(Clone, Copy)]
pub(super) enum Rule {
    /// "give exactly one of …".
    ExactlyOne,
    /// "give at most one of …".
    AtMostOne,
}

/// A key and what is wrong with its value, for the caller to place under
/// its table.
pub(super) type Problem = (&'static str, String);

/// The one key that gave a secret value, and where it says to read it.
pub(super) struct Chosen {
    /// The key as the file wrote it (`secret_env`, `token_file`, …).
    pub key: &'static str,
    /// Where the value is read from.
    pub source: SecretSource,
}

/// The sources of one secret value as a table gives them (the value, a
/// file — resolved against `base` —, a variable, a credential), in the
/// order of [`Keys`].
pub(super) fn given(
    inline: Option<SecretText>,
    file: Option<PathText>,
    env: Option<Text>,
    credential: Option<Text>,
    base: &Path,
) -> [Option<SecretSource>; 4] {
    [
        inline.map(|s| SecretSource::Inline(s.0)),
        file.map(|f| SecretSource::File(resolve_in(base, &f.0))),
        env.map(|v| SecretSource::Env(v.0)),
        credential.map(|c| SecretSource::Credential(c.0)),
    ]
}

/// At most one of `keys` may give the value: which one did (`None` when
/// none did; whether that is allowed is the caller's to say), or an error
/// on the second key given.
pub(super) fn choose(
    keys: Keys,
    given: [Option<SecretSource>; 4],
    rule: Rule,
) -> Result<Option<Chosen>, Problem> {
    let mut chosen = None;
    for (key, source) in keys.into_iter().zip(given) {
        let Some(source) = source else { continue };
        if chosen.is_some() {
            let how = match rule {
                Rule::ExactlyOne => "exactly",
                Rule::AtMostOne => "at most",
            };
            return Err((key, format!("give {how} one of {}", keys.join(", "))));
        }
        chosen = Some(Chosen { key, source });
    }
    Ok(chosen)
}

impl Chosen {
    /// The value, read from its source; an error under the key that named it.
    pub fn read(&self, secrets: &dyn Secrets) -> Result<String, Problem> {
        read_secret(&self.source, secrets).map_err(|m| (self.key, m))
    }

    /// The value, which may not be empty: "the `what` is empty" otherwise.
    pub fn read_filled(&self, what: &str, secrets: &dyn Secrets) -> Result<String, Problem> {
        let value = self.read(secrets)?;
        if value.is_empty() {
            return Err((self.key, format!("the {what} is empty")));
        }
        Ok(value)
    }

    /// Where the value named `what` (`secret`, `url`, `token`) is read
    /// from, for `check`.
    pub fn describe(&self, what: &str, secrets: &dyn Secrets) -> String {
        describe_as(what, &self.source, secrets)
    }
}

/// Whether a description from [`Chosen::describe`] (or a project's
/// `previous …` one) says the value is written in the config itself.
pub(super) fn is_inline(described: &str) -> bool {
    ["secret", "previous secret", "token", "url"]
        .iter()
        .any(|what| described == format!("{what} inline in the config"))
}

/// What `deployd check` says of a project's secret: the key, and where the
/// secret is read from.
pub(super) fn describe_source(source: &SecretSource, secrets: &dyn Secrets) -> String {
    describe_as("secret", source, secrets)
}

/// Where a secret value named `what` (`secret`, `url`, `token`) is read
/// from, in the config's words: never the value.
pub(super) fn describe_as(what: &str, source: &SecretSource, secrets: &dyn Secrets) -> String {
    match source {
        SecretSource::Inline(_) => format!("{what} inline in the config"),
        SecretSource::File(p) => format!("{what}_file {}", p.display()),
        SecretSource::Env(v) => format!("{what}_env ${v}"),
        SecretSource::Credential(c) => match credential_file(c, secrets) {
            Some(f) => format!("{what}_credential {c} from {}", f.display()),
            None => format!("{what}_credential {c}"),
        },
    }
}

/// The value at `source`; a file's one trailing line end is not part of it.
pub(super) fn read_secret(source: &SecretSource, secrets: &dyn Secrets) -> Result<String, String> {
    let trim = |s: String| {
        s.strip_suffix('\n')
            .map(|s| s.strip_suffix('\r').unwrap_or(s).to_string())
            .unwrap_or(s)
    };
    match source {
        SecretSource::Inline(s) => Ok(s.clone()),
        SecretSource::File(p) => secrets
            .file(p)
            .map(trim)
            .map_err(|e| format!("cannot read {}: {e}", p.display())),
        SecretSource::Env(v) => secrets
            .env(v)
            .ok_or_else(|| format!("the environment variable {v} is not set")),
        SecretSource::Credential(c) => {
            let p = credential_file(c, secrets).ok_or_else(|| {
                format!(
                    "credential {c:?} is missing: $CREDENTIALS_DIRECTORY is not set \
                     (the shipped unit loads /etc/deployd/credentials/NAME as \
                     \"deployd_NAME\"; or add LoadCredential={c}:/path/to/secret)"
                )
            })?;
            secrets.file(&p).map(trim).map_err(|e| {
                format!(
                    "credential {c:?} is missing: cannot read {}: {e}",
                    p.display()
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::*;

    #[test]
    fn credentials_say_where_they_are_read_from() {
        // Inside the service: systemd's directory.
        let inside = describe_source(&SecretSource::Credential("deployd_app".into()), &Fake);
        assert_eq!(
            inside,
            "secret_credential deployd_app from /run/credentials/deployd.service/deployd_app"
        );
        // Outside it (an admin's `deployd check`): the file the unit loads.
        struct Outside;
        impl Secrets for Outside {
            fn file(&self, path: &Path) -> std::io::Result<String> {
                if path == Path::new("/etc/deployd/credentials/app") {
                    Ok("s3cret\n".into())
                } else {
                    Err(std::io::Error::from(std::io::ErrorKind::NotFound))
                }
            }
            fn env(&self, _: &str) -> Option<String> {
                None
            }
        }
        let ours = SecretSource::Credential("deployd_app".into());
        assert_eq!(
            describe_source(&ours, &Outside),
            "secret_credential deployd_app from /etc/deployd/credentials/app"
        );
        assert_eq!(read_secret(&ours, &Outside).unwrap(), "s3cret");
        // A name the unit does not load from that directory: no guess.
        let other = SecretSource::Credential("app.secret".into());
        assert_eq!(
            describe_source(&other, &Outside),
            "secret_credential app.secret"
        );
        assert!(
            read_secret(&other, &Outside)
                .unwrap_err()
                .contains("not set")
        );
        let escape = SecretSource::Credential("deployd_../x".into());
        assert!(read_secret(&escape, &Outside).is_err());
    }

    #[test]
    fn secret_sources() {
        let two = err(&format!(
            "[projects.app]\nsecret = \"x\"\nsecret_env = \"HOOK_SECRET\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert_eq!(two.1, "projects.app.secret_env");
        let none = err(&format!("[projects.app]\nscript = \"{SCRIPT}\"\n"));
        assert!(none.2.contains("exactly one"), "{}", none.2);
        let empty = err(&format!(
            "[projects.app]\nsecret_file = \"empty.secret\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert_eq!(empty.2, "the secret is empty");
        let missing = err(&format!(
            "[projects.app]\nsecret_env = \"NOPE\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert!(missing.2.contains("NOPE"));
        let env = cfg(&format!(
            "[projects.app]\nsecret_env = \"HOOK_SECRET\"\nscript = \"{SCRIPT}\"\n"
        ))
        .unwrap();
        assert_eq!(env.projects["app"].secret_source, "secret_env $HOOK_SECRET");
        let cred = err(&format!(
            "[projects.app]\nsecret_credential = \"app.secret\"\nscript = \"{SCRIPT}\"\n"
        ));
        assert!(cred.2.contains("missing"), "{}", cred.2);
    }
}
