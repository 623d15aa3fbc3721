//! Which push of a delivery deploys a project, in this order: its
//! repository (when the project names one); its ref — a branch matching
//! `branch`/`branches`, or a new tag matching `tags` — and not a deletion;
//! no skip marker in the head commit's message; and, for a branch push,
//! a changed path that `paths`/`paths_ignore` let through. Forge-neutral: it
//! sees [`Push`]es, whatever forge sent them.

use crate::config::Project;
use crate::forge::push::{Files, Push};

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
    if let Some(reason) = by_ref(project, push) {
        return Verdict::Ignore(reason);
    }
    if let Some(tag) = push.tag() {
        if push.deleted {
            return Verdict::Ignore(format!("tag {tag} was deleted"));
        }
        // Path filters are for branches: a tag is a decision to release.
        return skip_marker(push).unwrap_or(Verdict::Deploy);
    }
    if push.deleted {
        let branch = push.branch().unwrap_or(&push.git_ref);
        return Verdict::Ignore(format!("branch {branch} was deleted"));
    }
    if let Some(skip) = skip_marker(push) {
        return skip;
    }
    paths(project, push)
}

/// Whether a push with this repository and ref could deploy `project`:
/// when not, nothing else of it matters and a forge's reader may leave the
/// rest of its body unread. Reads only `push.repository` and
/// `push.git_ref`.
pub fn may_deploy(project: &Project, push: &Push) -> bool {
    by_ref(project, push).is_none()
}

/// The first checks of [`filter`], on the repository and the ref alone:
/// why the push cannot deploy, or `None` when it is a tag or branch the
/// project deploys.
fn by_ref(project: &Project, push: &Push) -> Option<String> {
    if let Some(want) = &project.repository
        && !want.eq_ignore_ascii_case(&push.repository)
    {
        return Some(format!(
            "repository {:?} is not {:?}",
            push.repository, want
        ));
    }
    if let Some(tag) = push.tag() {
        if project.tags.is_empty() {
            return Some(format!("tag {tag}: the project deploys no tags"));
        }
        if !project.tags.matches(tag) {
            return Some(format!("tag {tag} matches no glob of tags"));
        }
        return None;
    }
    let Some(branch) = push.branch() else {
        return Some(format!("ref {:?} is not a branch", push.git_ref));
    };
    if !project.branches.matches(branch) {
        return Some(match project.branches.written() {
            [] => format!("branch {branch}: the project deploys no branches"),
            [one] => format!("branch {branch} is not the deploy branch {one}"),
            many => format!("branch {branch} matches none of {}", many.join(", ")),
        });
    }
    None
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
    use crate::forge::bitbucket::tests::{bb_deletion, bb_push, bb_ref, bitbucket};
    use crate::forge::gitea::tests::{gitea, gitea_push};
    use crate::forge::github::tests::{SHA, gh, gh_push, octokit_push};
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
        let deleted = bb_deletion("main", &old);
        assert_eq!(ignored(filter(&main, &deleted)), "branch main was deleted");
        // `old: null` is a new branch: it deploys.
        assert!(choose_in(vec![(null.clone(), bb_ref("branch", "main", SHA))]).is_ok());
        // Other ref kinds are not branches.
        let reason = choose_in(vec![(null.clone(), bb_ref("bookmark", "main", SHA))]).unwrap_err();
        assert!(reason.contains("not a branch"), "{reason}");
        // A push without changes is ignored, not an error.
        assert_eq!(choose_in(vec![]).unwrap_err(), "push without changes");
    }

    const ZERO: &str = "0000000000000000000000000000000000000000";

    /// The one push of a GitHub delivery `body`.
    fn gh_one(body: &str) -> Push {
        push_of(
            gh("push", "application/json", body.as_bytes())
                .unwrap()
                .event,
        )
        .remove(0)
    }

    fn deploys(p: &Project, push: &Push) -> bool {
        match filter(p, push) {
            Verdict::Deploy => true,
            Verdict::Ignore(_) => false,
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn branch_globs_lists_and_tags() {
        let p = with("branches = [\"main\", \"release/*\"]\ntags = [\"v*\"]\n");
        let on = |r: &str| gh_one(&gh_push(r, SHA, "acme/app"));
        assert!(deploys(&p, &on("refs/heads/main")));
        assert!(deploys(&p, &on("refs/heads/release/1.2")));
        assert_eq!(
            ignored(filter(&p, &on("refs/heads/release/1.2/fix"))),
            "branch release/1.2/fix matches none of main, release/*"
        );
        assert!(deploys(&p, &on("refs/tags/v1.2.0")));
        assert_eq!(
            ignored(filter(&p, &on("refs/tags/latest"))),
            "tag latest matches no glob of tags"
        );
        assert_eq!(
            ignored(filter(
                &p,
                &gh_one(&gh_push("refs/tags/v1.2.0", ZERO, "acme/app"))
            )),
            "tag v1.2.0 was deleted"
        );
        // One glob in `branch`.
        let rel = with("branch = \"release/*\"\n");
        assert!(deploys(&rel, &on("refs/heads/release/2")));
        assert!(!deploys(&rel, &on("refs/heads/main")));
        assert_eq!(rel.default_ref(), None);
        // Tags only.
        let tags_only = with("branches = []\ntags = [\"v*\"]\n");
        assert_eq!(
            ignored(filter(&tags_only, &on("refs/heads/main"))),
            "branch main: the project deploys no branches"
        );
        assert!(deploys(&tags_only, &on("refs/tags/v2")));
    }

    #[test]
    fn new_tags_deploy_on_every_forge_and_deleted_ones_do_not() {
        let p = with("tags = [\"v*\"]\n");
        let tag = "refs/tags/v1.2.0";
        let null = serde_json::Value::Null;
        let created = [
            gh_one(&gh_push(tag, SHA, "acme/app")),
            push_of(gitea("push", &gitea_push(tag, ZERO, SHA))).remove(0),
            push_of(gitlab("Tag Push Hook", &[], &gitlab_push(tag, ZERO, SHA, "g/app")).event)
                .remove(0),
            push_of(
                bitbucket(
                    "repo:push",
                    &bb_push(vec![(null.clone(), bb_ref("tag", "v1.2.0", SHA))]),
                )
                .event,
            )
            .remove(0),
        ];
        for push in &created {
            assert!(deploys(&p, push), "{push:?}");
            let env: std::collections::BTreeMap<_, _> = push.env().into_iter().collect();
            assert_eq!(env["DEPLOY_TAG"], "v1.2.0");
            assert_eq!(env["DEPLOY_REF"], tag);
            assert_eq!(env["DEPLOY_BRANCH"], "");
            assert_eq!(env["DEPLOY_SHA"], SHA);
        }
        let deleted = [
            gh_one(&gh_push(tag, ZERO, "acme/app")),
            push_of(gitlab("Tag Push Hook", &[], &gitlab_push(tag, SHA, ZERO, "g/app")).event)
                .remove(0),
            push_of(
                bitbucket(
                    "repo:push",
                    &bb_push(vec![(bb_ref("annotated_tag", "v1.2.0", SHA), null.clone())]),
                )
                .event,
            )
            .remove(0),
        ];
        for push in &deleted {
            assert_eq!(
                ignored(filter(&p, push)),
                "tag v1.2.0 was deleted",
                "{push:?}"
            );
        }
    }

    #[test]
    fn skip_markers_in_the_head_commit_message() {
        let p = project("main", None);
        let mut body: serde_json::Value =
            serde_json::from_str(&octokit_push(false, &"2".repeat(40))).unwrap();
        body["head_commit"]["message"] = "Fix the typo\n\n[skip deploy]".into();
        assert_eq!(
            ignored(filter(&p, &gh_one(&body.to_string()))),
            "the head commit's message says [skip deploy]"
        );
        // GitLab: the commit whose id is `after`; any case.
        let mut gl: serde_json::Value =
            serde_json::from_str(&gitlab_push("refs/heads/main", SHA, SHA, "g/app")).unwrap();
        gl["commits"][0]["message"] = "[Deploy Skip] docs".into();
        let push = push_of(gitlab("Push Hook", &[], &gl.to_string()).event).remove(0);
        assert!(ignored(filter(&p, &push)).contains("[deploy skip]"));
        // Bitbucket: `new.target.message`.
        let mut bb: serde_json::Value = serde_json::from_str(&bb_push(vec![(
            bb_ref("branch", "main", &"1".repeat(40)),
            bb_ref("branch", "main", SHA),
        )]))
        .unwrap();
        bb["push"]["changes"][0]["new"]["target"]["message"] = "wip [skip deploy]\n".into();
        let push = push_of(bitbucket("repo:push", &bb.to_string()).event).remove(0);
        assert!(ignored(filter(&p, &push)).contains("[skip deploy]"));
        // Without a marker, the first line is DEPLOY_MESSAGE.
        let plain = gh_one(&octokit_push(false, &"2".repeat(40)));
        assert!(deploys(&p, &plain));
        let env: std::collections::BTreeMap<_, _> = plain.env().into_iter().collect();
        assert_eq!(env["DEPLOY_MESSAGE"], "Drop the old page");
        assert_eq!(env["DEPLOY_FORCED"], "0");
        let forced: std::collections::BTreeMap<_, _> =
            gh_one(&octokit_push(true, SHA)).env().into_iter().collect();
        assert_eq!(forced["DEPLOY_FORCED"], "1");
    }

    /// A GitHub push of one commit with these file lists.
    fn gh_files(added: &[&str], modified: &[&str], removed: &[&str]) -> Push {
        let mut body: serde_json::Value =
            serde_json::from_str(&octokit_push(false, &"2".repeat(40))).unwrap();
        let commit = serde_json::json!({"id": SHA, "message": "m",
            "added": added, "modified": modified, "removed": removed});
        body["commits"] = vec![commit.clone()].into();
        body["head_commit"] = commit;
        gh_one(&body.to_string())
    }

    #[test]
    fn paths_count_added_modified_and_removed_files() {
        let p = with("paths = [\"api/**\", \"Cargo.lock\"]\npaths_ignore = [\"api/docs/**\"]\n");
        assert!(deploys(&p, &gh_files(&["api/new.rs"], &[], &[])));
        assert!(deploys(&p, &gh_files(&[], &["Cargo.lock"], &[])));
        // A removal is a change: the trap of reading only `modified`.
        assert!(deploys(&p, &gh_files(&["docs/a.md"], &[], &["api/old.rs"])));
        assert_eq!(
            ignored(filter(&p, &gh_files(&["docs/a.md"], &["README.md"], &[]))),
            NO_PATH_MATCHES
        );
        assert_eq!(
            ignored(filter(&p, &gh_files(&[], &["api/docs/x.md"], &[]))),
            NO_PATH_MATCHES
        );
        // paths_ignore alone: anything but docs.
        let docs = with("paths_ignore = [\"docs/**\", \"*.md\"]\n");
        assert!(!deploys(
            &docs,
            &gh_files(&["docs/a.png"], &["README.md"], &[])
        ));
        assert!(deploys(
            &docs,
            &gh_files(&[], &["README.md", "src/x.rs"], &[])
        ));
    }

    #[test]
    fn paths_never_skip_on_missing_information() {
        let p = with("paths = [\"api/**\"]\n");
        let unfiltered = |push: Push, says: &str| {
            let chosen = choose(&p, vec![push]).unwrap();
            assert!(
                chosen.note.contains(says),
                "{:?} lacks {says:?}",
                chosen.note
            );
        };
        // GitHub: a force push, a new branch.
        unfiltered(gh_one(&octokit_push(true, &"2".repeat(40))), "force push");
        unfiltered(gh_one(&octokit_push(false, ZERO)), "new branch");
        // GitLab: 20 of 25 commits listed.
        let mut gl: serde_json::Value =
            serde_json::from_str(&gitlab_push("refs/heads/main", SHA, SHA, "g/app")).unwrap();
        let c = gl["commits"][0].clone();
        gl["commits"] = vec![c; 20].into();
        gl["total_commits_count"] = 25.into();
        let push = push_of(gitlab("Push Hook", &[], &gl.to_string()).event).remove(0);
        unfiltered(push, "GitLab listed 20 of the push's 25 commits");
        // Forgejo: 15 of 30.
        let mut fj: serde_json::Value =
            serde_json::from_str(&gitea_push("refs/heads/main", SHA, &"f".repeat(40))).unwrap();
        let c = fj["commits"][0].clone();
        fj["commits"] = vec![c; 15].into();
        fj["total_commits"] = 30.into();
        let push = push_of(gitea("push", &fj.to_string())).remove(0);
        unfiltered(push, "listed 15 of the push's 30 commits");
        // Bitbucket sends no lists at all.
        let bb = bb_push(vec![(
            bb_ref("branch", "main", &"1".repeat(40)),
            bb_ref("branch", "main", SHA),
        )]);
        let push = push_of(bitbucket("repo:push", &bb).event).remove(0);
        unfiltered(push, "Bitbucket sends no file lists");
        // The whole list, nothing matching: ignored, no note.
        let gitea_readme = push_of(gitea(
            "push",
            &gitea_push("refs/heads/main", SHA, &"f".repeat(40)),
        ))
        .remove(0);
        assert_eq!(choose(&p, vec![gitea_readme]).unwrap_err(), NO_PATH_MATCHES);
        // No path filter: no note, whatever the push.
        let plain = choose(
            &project("main", None),
            vec![gh_one(&octokit_push(true, SHA))],
        )
        .unwrap();
        assert_eq!(plain.note, "");
    }
}
