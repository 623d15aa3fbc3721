//! Where things are on disk: the default config file, the directory a
//! config's relative paths resolve against, the state directory and the
//! control socket, the credentials directory; and whether the paths a run
//! will use (its script, its working directory) are there to be used.

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use crate::config::secrets::Secrets;

/// Where the config is looked for when neither `-c` nor `$DEPLOYD_CONFIG` says.
pub const DEFAULT_PATH: &str = "/etc/deployd/deploy.toml";

/// Where the shipped unit's `LoadCredential=deployd:<dir>` loads credentials
/// from: the file `<dir>/NAME` becomes the credential `deployd_NAME`.
pub const CREDENTIALS_DIR: &str = "/etc/deployd/credentials";
const CREDENTIAL_PREFIX: &str = "deployd_";

/// The directory a config file's relative paths resolve against: its own.
pub(super) fn base_dir(path: &Path) -> PathBuf {
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf())
}

/// `p`, when relative, under `base`.
pub(super) fn resolve_in(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// `server.state_dir` and `server.control_socket`, as the file gives them
/// (or not), resolved against `base`, with their defaults.
pub(super) fn state_and_socket(
    base: &Path,
    state_dir: Option<&Path>,
    control_socket: Option<&Path>,
) -> (PathBuf, PathBuf) {
    let state_dir = resolve_in(base, state_dir.unwrap_or(Path::new("/var/lib/deployd")));
    let socket = control_socket
        .map(|p| resolve_in(base, p))
        .unwrap_or_else(|| state_dir.join("control.sock"));
    (state_dir, socket)
}

/// The control socket the config file at `path` names, read from its
/// `[server]` table alone, so that it is found even in a file that is
/// otherwise invalid, or not even TOML past some line: `deployd reload` of
/// such a file still asks the daemon, which refuses it and says so in its
/// log. None when the file cannot be read.
pub fn control_socket_of(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    let (doc, _) = DeTable::parse_recoverable(&text);
    let doc = doc.into_inner();
    let server = match doc.get("server").map(|v| v.get_ref()) {
        Some(DeValue::Table(t)) => Some(t),
        _ => None,
    };
    let given = |key: &str| match server.and_then(|t| t.get(key)).map(|v| v.get_ref()) {
        Some(DeValue::String(s)) if !s.is_empty() => Some(PathBuf::from(s.as_ref())),
        _ => None,
    };
    let (state_dir, socket) = (given("state_dir"), given("control_socket"));
    Some(state_and_socket(&base_dir(path), state_dir.as_deref(), socket.as_deref()).1)
}

/// The file a credential is read from: in `$CREDENTIALS_DIRECTORY` inside
/// the service; outside it (`deployd check` or `sign` run by an admin), the
/// file in [`CREDENTIALS_DIR`] the unit loads it from, for a `deployd_…` name.
pub(super) fn credential_file(name: &str, secrets: &dyn Secrets) -> Option<PathBuf> {
    match secrets.env("CREDENTIALS_DIRECTORY") {
        Some(dir) => Some(Path::new(&dir).join(name)),
        None => name
            .strip_prefix(CREDENTIAL_PREFIX)
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .map(|rest| Path::new(CREDENTIALS_DIR).join(rest)),
    }
}

/// Whether group or others may read the file at `path` (an inline secret
/// in it is then worth a warning).
pub(super) fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o044 != 0)
        .unwrap_or(false)
}

/// Why the runner could not execute `script`, if it could not: it runs the
/// path as it is (no shell, no `$PATH` search), so it must be a file this
/// user may execute. Checked as the user running this command: run `check`
/// as the daemon's user to see what the daemon sees.
pub(super) fn script_problem(script: &Path) -> Option<String> {
    let shown = script.display();
    match look_at(script) {
        Err(problem) => Some(problem),
        Ok(m) if !m.is_file() => Some(format!("{shown} is not a file")),
        Ok(_) => match nix::unistd::access(script, nix::unistd::AccessFlags::X_OK) {
            Err(e) => Some(format!(
                "{shown} is not executable ({}): the script runs directly, without a \
                 shell; chmod +x it",
                e.desc()
            )),
            Ok(()) => interpreter_problem(script),
        },
    }
}

/// Why the `#!` line of `script` names nothing the kernel can run, if it
/// does not: exec then fails with "No such file or directory", naming the
/// script, which exists. Only an absolute interpreter path is looked at
/// (`#!/usr/bin/env bash` is checked as far as `env`); a script that cannot
/// be read, or a binary, is left to the kernel.
fn interpreter_problem(script: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    // Split as the kernel does, on spaces and tabs only: a '\r' left by
    // Windows line ends is part of the name it looks for.
    let interpreter = std::str::from_utf8(line)
        .ok()?
        .split([' ', '\t'])
        .find(|s| !s.is_empty())?;
    let path = Path::new(interpreter);
    if !path.is_absolute() {
        return None;
    }
    let usable =
        path.is_file() && nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok();
    (!usable).then(|| {
        format!(
            "{} starts with #!{}, which is not an executable file here{}",
            script.display(),
            interpreter.trim_end_matches('\r'),
            if interpreter.ends_with('\r') {
                " (the line ends in \\r: the file has Windows line ends)"
            } else {
                ""
            }
        )
    })
}

/// Why `dir` cannot be a run's working directory, if it cannot.
pub(super) fn dir_problem(dir: &Path) -> Option<String> {
    match look_at(dir) {
        Err(problem) => Some(problem),
        Ok(m) if !m.is_dir() => Some(format!("{} is not a directory", dir.display())),
        Ok(_) => None,
    }
}

/// What is at `path`, or why nothing can be seen there, in words.
fn look_at(path: &Path) -> Result<std::fs::Metadata, String> {
    let shown = path.display();
    std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown} does not exist"),
        _ => format!("cannot look at {shown}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::tests::scratch;

    #[test]
    fn the_control_socket_is_found_in_a_file_that_does_not_load() {
        let dir = scratch("unit-socket");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("deploy.toml");
        let at = |text: &str| {
            std::fs::write(&path, text).unwrap();
            control_socket_of(&path)
        };
        // Broken TOML after [server]; the default socket under state_dir.
        assert_eq!(
            at("[server]\nstate_dir = \"st\"\n[projects.half\n"),
            Some(dir.join("st/control.sock"))
        );
        assert_eq!(
            at("[server]\ncontrol_socket = \"/run/x.sock\"\nbogus = 1\n"),
            Some(PathBuf::from("/run/x.sock"))
        );
        assert_eq!(
            at("not toml at all ["),
            Some(PathBuf::from("/var/lib/deployd/control.sock"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(control_socket_of(&path), None);
    }
}
