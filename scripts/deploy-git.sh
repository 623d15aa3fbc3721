#!/usr/bin/env bash
# deploy-git.sh — deploy script for the common case: the project's working_dir
# is a git clone of the repository; bring it to the tip of the deploy branch
# (or to the pushed tag, for a tag deploy), then run an optional build and
# restart command.
#
# deployd runs it directly (no shell) in working_dir, e.g.:
#
#   [projects.myapp]
#   script = "/usr/local/share/deployd/deploy-git.sh"
#   working_dir = "/srv/myapp"
#   env = { DEPLOY_BUILD = "make release", DEPLOY_RESTART = "systemctl restart myapp" }
#
# (No sudo: the shipped deployd.service sets NoNewPrivileges=. Its comments
# show the polkit rule that lets the deployd user restart myapp.service.)
#
# Reads, from deployd: DEPLOY_BRANCH or DEPLOY_TAG (one is required),
# DEPLOY_SHA (the pushed commit, empty for a manual run), DEPLOY_PROJECT,
# DEPLOY_RUN_ID, DEPLOY_TRIGGER.
# Reads, from the project's `env`:
#   DEPLOY_REMOTE   the remote to fetch from (default: origin)
#   DEPLOY_BUILD    optional command, run with `sh -c` after the checkout
#   DEPLOY_RESTART  optional command, run with `sh -c` after the build
# Gives the build and restart commands DEPLOY_COMMIT: the commit actually
# checked out, which may be newer than DEPLOY_SHA (see below).
#
# What is deployed is always the tip of <remote>/<branch> after a fetch: the
# pushed commit or something newer. A replayed or late delivery therefore never
# rolls the site back, and a rollback is done where it lasts — by reverting on
# the branch — rather than by a checkout the next push would silently undo.
#
# A tag deploy (DEPLOY_TAG set, from a project's `tags`) checks out the commit
# the tag names after fetching it: a release is exactly what was tagged, not
# whatever the branch holds now.
#
# Every failure exits non-zero, so deployd records the run as failed.
set -euo pipefail

log() { printf 'deploy-git: %s\n' "$*"; }
warn() { printf 'deploy-git: WARNING: %s\n' "$*" >&2; }
die() {
    printf 'deploy-git: ERROR: %s\n' "$*" >&2
    exit 1
}

remote=${DEPLOY_REMOTE:-origin}
branch=${DEPLOY_BRANCH:-}
tag=${DEPLOY_TAG:-}
pushed=${DEPLOY_SHA:-}

if [[ -n $tag ]]; then
    log "project ${DEPLOY_PROJECT:-?}, run ${DEPLOY_RUN_ID:-?} (${DEPLOY_TRIGGER:-?}), tag '${tag}', in $(pwd)"
    # The name ends up in a ref and on git's command line: refuse anything
    # that is not a valid tag name (and so cannot pass for an option either).
    if [[ $tag == -* ]] || ! git check-ref-format "refs/tags/$tag"; then
        die "DEPLOY_TAG '$tag' is not a valid tag name"
    fi
else
    log "project ${DEPLOY_PROJECT:-?}, run ${DEPLOY_RUN_ID:-?} (${DEPLOY_TRIGGER:-?}), branch '${branch}', in $(pwd)"
    [[ -n $branch ]] || die "DEPLOY_BRANCH and DEPLOY_TAG are empty: run this script from deployd, or set one by hand"
    # Likewise for a branch name.
    if [[ $branch == -* ]] || ! git check-ref-format "refs/heads/$branch"; then
        die "DEPLOY_BRANCH '$branch' is not a valid branch name"
    fi
fi

# deployd's stdin is /dev/null, but a manual `deployd deploy` run from a
# terminal still has one: git and ssh must fail rather than wait for a password
# or a host-key answer nobody will type.
export GIT_TERMINAL_PROMPT=0
# Only when the operator chose no ssh command of their own (an environment
# variable, or core.sshCommand for a deploy key), which this would override.
if [[ -z ${GIT_SSH_COMMAND:-}${GIT_SSH:-} ]] && ! git config --get core.sshCommand >/dev/null 2>&1; then
    export GIT_SSH_COMMAND='ssh -o BatchMode=yes'
fi

# Checked first, with git's own message, because the usual causes are easy to
# fix and otherwise surface later as a confusing fetch error.
if ! inside=$(git rev-parse --is-inside-work-tree 2>&1) || [[ $inside != true ]]; then
    printf '%s\n' "$inside" >&2
    die "$(pwd) is not a git work tree. working_dir must be a clone of the repository
  (git clone <url> $(pwd)). If git reports 'dubious ownership', the checkout
  belongs to another user: chown it to the user deployd runs as, or run
  git config --global --add safe.directory $(pwd)  as that user."
fi

git remote get-url "$remote" >/dev/null 2>&1 ||
    die "no remote '$remote' in this clone (set DEPLOY_REMOTE in the project's env, or: git remote -v)"

before=$(git rev-parse --verify --quiet HEAD || echo '(none)')
log "checkout is at ${before}"

log "fetching from $remote"
# On failure nothing below runs: the checkout stays exactly as it was, still
# serving the previous deploy, and the run is marked failed so someone looks.
# A tag is fetched by name, forced: a tag moved on the forge is deployed as
# it is there now.
fetch=(git fetch --prune "$remote")
[[ -z $tag ]] || fetch+=("+refs/tags/$tag:refs/tags/$tag")
if ! "${fetch[@]}"; then
    printf '\n' >&2
    die "######## git fetch from '$remote' ($(git remote get-url "$remote")) FAILED ########
  Nothing was deployed; the checkout is untouched at ${before}.
  Check network access and the credentials (deploy key, HOME=${HOME:-unset}) of the user deployd runs as."
fi

if [[ -n $tag ]]; then
    tip=$(git rev-parse --verify --quiet "refs/tags/$tag^{commit}") ||
        die "tag '$tag' not found on '$remote' after fetching (deleted on the forge?)"
    what="tag $tag"
else
    tip=$(git rev-parse --verify --quiet "refs/remotes/$remote/$branch^{commit}") ||
        die "branch '$branch' not found on '$remote' after fetching: deleted on the forge, or not in
  this clone's fetch refspec (git config --get-all remote.$remote.fetch)"
    what="$remote/$branch"
fi

# Deploy the tip, but say so when the push we were told about is not part of it:
# a force push rewrote the branch, and a human may want to know what went out.
if [[ -z $pushed ]]; then
    pushed_label='(manual)'
else
    pushed_label=$pushed
    # ^{commit} also peels an annotated tag's object (what forges send as
    # the `after` of a tag push) to the commit it names.
    if [[ ! $pushed =~ ^[0-9a-fA-F]{4,64}$ ]]; then
        warn "DEPLOY_SHA '$pushed' is not a commit id; deploying $what"
    elif ! pushed_commit=$(git rev-parse --verify --quiet "$pushed^{commit}"); then
        warn "pushed commit $pushed is not in the repository after fetching (force push?); deploying $what"
    elif [[ -n $tag && $pushed_commit != "$tip" ]]; then
        warn "tag $tag was moved since the push (it named $pushed_commit); deploying what it names now, $tip"
    elif ! git merge-base --is-ancestor "$pushed_commit" "$tip"; then
        warn "pushed commit $pushed is not on $what (force push?); deploying the tip $tip"
    elif [[ $pushed_commit != "$tip" ]]; then
        log "the branch has moved on since the push: deploying the newer tip"
    fi
fi

# A detached checkout of the exact commit rather than `git reset --hard` on a
# local branch: HEAD then names precisely what is deployed (`git status` says
# "HEAD detached at <sha>"), no local branch is moved, and a commit someone
# made by hand on the server stays on its branch instead of being thrown away.
# --force discards edits to tracked files: the deployed tree must be the
# commit's tree, nothing else.
#
# No `git clean`: untracked and ignored files — build artefacts, caches,
# node_modules, a .env holding the production configuration — must survive a
# deploy.
git -c advice.detachedHead=false checkout --quiet --force --detach "$tip"

# A commit also pins its submodules; without this they would keep serving the
# old ones.
if [[ -f .gitmodules ]]; then
    log "updating submodules"
    git submodule update --init --recursive --force
fi

subject=$(git log -1 --format=%s "$tip")
log "pushed ${pushed_label} deployed ${tip} (${subject})"

export DEPLOY_COMMIT=$tip

# run_step NAME COMMAND: one line before, and a failure that names the step and
# keeps its exit status, so the log says what broke without guessing.
run_step() {
    local name=$1 cmd=$2 status=0
    log "running $name: $cmd"
    sh -c "$cmd" || status=$?
    if ((status != 0)); then
        printf 'deploy-git: ERROR: %s failed with exit status %d\n' "$name" "$status" >&2
        exit "$status"
    fi
}

if [[ -n ${DEPLOY_BUILD:-} ]]; then
    run_step build "$DEPLOY_BUILD"
fi
if [[ -n ${DEPLOY_RESTART:-} ]]; then
    run_step restart "$DEPLOY_RESTART"
fi

log "done: ${tip} is live"
