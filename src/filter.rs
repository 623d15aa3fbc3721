//! Which push of a delivery deploys a project, in this order: its
//! repository (when the project names one); its ref — a branch matching
//! `branch`/`branches`, or a new tag matching `tags` — and not a deletion;
//! no skip marker in the head commit's message; and, for a branch push,
//! a changed path that `paths`/`paths_ignore` let through. Forge-neutral: it
//! sees [`Push`]es, whatever forge sent them.

use crate::config::Project;
use crate::push::{Files, Push};

/// What to do with a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deploy it.
    Deploy,
    /// Deploy it although the path filter could not be applied: the reason
    /// goes into the run's log.
    DeployUnfiltered(String),
    /// Answer `ignored` with this reason.
    Ignore(String),
}

/// The markers in a head commit's message that keep a push from deploying
/// (compared without case).
pub const SKIP_MARKERS: [&str; 2] = ["[skip deploy]", "[deploy skip]"];

/// The answer's reason when the path filter leaves nothing.
pub const NO_PATH_MATCHES: &str = "no changed path matches";

/// Picks the push of a delivery that deploys `project`, or says why none
/// does (each distinct reason once, in order). A push deployed without its
/// paths checked carries the reason in [`Push::note`].
pub fn choose(project: &Project, pushes: Vec<Push>) -> Result<Push, String> {
    let mut reasons: Vec<String> = Vec::new();
    for mut push in pushes {
        match filter(project, &push) {
            Verdict::Deploy => return Ok(push),
            Verdict::DeployUnfiltered(note) => {
                push.note = note;
                return Ok(push);
            }
            Verdict::Ignore(r) => {
                if !reasons.contains(&r) {
                    reasons.push(r);
                }
            }
        }
    }
    if reasons.is_empty() {
        Err("push without changes".into())
    } else {
        Err(reasons.join("; "))
    }
}

/// Decides whether `push` deploys `project`.
pub fn filter(project: &Project, push: &Push) -> Verdict {
    if let Some(want) = &project.repository
        && !want.eq_ignore_ascii_case(&push.repository)
    {
        return Verdict::Ignore(format!(
            "repository {:?} is not {:?}",
            push.repository, want
        ));
    }
    if let Some(tag) = push.tag() {
        if project.tags.is_empty() {
            return Verdict::Ignore(format!("tag {tag}: the project deploys no tags"));
        }
        if !project.tags.matches(tag) {
            return Verdict::Ignore(format!("tag {tag} matches no glob of tags"));
        }
        if push.deleted {
            return Verdict::Ignore(format!("tag {tag} was deleted"));
        }
        // Path filters are for branches: a tag is a decision to release.
        return skip_marker(push).unwrap_or(Verdict::Deploy);
    }
    let Some(branch) = push.branch() else {
        return Verdict::Ignore(format!("ref {:?} is not a branch", push.git_ref));
    };
    if !project.branches.matches(branch) {
        return Verdict::Ignore(match project.branches.written() {
            [] => format!("branch {branch}: the project deploys no branches"),
            [one] => format!("branch {branch} is not the deploy branch {one}"),
            many => format!("branch {branch} matches none of {}", many.join(", ")),
        });
    }
    if push.deleted {
        return Verdict::Ignore(format!("branch {branch} was deleted"));
    }
    if let Some(skip) = skip_marker(push) {
        return skip;
    }
    paths(project, push)
}

/// `Ignore` when the head commit's message holds a skip marker.
fn skip_marker(push: &Push) -> Option<Verdict> {
    let message = push.message.to_ascii_lowercase();
    SKIP_MARKERS
        .iter()
        .find(|m| message.contains(*m))
        .map(|m| Verdict::Ignore(format!("the head commit's message says {m}")))
}

/// The path filter: a push deploys when some path it changed is matched by
/// `paths` (or there is no `paths`) and not by `paths_ignore`. When the
/// payload cannot tell what changed, it deploys: missing information never
/// skips a deploy.
fn paths(project: &Project, push: &Push) -> Verdict {
    if project.paths.is_empty() && project.paths_ignore.is_empty() {
        return Verdict::Deploy;
    }
    match &push.files {
        Files::Unknown(why) => {
            Verdict::DeployUnfiltered(format!("paths not checked, deploying anyway: {why}"))
        }
        Files::Listed(files) => {
            let counts = |f: &String| {
                (project.paths.is_empty() || project.paths.matches(f))
                    && !project.paths_ignore.matches(f)
            };
            if files.iter().any(counts) {
                Verdict::Deploy
            } else {
                Verdict::Ignore(NO_PATH_MATCHES.into())
            }
        }
    }
}

/// Pushes as each forge sends them, through the filter: the forge files'
/// own tests read the payloads, these say what deploys.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::forge::Event;
    use crate::forge::bitbucket::tests::{bb_push, bb_ref, bitbucket};
    use crate::forge::gitea::tests::{gitea, gitea_push};
    use crate::forge::github::tests::{SHA, gh, gh_push};
    use crate::forge::gitlab::tests::{gitlab, gitlab_push};

    fn project(branch: &str, repository: Option<&str>) -> Project {
        with(&format!(
            "branch = \"{branch}\"\n{}",
            repository
                .map(|r| format!("repository = \"{r}\"\n"))
                .unwrap_or_default()
        ))
    }

    /// A project with these keys besides its secret and script.
    fn with(keys: &str) -> Project {
        let text = format!("[projects.app]\nsecret = \"x\"\nscript = \"/bin/sh\"\n{keys}");
        crate::config::parse(
            &text,
            std::path::Path::new("/x.toml"),
            &crate::config::SystemSecrets,
        )
        .unwrap()
        .projects
        .remove("app")
        .unwrap()
    }

    fn push_of(e: Event) -> Vec<Push> {
        match e {
            Event::Push(p) => p,
            e => panic!("not a push: {e:?}"),
        }
    }

    fn ignored(v: Verdict) -> String {
        match v {
            Verdict::Ignore(r) => r,
            v => panic!("deployed: {v:?}"),
        }
    }

    #[test]
    fn the_filter() {
        let p = project("main", Some("acme/app"));
        let push = |r: &str, after: &str, repo: &str| {
            let body = gh_push(r, after, repo);
            match gh("push", "application/json", body.as_bytes())
                .unwrap()
                .event
            {
                Event::Push(mut p) => p.remove(0),
                e => panic!("{e:?}"),
            }
        };
        assert_eq!(
            filter(&p, &push("refs/heads/main", SHA, "acme/app")),
            Verdict::Deploy
        );
        // Repository names compare without case, as GitHub treats them.
        assert_eq!(
            filter(&p, &push("refs/heads/main", SHA, "ACME/App")),
            Verdict::Deploy
        );
        assert!(
            ignored(filter(&p, &push("refs/heads/dev", SHA, "acme/app"))).contains("branch dev")
        );
        assert!(ignored(filter(&p, &push("refs/tags/v1.0", SHA, "acme/app"))).contains("tag v1.0"));
        assert!(
            ignored(filter(
                &p,
                &push("refs/heads/main", &"0".repeat(40), "acme/app")
            ))
            .contains("deleted")
        );
        assert!(
            ignored(filter(&p, &push("refs/heads/main", SHA, "evil/app"))).contains("repository")
        );
        assert!(
            ignored(filter(&p, &push("refs/notes/x", SHA, "acme/app"))).contains("not a branch")
        );
        // A push that creates the deploy branch deploys.
        let mut created = push("refs/heads/main", SHA, "acme/app");
        created.before = "0".repeat(40);
        assert_eq!(filter(&p, &created), Verdict::Deploy);
        // Without `repository`, any repository's push counts.
        let any = project("release", None);
        assert_eq!(
            filter(&any, &push("refs/heads/release", SHA, "who/ever")),
            Verdict::Deploy
        );
    }

    #[test]
    fn gitea_pushes() {
        let p = push_of(gitea(
            "push",
            &gitea_push("refs/heads/master", SHA, &SHA.replace('0', "f")),
        ))
        .remove(0);
        assert_eq!(
            filter(&project("master", Some("gitea/webhooks")), &p),
            Verdict::Deploy
        );
        let zero = "0".repeat(40);
        let p = push_of(gitea("push", &gitea_push("refs/heads/main", SHA, &zero)));
        assert!(ignored(filter(&project("main", None), &p[0])).contains("deleted"));
        let p = push_of(gitea("push", &gitea_push("refs/tags/v1.2", &zero, SHA)));
        assert_eq!(
            ignored(filter(&project("main", None), &p[0])),
            "tag v1.2: the project deploys no tags"
        );
    }

    #[test]
    fn gitlab_pushes() {
        let after = SHA.replace('0', "d");
        let body = gitlab_push("refs/heads/master", SHA, &after, "mike/diaspora");
        let p = push_of(gitlab("Push Hook", &[], &body).event).remove(0);
        assert_eq!(
            filter(&project("master", Some("mike/diaspora")), &p),
            Verdict::Deploy
        );
        // Subgroups: the full path is the repository.
        let nested = gitlab_push("refs/heads/main", SHA, &after, "group/sub/app");
        let p = push_of(gitlab("Push Hook", &[], &nested).event).remove(0);
        assert_eq!(
            filter(&project("main", Some("group/sub/app")), &p),
            Verdict::Deploy
        );
        assert!(ignored(filter(&project("main", Some("group/app")), &p)).contains("repository"));

        let zero = "0".repeat(40);
        let main = project("main", None);
        let deleted = gitlab_push("refs/heads/main", SHA, &zero, "g/app");
        let p = push_of(gitlab("Push Hook", &[], &deleted).event).remove(0);
        assert_eq!(ignored(filter(&main, &p)), "branch main was deleted");
        // A new branch (before = zeros) is a push like any other.
        let created = gitlab_push("refs/heads/main", &zero, SHA, "g/app");
        let p = push_of(gitlab("Push Hook", &[], &created).event).remove(0);
        assert_eq!(filter(&main, &p), Verdict::Deploy);
        // Tag Push Hook: ignored by the filter with the tag's name.
        let tag = gitlab_push("refs/tags/v1.0.0", &zero, SHA, "g/app");
        let p = push_of(gitlab("Tag Push Hook", &[], &tag).event).remove(0);
        assert_eq!(
            ignored(filter(&main, &p)),
            "tag v1.0.0: the project deploys no tags"
        );
    }

    #[test]
    fn bitbucket_several_changes_deletion_and_tags() {
        let old = "1".repeat(40);
        let main = project("main", Some("acme/app"));
        let choose_in = |changes| {
            choose(
                &main,
                push_of(bitbucket("repo:push", &bb_push(changes)).event),
            )
        };
        let null = serde_json::Value::Null;
        // One delivery with a tag, another branch and the deploy branch: the
        // deploy branch's change deploys.
        let chosen = choose_in(vec![
            (null.clone(), bb_ref("tag", "v1", SHA)),
            (bb_ref("branch", "dev", &old), bb_ref("branch", "dev", SHA)),
            (
                bb_ref("branch", "main", &old),
                bb_ref("branch", "main", SHA),
            ),
        ])
        .unwrap();
        assert_eq!(
            (chosen.git_ref.as_str(), chosen.after.as_str()),
            ("refs/heads/main", SHA)
        );
        // None deploys: every reason, once.
        let reason = choose_in(vec![
            (null.clone(), bb_ref("annotated_tag", "v2", SHA)),
            (bb_ref("branch", "dev", &old), bb_ref("branch", "dev", SHA)),
            (bb_ref("branch", "dev", &old), bb_ref("branch", "dev", SHA)),
        ])
        .unwrap_err();
        assert_eq!(
            reason,
            "tag v2: the project deploys no tags; branch dev is not the deploy branch main"
        );
        // `new: null` is a deletion, named by `old`.
        let deleted = push_of(
            bitbucket(
                "repo:push",
                &bb_push(vec![(bb_ref("branch", "main", &old), null.clone())]),
            )
            .event,
        )
        .remove(0);
        assert_eq!(ignored(filter(&main, &deleted)), "branch main was deleted");
        // `old: null` is a new branch: it deploys.
        assert!(choose_in(vec![(null.clone(), bb_ref("branch", "main", SHA))]).is_ok());
        // Other ref kinds are not branches.
        let reason = choose_in(vec![(null.clone(), bb_ref("bookmark", "main", SHA))]).unwrap_err();
        assert!(reason.contains("not a branch"), "{reason}");
        // A push without changes is ignored, not an error.
        assert_eq!(choose_in(vec![]).unwrap_err(), "push without changes");
    }
}
