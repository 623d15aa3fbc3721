#!/usr/bin/env bash
# test-system.sh — the Debian package under a real systemd, end to end.
#
#   scripts/test-system.sh
#
# For Debian 12 (bookworm) and Debian 13 (trixie) in turn
# (DEPLOYD_TEST_SUITES="bookworm" for one): builds the .deb (twice: a first
# version and a rebuilt, newer one), boots a minimal Debian with
# `systemd-nspawn --boot` (systemd as PID 1) and drives it from outside with
# nsenter: installs the package, sets up a project with a
# real bare git repository and deploy-git.sh, enables deployd.socket, pushes
# and sends a signed delivery, reloads good and bad configs, kills the daemon
# mid-deploy, stops it mid-deploy, checks journal priorities and
# `systemd-analyze security`, upgrades with a request pending, removes and
# purges. One line per step, `ok` or `FAIL` with what it saw; exits non-zero
# when any step failed. The container is always powered off and removed.
#
# Needs: root, cargo, and systemd-container, debootstrap, openssl, curl,
# python3 and lintian (installed with apt-get when missing). The container
# shares the host's network; deployd.socket listens on a free loopback port.
#
# Each Debian root file system is made once by debootstrap, from the mirror
# apt uses here, and kept in $DEPLOYD_TEST_ROOTFS_CACHE (default
# /var/cache/deployd-system-test); the first run takes a few minutes longer.
# Each run boots a fresh copy of it.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${DEPLOYD_TEST_ROOTFS_CACHE:-/var/cache/deployd-system-test}

say() { printf 'system: %s\n' "${suite:+[$release] }$*"; }
die() {
    printf 'system: error: %s\n' "$*" >&2
    exit 2
}

(($(id -u) == 0)) || die "needs root (it boots a container)"

# One run of this script per Debian release, each in its own container.
if [[ -z ${DEPLOYD_TEST_SUITE:-} ]]; then
    status=0
    for suite in ${DEPLOYD_TEST_SUITES:-bookworm trixie}; do
        DEPLOYD_TEST_SUITE=$suite "$0" || status=1
    done
    exit "$status"
fi
suite=$DEPLOYD_TEST_SUITE
case $suite in
bookworm) release=debian-12 ;;
trixie) release=debian-13 ;;
*) die "unknown suite $suite (bookworm or trixie)" ;;
esac
base=$cache/$release

# --- tools -------------------------------------------------------------------

need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v nsenter >/dev/null || need+=(util-linux)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${need[@]}" >/dev/null; }; then
        die "cannot install ${need[*]}"
    fi
fi

# The Debian mirror apt uses on this machine (deb822 or one-line sources).
mirror() {
    local m
    m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1)
    [[ -n $m ]] || m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
        awk '{print $2}' | grep -v security | head -1)
    echo "${m:-http://deb.debian.org/debian}"
}

# --- results -------------------------------------------------------------------

passed=0
failed=0
ok() {
    passed=$((passed + 1))
    printf 'ok   [%s] %s\n' "$release" "$*"
}
fail() {
    failed=$((failed + 1))
    printf 'FAIL [%s] %s\n' "$release" "$*"
}
indent() { sed 's/^/     | /'; }

# --- the root file system, once ---------------------------------------------

if [[ ! -e $base/etc/deployd-test-rootfs ]]; then
    say "debootstrap $suite into $base (once; a few minutes)"
    mkdir -p "$cache"
    rm -rf "$base.tmp"
    if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,git,ca-certificates,curl \
        "$suite" "$base.tmp" "$(mirror)" >"$cache/debootstrap-$suite.log" 2>&1; then
        tail -20 "$cache/debootstrap-$suite.log" >&2
        die "debootstrap failed (log: $cache/debootstrap-$suite.log)"
    fi
    # No /bin/kill here (that is procps): the units must not need it.
    echo "deployd system test root, $suite" >"$base.tmp/etc/deployd-test-rootfs"
    rm -rf "$base"
    mv "$base.tmp" "$base"
fi

# --- the packages ----------------------------------------------------------------

work=$(mktemp -d /var/tmp/deployd-system-test.XXXXXX)
machine=$work/root
nspawn_pid=
pid1=

cleanup() {
    if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # Power off through systemd; SIGKILL to nspawn (ours, by pid) if it hangs.
        # (SIGTERM makes nspawn ask the container's systemd to power off.)
        if [[ -z $pid1 ]] || ! nsenter -t "$pid1" -a systemctl poweroff --no-block >/dev/null 2>&1; then
            kill -TERM "$nspawn_pid" 2>/dev/null || true
        fi
        for _ in $(seq 1 100); do
            kill -0 "$nspawn_pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$nspawn_pid" 2>/dev/null; then
            # Killing the container's PID 1 ends every process in it.
            [[ -n $pid1 ]] && kill -KILL "$pid1" 2>/dev/null
            kill -KILL "$nspawn_pid" 2>/dev/null || true
            sleep 1
        fi
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cargo_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -1)
say "building the packages"
if deb1=$(DEB_VERSION=$cargo_version-1 "$repo/scripts/build-deb.sh" "$work/deb1" 2>"$work/build.log") &&
    deb2=$(DEB_VERSION=$cargo_version-2 "$repo/scripts/build-deb.sh" "$work/deb2" 2>>"$work/build.log"); then
    ok "build-deb: $(basename "$deb1") and $(basename "$deb2") ($(du -k "$deb1" | cut -f1) KiB)"
else
    fail "build-deb failed:"
    indent <"$work/build.log"
    exit 1
fi

# Debian's own package checks: no error or warning beyond the overrides in
# packaging/deb/lintian-overrides, each of which says why.
# Once: the package is the same for every release.
if [[ $suite != bookworm ]]; then
    : # checked with Debian 12
elif ! command -v lintian >/dev/null &&
    ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian >/dev/null 2>&1; then
    fail "lintian: cannot install it"
elif lint=$(lintian --fail-on error,warning "$deb1" 2>/dev/null); then
    ok "lintian: no error or warning${lint:+ ($(grep -c . <<<"$lint") informational tags)}"
else
    fail "lintian:"
    indent <<<"$lint"
fi
# --- boot ------------------------------------------------------------------------

cp -a --reflink=auto "$base" "$machine"
cp "$deb1" "$deb2" "$machine/root/"
systemd-nspawn --boot --register=no --keep-unit --console=passive --quiet \
    -D "$machine" -M "deployd-test-$$" </dev/null >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
# The container's PID 1 is nspawn's child once that has become systemd (an
# intermediate nspawn process comes first).
for _ in $(seq 1 100); do
    pid1=$(ps -o pid=,comm= --ppid "$nspawn_pid" 2>/dev/null | awk '$2 == "systemd" { print $1; exit }')
    [[ -n $pid1 ]] && break
    sleep 0.1
done

# c CMD...: runs CMD in the container (all its namespaces), with a clean environment.
c() {
    nsenter -t "$pid1" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 TERM=dumb "$@"
}
# as_deployd CMD...: as the deployd user (run records are 0600 deployd).
as_deployd() { c setpriv --reuid=deployd --regid=deployd --init-groups env HOME=/var/lib/deployd "$@"; }

# wait_for SECONDS CMD...: polls CMD every 0.2s until it succeeds; 1 on timeout.
wait_for() {
    local limit=$1 i
    shift
    for ((i = 0; i < limit * 5; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}

state=
if [[ -n $pid1 ]] && wait_for 60 c systemctl is-system-running --wait; then
    ok "boot: $(c systemctl --version | head -1) is PID 1 of the container (host pid $pid1)"
else
    state=$([[ -n $pid1 ]] && c systemctl is-system-running 2>&1)
    fail "boot: the container's systemd did not come up (state: ${state:-no pid 1})"
    tail -20 "$work/nspawn.log" | indent
    exit 1
fi

# --- install ---------------------------------------------------------------------

if out=$(c apt-get install -y -q "/root/$(basename "$deb1")" 2>&1); then
    ok "install: apt-get install ./$(basename "$deb1")"
else
    fail "install: apt-get install failed: $(tail -3 <<<"$out")"
    exit 1
fi
active=$(c systemctl is-active deployd.socket deployd.service 2>&1 | tr '\n' ' ')
if [[ $active == "inactive inactive " ]]; then
    ok "install starts nothing: deployd.socket, deployd.service $active"
else
    fail "install started something: deployd.socket, deployd.service: $active"
fi
owner=$(c stat -c '%U:%G %a' /etc/deployd/deploy.toml /etc/deployd/credentials 2>&1 | tr '\n' ' ')
if c id deployd >/dev/null 2>&1 && [[ $owner == "root:deployd 640 root:root 700 " ]]; then
    ok "user deployd exists; config root:deployd 640, credentials root:root 700"
else
    fail "user or owners: $(c id deployd 2>&1); $owner"
fi
if c test -s /usr/share/man/man1/deployd-reload.1.gz && c test -s /usr/share/bash-completion/completions/deployd &&
    c test -s /usr/share/zsh/vendor-completions/_deployd && c test -s /usr/share/fish/vendor_completions.d/deployd.fish; then
    ok "man pages and bash, zsh, fish completions installed"
else
    fail "man pages or completions missing: $(c dpkg -L deployd | grep -E 'man1|completion' | tr '\n' ' ')"
fi

# --- a project: bare repository, checkout, secret, config ------------------------

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000)))
secret=$(openssl rand -hex 32)
c sh -ec "
install -d -o deployd -g deployd /srv/git /srv/work /srv/slow /srv/site
printf '%s\n' '$secret' >/etc/deployd/credentials/site
chmod 0600 /etc/deployd/credentials/site
mkdir -p /etc/systemd/system/deployd.socket.d
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:$port\n' >/etc/systemd/system/deployd.socket.d/port.conf
# A deploy that waits while /srv/slow/hold exists (at most 60s): to act mid-run.
cat >/srv/slow/deploy.sh <<'EOF'
#!/bin/sh
echo \"slow run \$DEPLOY_RUN_ID (\$DEPLOY_TRIGGER \$DEPLOY_SHA)\"
i=0
while [ -e /srv/slow/hold ] && [ \$i -lt 300 ]; do sleep 0.2; i=\$((i + 1)); done
echo done
EOF
chmod 0755 /srv/slow/deploy.sh
cat >>/etc/deployd/deploy.toml <<'EOF'

[projects.site]
secret_credential = \"deployd_site\"
repository = \"acme/site\"
branch = \"main\"
script = \"/usr/share/deployd/deploy-git.sh\"
working_dir = \"/srv/site\"

[projects.slow]
secret_credential = \"deployd_site\"
script = \"/srv/slow/deploy.sh\"
working_dir = \"/srv/slow\"
EOF
" || fail "project setup failed"
# A short shutdown_grace, in the packaged [server] table, for the stop steps.
c sed -i 's|^control_socket = .*|&\nshutdown_grace = "2s"|' /etc/deployd/deploy.toml
# The repository and its checkout, all the deployd user's (git refuses a
# repository another user owns as "dubious").
if out=$(as_deployd sh -ec '
git init -q --bare -b main /srv/git/site.git
git clone -q /srv/git/site.git /srv/work/site 2>/dev/null
cd /srv/work/site
git -c user.name=dev -c user.email=dev@example.com commit -q --allow-empty -m first
git push -q origin main
git clone -q /srv/git/site.git /srv/site
' 2>&1); then
    ok "project: bare repository /srv/git/site.git, checkout /srv/site, secret in /etc/deployd/credentials/site"
else
    fail "project setup: $out"
fi
check_out=$(c deployd check 2>&1)
if grep -q "deployd_site" <<<"$check_out" && grep -q "/etc/deployd/credentials/site" <<<"$check_out"; then
    ok "deployd check: OK, says the secret comes from /etc/deployd/credentials/site"
else
    fail "deployd check: $check_out"
fi

# --- enable, push, deliver -------------------------------------------------------------

c systemctl daemon-reload
if c systemctl enable --now deployd.socket >/dev/null 2>&1 && c systemctl is-active --quiet deployd.socket &&
    ! c systemctl is-active --quiet deployd.service; then
    ok "systemctl enable --now deployd.socket: listening on 127.0.0.1:$port, service not started yet"
else
    fail "enable --now deployd.socket: socket $(c systemctl is-active deployd.socket), service $(c systemctl is-active deployd.service)"
fi

# push_commit MESSAGE: a commit pushed to the bare repository; prints its sha.
push_commit() {
    as_deployd sh -ec "cd /srv/work/site && echo '$1' >>file && git add file &&
        git -c user.name=dev -c user.email=dev@example.com commit -q -m '$1' &&
        git push -q origin main && git rev-parse HEAD"
}
# deliver PROJECT SHA: a signed GitHub push delivery; prints the HTTP status.
deliver() {
    local project=$1 sha=$2 body sig
    # (Called in $(…), a subshell: a counter would not count.)
    # Each body differs (its push time, its compare URL), as real pushes do:
    # deployd answers the same signed body twice as a duplicate.
    body="{\"ref\":\"refs/heads/main\",\"before\":\"0000000000000000000000000000000000000000\",\"after\":\"$sha\",\"compare\":\"https://example.com/compare/$(date +%s%N)\",\"repository\":{\"full_name\":\"acme/$project\",\"pushed_at\":$(date +%s)},\"pusher\":{\"name\":\"dev\"}}"
    sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
    curl -s -o /dev/null -w '%{http_code}' --max-time 20 -X POST \
        -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
        -H "X-GitHub-Delivery: system-test-$(date +%s%N)" -H "X-Hub-Signature-256: sha256=$sig" \
        --data-binary "$body" "http://127.0.0.1:$port/hooks/$project"
}
# runs PROJECT: "status:trigger:sha" per run, oldest first.
runs() {
    as_deployd deployd history "$1" -n 100 --json 2>/dev/null |
        python3 -c 'import json,sys; [print(r["status"] + ":" + r["trigger"] + ":" + r["sha"]) for r in reversed(json.load(sys.stdin))]'
}
# says PATTERN CMD...: CMD's output has a line matching PATTERN (the whole
# output is read first: `CMD | grep -q` fails under pipefail when grep stops
# reading early).
says() {
    local pattern=$1 out
    shift
    out=$("$@" 2>&1)
    grep -q -- "$pattern" <<<"$out"
}
# has_run PROJECT PREFIX: a run whose "status:trigger:sha" starts with PREFIX.
has_run() {
    local all
    all=$(runs "$1")
    grep -q "^$2" <<<"$all"
}
head_is() { [[ $(as_deployd git -C /srv/site rev-parse HEAD 2>/dev/null) == "$1" ]]; }

sha1=$(push_commit second)
code=$(deliver site "$sha1")
if [[ $code == 202 ]] && wait_for 60 has_run site "succeeded:webhook:$sha1" && head_is "$sha1"; then
    ok "push + signed delivery: 202, /srv/site at ${sha1:0:12}, history: $(runs site | tr '\n' ' ')"
else
    fail "push + delivery: HTTP $code; history: $(runs site | tr '\n' ' '); HEAD $(as_deployd git -C /srv/site rev-parse HEAD 2>&1)"
    c journalctl -u deployd --no-pager -n 20 | indent
fi

# --- reload ---------------------------------------------------------------------------

c cp /etc/deployd/deploy.toml /root/good.toml
c sh -c 'cat >>/etc/deployd/deploy.toml' <<'EOF'

[projects.broken]
secret_credential = "deployd_site"
repository = "acme/broken"
script = "/usr/share/deployd/deploy-git.sh"
working_dir = "/srv/work"
EOF
reload_out=$(c systemctl reload deployd 2>&1)
reload_status=$?
code=$(deliver broken "$sha1")
if ((reload_status == 0)) && [[ $code == 202 ]]; then
    ok "systemctl reload (valid config): exit 0, the new project answers 202 at once"
else
    fail "systemctl reload (valid config): exit $reload_status ($reload_out), new project answered $code"
fi
c cp /etc/deployd/deploy.toml /root/good.toml

c sh -c 'echo "scirpt = \"typo\"" >>/etc/deployd/deploy.toml'
reload_out=$(c systemctl reload deployd 2>&1)
reload_status=$?
journal=$(c journalctl -u deployd --no-pager -n 30 2>&1)
code=$(deliver site "$sha1")
if ((reload_status != 0)) && grep -q "deploy.toml:[0-9]*: projects.broken.scirpt" <<<"$journal" && [[ $code == 202 ]]; then
    ok "systemctl reload (invalid config): exit $reload_status; journal: $(grep -o 'deploy.toml:[0-9]*: projects.broken.scirpt: [^,]*' <<<"$journal" | head -1); old config serves (202)"
else
    fail "systemctl reload (invalid config): exit $reload_status; site answered $code; journal:"
    tail -8 <<<"$journal" | indent
fi
c cp /root/good.toml /etc/deployd/deploy.toml
c systemctl reload deployd >/dev/null 2>&1 || fail "reload back to the good config failed"

# --- priorities -----------------------------------------------------------------------

if wait_for 30 has_run broken "failed:" &&
    wait_for 10 says 'broken: run [0-9]* failed (exit code' c journalctl -u deployd -p err --no-pager; then
    ok "journal priority: the failed deploy is err: $(c journalctl -u deployd -p err --no-pager -o cat | grep 'broken: run' | tail -1)"
else
    fail "journal priority: no err line for the failed deploy; broken: $(runs broken | tr '\n' ' ')"
fi
if says "site: run [0-9]* succeeded" c journalctl -u deployd -p info..info --no-pager -o cat; then
    ok "journal priority: a succeeded deploy is info"
else
    fail "journal priority: no info line for the succeeded deploy"
fi

# --- kill -9 mid-deploy -------------------------------------------------------------------

main_pid() { c systemctl show -p MainPID --value deployd.service; }
slow_running() { says '^slow: running' c deployd status; }
c touch /srv/slow/hold
c deployd deploy slow --no-wait >/dev/null 2>&1
if wait_for 30 slow_running; then
    old=$(main_pid)
    c systemctl kill --kill-who=main --signal=SIGKILL deployd.service
    restarted() { local p; p=$(main_pid) && [[ $p != 0 && $p != "$old" ]] && c systemctl is-active --quiet deployd.service; }
    if wait_for 30 restarted && wait_for 30 has_run slow "running:recovery"; then
        c rm -f /srv/slow/hold
        if wait_for 30 has_run slow "succeeded:recovery"; then
            ok "kill -9 mid-deploy: systemd restarted it (pid $old -> $(main_pid)); slow: $(runs slow | tr '\n' ' ')"
        else
            fail "kill -9: recovery did not succeed; slow: $(runs slow | tr '\n' ' ')"
        fi
    else
        fail "kill -9: no restart or no recovery run (pid $old -> $(main_pid)); slow: $(runs slow | tr '\n' ' ')"
    fi
    if has_run slow "interrupted:manual"; then
        ok "kill -9: the killed run is recorded interrupted"
    else
        fail "kill -9: no interrupted record; slow: $(runs slow | tr '\n' ' ')"
    fi
else
    fail "kill -9: the slow deploy never ran: $(c deployd status 2>&1 | head -3)"
fi
c rm -f /srv/slow/hold

# --- systemctl stop mid-deploy -------------------------------------------------------------

count_interrupted() {
    local all
    all=$(runs slow)
    grep -c '^interrupted' <<<"$all"
}
before=$(count_interrupted)
c touch /srv/slow/hold
c deployd deploy slow --no-wait >/dev/null 2>&1
if wait_for 30 slow_running; then
    t0=$(date +%s)
    c systemctl stop deployd.service 2>/dev/null # (it warns that the socket can start it again)
    t1=$(date +%s)
    after=$(count_interrupted)
    if ((after == before + 1)) && says "shutdown_grace over" c journalctl -u deployd --no-pager -o cat -n 30; then
        ok "systemctl stop mid-deploy: stopped after $((t1 - t0))s (shutdown_grace 2s), run recorded interrupted"
    else
        fail "systemctl stop mid-deploy: interrupted $before -> $after; journal: $(c journalctl -u deployd --no-pager -o cat -n 5 | tr '\n' '|')"
    fi
    if c systemctl is-active --quiet deployd.socket; then
        ok "after systemctl stop deployd.service, deployd.socket still listens (the next delivery starts it)"
    else
        fail "deployd.socket stopped with the service"
    fi
else
    fail "systemctl stop: the slow deploy never ran"
fi
c rm -f /srv/slow/hold
c systemctl start deployd.service
wait_for 30 has_run slow "succeeded:recovery" || true

# --- systemd-analyze security ---------------------------------------------------------------

exposure=$(c systemd-analyze security deployd.service 2>/dev/null | sed -n 's/.*Overall exposure level for deployd.service: \([0-9.]*\).*/\1/p')
if [[ -n $exposure ]] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
    ok "systemd-analyze security deployd.service: $exposure (at most 2.0)"
else
    fail "systemd-analyze security deployd.service: '${exposure:-no result}' (at most 2.0)"
fi

# --- upgrade with a request pending -----------------------------------------------------------

c sh -c 'echo "# the operator was here" >>/etc/deployd/deploy.toml'
c systemctl reload deployd >/dev/null 2>&1
c touch /srv/slow/hold
c deployd deploy slow --no-wait >/dev/null 2>&1
wait_for 30 slow_running || fail "upgrade: the slow deploy never ran"
sha2=$(push_commit third)
code=$(deliver site "$sha2")
pending() {
    local st
    st=$(c deployd status)
    grep -q "pending: refs/heads/main ${sha2:0:12}" <<<"$st"
}
if [[ $code == 202 ]] && wait_for 10 pending; then
    old=$(main_pid)
    # The upgrade restarts the daemon while slow runs (it is interrupted
    # after shutdown_grace, and runs again as a recovery) and site's push
    # waits: it must run on the new daemon, once slow is let go.
    if out=$(c apt-get install -y -q "/root/$(basename "$deb2")" 2>&1); then
        c rm -f /srv/slow/hold
        # shellcheck disable=SC2016 # dpkg-query's own ${Version}, not the shell's
        version=$(c dpkg-query -W -f '${Version}' deployd)
        if wait_for 60 has_run site "succeeded:webhook:$sha2" && head_is "$sha2" && [[ $(main_pid) != "$old" ]]; then
            ok "upgrade to $version with a request pending: restarted (pid $old -> $(main_pid)), then deployed ${sha2:0:12}"
        else
            fail "upgrade: pending push not run; site: $(runs site | tr '\n' ' '); pid $old -> $(main_pid)"
        fi
        if c grep -q "the operator was here" /etc/deployd/deploy.toml; then
            ok "upgrade kept the edited /etc/deployd/deploy.toml"
        else
            fail "upgrade replaced the edited config"
        fi
    else
        fail "upgrade: apt-get install failed: $(tail -15 <<<"$out")"
    fi
else
    fail "upgrade: site's push was answered $code or never pending: $(c deployd status 2>&1 | tr '\n' '|')"
fi
c rm -f /srv/slow/hold

# --- remove, purge ----------------------------------------------------------------------------

if c apt-get remove -y -q deployd >/dev/null 2>&1 && ! c systemctl is-active --quiet deployd.socket &&
    ! c systemctl is-active --quiet deployd.service && c test -d /var/lib/deployd; then
    ok "apt-get remove: socket and service stopped, state kept"
else
    fail "apt-get remove: socket $(c systemctl is-active deployd.socket), service $(c systemctl is-active deployd.service)"
fi
if out=$(c apt-get purge -y -q deployd 2>&1) && ! c test -e /var/lib/deployd && ! c test -e /var/log/deployd &&
    ! c test -e /etc/deployd; then
    ok "apt-get purge: /var/lib/deployd, /var/log/deployd and /etc/deployd removed"
else
    fail "apt-get purge: left $(c ls -d /var/lib/deployd /var/log/deployd /etc/deployd 2>/dev/null | tr '\n' ' '); apt-get said: $(tail -15 <<<"$out")"
fi

say "$passed passed, $failed failed"
((failed == 0))
