//! Script outputs: the file a deploy script may write `key=value` lines to
//! (`DEPLOY_OUTPUT`, as `$GITHUB_OUTPUT` works), read back once the script
//! has ended into the run record's `outputs` (docs/configuration.md,
//! *What the script gets*).
//!
//! Only the keys deployd knows are kept — `url` (where the deployed thing
//! lives), `sha` (the commit actually deployed) and `summary` (one line) —
//! so that a notification or a commit status never carries something the
//! script did not mean to publish. Anything else is left out with a warning
//! in the run's log.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::text::truncate;

/// The keys a script may set, with what each is for (in warnings).
pub const KEYS: &[&str] = &["url", "sha", "summary"];

/// How much of the file is read: more is a mistake (a script writing its
/// whole output there), and is cut with a warning.
pub const MAX_FILE: u64 = 16 * 1024;

/// The longest value kept; a longer one is cut (`summary` is one line).
pub const MAX_VALUE: usize = 2048;

/// The outputs file of a run whose log is `log`: beside it, `<id>.output`.
pub fn path(log: &Path) -> PathBuf {
    log.with_extension("output")
}

/// Parses the file's text: the outputs kept, and a warning for each line
/// left out. Later lines win over earlier ones for the same key.
pub fn parse(text: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut outputs = BTreeMap::new();
    let mut warnings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            warnings.push(format!(
                "DEPLOY_OUTPUT line {}: not key=value, left out",
                n + 1
            ));
            continue;
        };
        let key = key.trim();
        if !KEYS.contains(&key) {
            warnings.push(format!(
                "DEPLOY_OUTPUT line {}: unknown key {:?} left out (known: {})",
                n + 1,
                truncate(key, 40),
                KEYS.join(", ")
            ));
            continue;
        }
        let mut value = value.trim().to_string();
        if value.chars().any(char::is_control) {
            value = value.chars().filter(|c| !c.is_control()).collect();
        }
        if value.len() > MAX_VALUE {
            warnings.push(format!(
                "DEPLOY_OUTPUT line {}: {key} longer than {MAX_VALUE} bytes, cut",
                n + 1
            ));
            value = truncate(&value, MAX_VALUE).to_string();
        }
        if key == "sha" && !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            warnings.push(format!(
                "DEPLOY_OUTPUT line {}: sha {:?} is not a commit id, left out",
                n + 1,
                truncate(&value, 80)
            ));
            continue;
        }
        outputs.insert(key.to_string(), value);
    }
    (outputs, warnings)
}

/// Reads and removes the outputs file at `path`: the outputs and the
/// warnings to write into the run's log. A missing file is no outputs.
pub fn collect(path: &Path) -> (BTreeMap<String, String>, Vec<String>) {
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(MAX_FILE + 1).read_to_end(&mut bytes));
    let _ = std::fs::remove_file(path);
    if read.is_err() {
        return (BTreeMap::new(), Vec::new());
    }
    let mut warnings = Vec::new();
    if bytes.len() as u64 > MAX_FILE {
        bytes.truncate(MAX_FILE as usize);
        warnings.push(format!(
            "DEPLOY_OUTPUT is larger than {} KiB: only its beginning is read",
            MAX_FILE / 1024
        ));
        // The cut line is not a line the script wrote.
        if let Some(nl) = bytes.iter().rposition(|&b| b == b'\n') {
            bytes.truncate(nl + 1);
        }
    }
    let (outputs, more) = parse(&String::from_utf8_lossy(&bytes));
    warnings.extend(more);
    (outputs, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_kept_others_warned() {
        let (o, w) = parse(
            "url=https://app.example.com\n\
             sha=0123abcd\n\
             summary = deployed v1.2 \n\
             colour=blue\n\
             just text\n\
             sha=not-a-sha\n\
             \n",
        );
        assert_eq!(o["url"], "https://app.example.com");
        assert_eq!(o["sha"], "0123abcd");
        assert_eq!(o["summary"], "deployed v1.2");
        assert_eq!(o.len(), 3);
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("line 4") && w[0].contains("colour"));
        assert!(w[1].contains("line 5"));
        assert!(w[2].contains("line 6") && w[2].contains("not a commit id"));
    }

    #[test]
    fn values_are_bounded() {
        let long = "x".repeat(MAX_VALUE + 10);
        let (o, w) = parse(&format!("summary={long}\n"));
        assert_eq!(o["summary"].len(), MAX_VALUE);
        assert_eq!(w.len(), 1);
        assert_eq!(truncate("héllo", 2), "h");
    }
}
