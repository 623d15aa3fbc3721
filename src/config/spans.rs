//! Where each key is written in the text, from the TOML parser's own
//! spans, and the errors that point there: a line and a dotted key for
//! broken TOML, for a value serde refused, and for whatever a validator
//! finds wrong later.

use toml::de::{DeTable, DeValue};

use crate::config::ConfigError;

/// Where each key is in the text, from the TOML parser's own spans. Quoted
/// names (`[projects."my.app"]`), inline tables and dotted keys all come out
/// of the parser as the same nested tables, so one walk serves them all.
pub(super) struct Spans<'t> {
    pub(super) text: &'t str,
    pub(super) root: DeTable<'t>,
}

impl Spans<'_> {
    /// The 1-based line holding byte `offset`.
    pub(super) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line of the key at `path`. For a key that is not in the file
    /// (its default was used), the line of the nearest table around it that
    /// is, and line 1 when none is.
    pub(super) fn line_of(&self, path: &[&str]) -> usize {
        let mut table = &self.root;
        let mut line = 1;
        for segment in path {
            let Some((key, value)) = table.get_key_value(*segment) else {
                break;
            };
            line = self.line(key.span().start);
            match value.get_ref() {
                DeValue::Table(t) => table = t,
                _ => break,
            }
        }
        line
    }

    /// The path of the innermost key whose name or value holds byte
    /// `offset`; empty when none does. A table opened by a `[header]` has
    /// the header as its value's span, and its keys elsewhere, so the
    /// whole tree is searched, not only the branch whose span holds it.
    pub(super) fn path_at(&self, offset: usize) -> Vec<String> {
        fn walk(
            table: &DeTable<'_>,
            offset: usize,
            path: &mut Vec<String>,
            best: &mut Vec<String>,
        ) {
            for (key, value) in table.iter() {
                path.push(key.get_ref().to_string());
                let holds = |span: std::ops::Range<usize>| {
                    span.contains(&offset) || (span.is_empty() && span.start == offset)
                };
                if (holds(key.span()) || holds(value.span())) && path.len() > best.len() {
                    *best = path.clone();
                }
                if let DeValue::Table(t) = value.get_ref() {
                    walk(t, offset, path, best);
                }
                path.pop();
            }
        }
        let mut best = Vec::new();
        walk(&self.root, offset, &mut Vec::new(), &mut best);
        best
    }

    /// `[server]`, `[projects]` and each `[projects.NAME]` must be tables;
    /// said here, in words, before serde would say "expected struct
    /// RawServer".
    pub(super) fn tables_are_tables(&self) -> Result<(), (Vec<String>, String)> {
        let not_a_table = |path: Vec<String>, example: &str, value: &DeValue<'_>| {
            let found = match value {
                DeValue::String(s) => format!("the text {s:?}"),
                DeValue::Integer(n) => format!("the number {}", n.as_str()),
                DeValue::Float(f) => format!("the number {}", f.as_str()),
                DeValue::Boolean(b) => format!("{b}"),
                DeValue::Datetime(d) => format!("the date {d}"),
                DeValue::Array(_) => "a list [...]".into(),
                DeValue::Table(_) => "a table".into(),
            };
            Err((path, format!("expected a table ({example}), found {found}")))
        };
        for (key, value) in self.root.iter() {
            let example = match key.get_ref().as_ref() {
                "server" => "[server] and its keys on the lines below",
                "projects" => "[projects.NAME] and the project's keys on the lines below",
                _ => continue, // an unknown key: serde names it.
            };
            let DeValue::Table(table) = value.get_ref() else {
                return not_a_table(vec![key.get_ref().to_string()], example, value.get_ref());
            };
            if key.get_ref() == "projects" {
                for (name, project) in table.iter() {
                    if !matches!(project.get_ref(), DeValue::Table(_)) {
                        return not_a_table(
                            vec!["projects".into(), name.get_ref().to_string()],
                            &format!(
                                "[projects.{}] and the project's keys on the lines below",
                                dotted(&[name.get_ref()])
                            ),
                            project.get_ref(),
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

/// A key path as TOML writes it: `projects."my.app".timeout`. A segment
/// that is not a bare key (a dot, a space, nothing at all) is quoted.
pub(super) fn dotted<S: AsRef<str>>(path: &[S]) -> String {
    path.iter()
        .map(|s| {
            let s = s.as_ref();
            if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                s.to_string()
            } else {
                format!("{s:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Serde's own messages about a table's keys, in words: "unknown field
/// (x), expected one of (a), (b)" (in backticks) becomes `unknown field "x";
/// the keys here are: a, b`; "missing field (x)" returns the key, to be
/// added to the path, and says it is required. The value types above
/// already speak for themselves.
fn in_words(message: &str) -> (Option<String>, String) {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, known)) = rest.split_once('`')
    {
        let known = known
            .trim_start_matches(", ")
            .trim_start_matches("expected ")
            .trim_start_matches("one of ")
            .replace('`', "")
            .replace(" or ", ", ");
        return (
            None,
            format!("unknown field {name:?}; the keys here are: {known}"),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((name, _)) = rest.split_once('`')
    {
        return (Some(name.to_string()), "missing: it is required".into());
    }
    (None, message.replace('`', "\""))
}

impl<'t> Spans<'t> {
    /// The error for text that is not TOML: the part before the mistake
    /// still says which key it is in.
    pub(super) fn syntax_error(text: &'t str, file: String, e: &toml::de::Error) -> ConfigError {
        let (partial, _) = DeTable::parse_recoverable(text);
        let spans = Spans {
            text,
            root: partial.into_inner(),
        };
        let message = e.message().trim().replace('`', "\"");
        spans.parser_error(file, e, None, "(TOML syntax)", message)
    }

    /// The error for a value serde refused (the types in
    /// [`super::shape`] say what is wrong), on the value's line.
    pub(super) fn shape_error(&self, file: String, e: &toml::de::Error) -> ConfigError {
        let (missing, message) = in_words(e.message());
        self.parser_error(file, e, missing, "(top level)", message)
    }

    /// The error the parser's `e` stands for, at the key holding its span
    /// (and then `missing`, a key left out of that table), or `unplaced`
    /// when no key holds it. Without a span (none seen so far), line 1 and
    /// no key: better than whatever key happens to start the file.
    fn parser_error(
        &self,
        file: String,
        e: &toml::de::Error,
        missing: Option<String>,
        unplaced: &str,
        message: String,
    ) -> ConfigError {
        let (offset, mut key) = match e.span() {
            Some(span) => (span.start, self.path_at(span.start)),
            None => (0, Vec::new()),
        };
        key.extend(missing);
        ConfigError::Invalid {
            file,
            line: self.line(offset),
            key: if key.is_empty() {
                unplaced.into()
            } else {
                dotted(&key)
            },
            message,
        }
    }

    /// The error for a checked value, on the line of its key (or of the
    /// nearest table around it, for a key left out).
    pub(super) fn invalid(&self, file: &str, key: &[&str], message: String) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_string(),
            line: self.line_of(key),
            key: dotted(key),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::*;

    #[test]
    fn unknown_key_names_line_and_key() {
        let (line, key, msg) = err(&format!(
            "[server]\nlisten = \"127.0.0.1:1\"\n\n[projects.app]\nsecret = \"x\"\nscirpt = \"{SCRIPT}\"\n"
        ));
        assert_eq!(line, 6);
        assert_eq!(key, "projects.app.scirpt");
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn quoted_names_inline_tables_and_dotted_keys_point_at_their_line() {
        // A quoted name holding a dot: the key keeps its quotes, and checks
        // made after parsing find the line too.
        let quoted = format!(
            "[server]\nparallel = 2\n\n[projects.\"my.app\"]\nsecret = \"x\"\nscript = \"{SCRIPT}\"\n"
        );
        let (line, key, _) = err(&format!("{quoted}branch = \"refs/heads/main\"\n"));
        assert_eq!((line, key.as_str()), (7, "projects.\"my.app\".branch"));
        let (line, key, msg) = err(&format!("{quoted}timeout = \"5 parsecs\"\n"));
        assert_eq!(
            (line, key.as_str()),
            (7, "projects.\"my.app\".timeout"),
            "{msg}"
        );
        let (line, key, msg) = err(&format!("{quoted}scirpt = 1\n"));
        assert_eq!((line, key.as_str()), (7, "projects.\"my.app\".scirpt"));
        assert!(msg.contains("unknown field"), "{msg}");
        // A key left out points at its project's table.
        let (line, key, _) = err(&format!(
            "[server]\n\n[projects.\"my.app\"]\nscript = \"{SCRIPT}\"\n"
        ));
        assert_eq!((line, key.as_str()), (3, "projects.\"my.app\".secret"));

        // Inline tables, on one line and (TOML 1.1) over several.
        let (line, key, _) = err(&format!(
            "[server]\nparallel = 2\n\n[projects]\napp = {{ secret = \"x\", script = \"{SCRIPT}\", branch = \"refs/heads/x\" }}\n"
        ));
        assert_eq!((line, key.as_str()), (5, "projects.app.branch"));
        let (line, key, _) = err(&format!(
            "projects = {{ app = {{\n  secret = \"x\",\n  script = \"{SCRIPT}\",\n  timeout = \"0s\" }} }}\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.timeout"));
        let (line, key, _) = err(&format!(
            "projects = {{ app = {{\n  secret = \"x\",\n  script = \"{SCRIPT}\",\n  timeout = 15 }} }}\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.timeout"));

        // Dotted keys, at the top level and inside a table.
        let (line, key, _) = err(&format!(
            "projects.app.secret = \"x\"\nprojects.app.script = \"{SCRIPT}\"\n\nprojects.app.kill_grace = \"1 fortnight\"\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.kill_grace"));
        let (line, key, _) = err(&format!(
            "[projects]\napp.secret = \"x\"\napp.script = \"{SCRIPT}\"\napp.branch = \"refs/heads/x\"\n"
        ));
        assert_eq!((line, key.as_str()), (4, "projects.app.branch"));
        let (line, key, _) = err("[server]\nlisten = \"x\"\n");
        assert_eq!((line, key.as_str()), (2, "server.listen"));

        // Broken TOML still names the key it broke in.
        let (line, key, _) = err(&format!("{quoted}timeout = \n"));
        assert_eq!((line, key.as_str()), (7, "projects.\"my.app\".timeout"));
    }
}
