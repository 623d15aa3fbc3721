//! The commands about the config itself, run without a daemon: `deployd
//! check` (what the config says), `deployd sign` (a signature as the forge
//! would compute it) and `deployd notify-test` (a test message to each
//! notification target).

use std::io::Read;
use std::path::Path;

use anyhow::{Context, anyhow};

use super::{Failure, Result, listing, outln, project};
use crate::config::Config;
use crate::http_client::Attempt;
use crate::{forge, notify};

/// `deployd check`: the config's warnings on stderr, what it sets up on
/// stdout.
pub(super) fn check(config: &Config) -> Result<()> {
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    if let Err(e) = config.require_projects() {
        eprintln!("warning: {e}");
    }
    outln!(
        "{}: OK, {} project(s)",
        config.path.display(),
        config.projects.len()
    );
    outln!(
        "  listen {}  state {}  logs {}  control {}",
        config.server.listen,
        config.server.state_dir.display(),
        config.server.log_dir.display(),
        config.server.control_socket.display()
    );
    for p in config.projects.values() {
        outln!(
            "  {}: POST {}  ({} push{}{}; script {}; {})",
            p.name,
            p.hook_path(),
            p.provider,
            p.repository
                .as_ref()
                .map(|r| format!(" of {r}"))
                .unwrap_or_default(),
            if p.after_ci.is_empty() {
                String::new()
            } else {
                format!(
                    ", after CI: {} (at most {})",
                    p.after_ci.join(", "),
                    humantime::format_duration(p.ci_timeout)
                )
            },
            p.script.display(),
            p.secret_source
        );
        outln!("    deploys: {}", p.triggers());
        if let Some(previous) = &p.previous_source {
            outln!(
                "    secret rotation under way: {} and {previous} are both accepted; \
                 once the forge signs with the new secret, remove the previous one",
                p.secret_source
            );
        }
        if let Some(allow) = &p.allow_from {
            let nets: Vec<String> = allow.iter().map(ToString::to_string).collect();
            outln!("    allow_from {}", nets.join(", "));
        }
        if let Some(r) = &p.report {
            outln!(
                "    report: {} {} at {} as {:?} ({})",
                p.provider,
                match &r.environment {
                    Some(e) => format!("deployment to {e}"),
                    None => "commit status".into(),
                },
                r.api_url,
                r.context,
                r.token_source
            );
        }
        for line in catchup_and_fleet(p) {
            outln!("    {line}");
        }
    }
    for t in config.notify.values() {
        outln!(
            "  notify {}: {} on {}; {}; {}",
            t.name,
            t.kind.name(),
            t.on.join(", "),
            match &t.projects {
                Some(ps) => format!("projects {}", ps.join(", ")),
                None => "every project".into(),
            },
            if t.command.is_empty() {
                let mut s = t.url_source.clone();
                if let Some(k) = &t.secret_source {
                    s.push_str(&format!(", signed ({k})"));
                }
                s
            } else {
                format!("runs {}", t.command[0])
            }
        );
    }
    if let Some(w) = &config.web {
        outln!(
            "  web: http://{}{}  ({}; actions {}; /metrics {})",
            w.listen,
            w.public_url
                .as_ref()
                .map(|u| format!(" as {u}"))
                .unwrap_or_default(),
            w.token
                .as_ref()
                .map_or("no token: loopback only".to_string(), |t| t.source.clone()),
            if w.actions { "on" } else { "off" },
            if w.metrics_public {
                "public"
            } else {
                "behind the token"
            }
        );
    }
    Ok(())
}

/// What `check` says of a project's catch-up (`remote`, `reconcile`) and
/// fleet (`hosts` and its keys), so both can be confirmed before a start.
fn catchup_and_fleet(p: &crate::config::Project) -> Vec<String> {
    use crate::config::fleet::OnHostFailure;
    use crate::config::reconcile::Mode;
    let remote = p
        .reconcile
        .remote
        .as_deref()
        .unwrap_or("the origin of working_dir, if it has one");
    let mut lines = vec![match p.reconcile.mode {
        Mode::Off => "catch-up: off".to_string(),
        Mode::Start => format!("catch-up: at start, from {remote}"),
        Mode::Every(d) => format!(
            "catch-up: at start and every {}, from {remote}",
            humantime::format_duration(d)
        ),
    }];
    if let Some(f) = &p.fleet {
        let hosts: Vec<String> = f
            .hosts
            .iter()
            .map(|h| match (h.name == h.address, &h.user, h.port) {
                (true, None, None) => h.name.clone(),
                (_, user, port) => format!(
                    "{} ({}{}{})",
                    h.name,
                    user.as_deref().map(|u| format!("{u}@")).unwrap_or_default(),
                    h.address,
                    port.map(|p| format!(":{p}")).unwrap_or_default()
                ),
            })
            .collect();
        lines.push(format!(
            "hosts: {}; batch {}, max_failures {}, on_host_failure {}",
            hosts.join(", "),
            f.batch,
            f.max_failures,
            match f.on_host_failure {
                OnHostFailure::Stop => "stop",
                OnHostFailure::Rollback => "rollback",
            }
        ));
    }
    lines
}

/// `deployd notify-test [TARGET]`: one test message to each target, sent
/// now; prints each answer.
pub(super) fn notify_test(config: &Config, only: Option<&str>) -> Result<()> {
    if let Some(name) = only
        && !config.notify.contains_key(name)
    {
        return Err(Failure::Usage(anyhow!(
            "no target {name:?} in {}",
            listing(config, "targets", config.notify.keys())
        )));
    }
    if config.notify.is_empty() {
        return Err(Failure::Usage(anyhow!(
            "{} has no [notify.NAME] target",
            config.path.display()
        )));
    }
    let project = config
        .projects
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| "deployd".into());
    let doc = notify::Document::test(&project);
    let mut failed = 0;
    for t in config.notify.values() {
        if only.is_some_and(|n| n != t.name) {
            continue;
        }
        let said = match notify::send(t, &doc) {
            Attempt::Delivered(a) => format!("delivered ({a})"),
            Attempt::Retry { error, .. } => {
                failed += 1;
                format!("FAILED ({error}); a real notification would be tried again")
            }
            Attempt::Refused { error, hint } => {
                failed += 1;
                format!("REFUSED ({error}): {hint}")
            }
        };
        outln!("{} ({}): {said}", t.name, t.kind.name());
    }
    if failed > 0 {
        return Err(Failure::Runtime(anyhow!(
            "{failed} target(s) did not take the test notification"
        )));
    }
    Ok(())
}

/// `deployd sign PROJECT`: the signature (or with `--header`, every header)
/// the project's forge would send with the body read from `file` or stdin.
pub(super) fn sign(
    config: &Config,
    name: &str,
    file: Option<&Path>,
    as_headers: bool,
) -> Result<()> {
    let p = project(config, name)?;
    let mut body = Vec::new();
    match file {
        Some(f) => {
            body = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?
        }
        None => {
            std::io::stdin().read_to_end(&mut body)?;
        }
    }
    // A fresh message id for a GitLab signing token. (The same body signed
    // again is still answered `duplicate`: deployd remembers bodies too.)
    // Always the current secret: the previous one is only for receiving.
    let now = std::time::SystemTime::now();
    let id = format!(
        "msg_deployd_sign_{}",
        now.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let Some(headers) = forge::sign_headers(p.provider, &p.key, &body, now, &id) else {
        return Err(Failure::Usage(anyhow!(
            "{name} is a {} project with a secret token: GitLab sends the token itself in \
             X-Gitlab-Token, there is no signature to compute (send -H 'X-Gitlab-Token: <the \
             secret>'). A secret that is a GitLab signing token (whsec_…) gets signatures.",
            p.provider
        )));
    };
    if as_headers {
        for (header, value) in &headers {
            outln!("{header}: {value}");
        }
        return Ok(());
    }
    match headers.as_slice() {
        [(header, value)] => {
            outln!("{value}");
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprintln!("(send it as the {header} header)");
            }
            Ok(())
        }
        _ => Err(Failure::Usage(anyhow!(
            "{name} is a {} project with a signing token: its signature goes with a webhook-id \
             and a webhook-timestamp; run `deployd sign --header` to print all three",
            p.provider
        ))),
    }
}
