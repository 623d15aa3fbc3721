#!/usr/bin/env bash
# test-install.sh — self-checking test of scripts/install.sh.
#
#   scripts/test-install.sh
#
# Stages installations into temporary DESTDIRs with a fake binary (so it needs
# neither root nor a build) and checks what lands where, with which modes; that
# a second run succeeds and changes nothing it must keep; and that an existing
# config is never overwritten. Prints `install: N passed, M failed` and exits
# non-zero when anything failed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
installer=$repo/scripts/install.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0

# check DESCRIPTION COMMAND...: one assertion. A failure says what was
# expected and shows the installer's last output, so the CI log alone explains it.
check() {
    local what=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        printf 'FAIL: %s\n  command: %s\n' "$what" "$*"
        if [[ -s $tmp/out ]]; then
            sed 's/^/  | /' "$tmp/out"
        fi
    fi
}

# run_install DESTDIR [ARGS...]: the installer, output kept in $tmp/out,
# exit status in $status (never aborting this script). Man pages and
# completions come from a fake generator output ($tmp/docs), so no build runs.
status=0
run_install() {
    local dest=$1
    shift
    status=0
    DOCS=${DOCS:-$tmp/docs} DESTDIR=$dest "$installer" "$@" >"$tmp/out" 2>&1 || status=$?
}
mkdir -p "$tmp/docs/man" "$tmp/docs/completions"
for f in man/deployd.1 man/deployd-reload.1 completions/deployd.bash completions/_deployd \
    completions/deployd.fish; do
    echo "fake $f" >"$tmp/docs/$f"
done

mode_is() { [[ -e $1 && $(stat -c %a "$1") == "$2" ]]; }
same_file() { cmp -s "$1" "$2"; }
contains() { grep -qF -- "$2" "$1"; }
lacks() { ! grep -qF -- "$2" "$1"; }
is_zero() { [[ $1 == 0 ]]; }
is_not_zero() { [[ $1 != 0 ]]; }

fake=$tmp/fake-deployd
printf '#!/bin/sh\necho fake deployd\n' >"$fake"
chmod 0755 "$fake"

# --- a fresh installation ----------------------------------------------------
root=$tmp/root
run_install "$root" "$fake"
check "first run exits 0" is_zero "$status"
if ((status != 0)); then
    # Nothing below can pass; one clear failure beats thirty confusing ones.
    echo "install: $passed passed, $failed failed (stopped: the first run failed)"
    exit 1
fi
check "says it skips the user under DESTDIR" contains "$tmp/out" "not creating the deployd user"
check "binary installed" same_file "$fake" "$root/usr/local/bin/deployd"
check "binary is 0755" mode_is "$root/usr/local/bin/deployd" 755
check "deploy-git.sh installed" same_file "$repo/scripts/deploy-git.sh" "$root/usr/local/share/deployd/deploy-git.sh"
check "deploy-git.sh is 0755" mode_is "$root/usr/local/share/deployd/deploy-git.sh" 755
check "service unit installed" same_file "$repo/systemd/deployd.service" "$root/etc/systemd/system/deployd.service"
check "service unit is 0644" mode_is "$root/etc/systemd/system/deployd.service" 644
check "socket unit installed" same_file "$repo/systemd/deployd.socket" "$root/etc/systemd/system/deployd.socket"
check "socket unit is 0644" mode_is "$root/etc/systemd/system/deployd.socket" 644
check "no temporary unit file left" test ! -e "$root/etc/systemd/system/deployd.service.tmp"
check "config installed from the example" same_file "$repo/deploy.example.toml" "$root/etc/deployd/deploy.toml"
check "config is 0640" mode_is "$root/etc/deployd/deploy.toml" 640
check "man page deployd.1 installed" same_file "$tmp/docs/man/deployd.1" "$root/usr/local/share/man/man1/deployd.1"
check "man page deployd-reload.1 installed" same_file "$tmp/docs/man/deployd-reload.1" "$root/usr/local/share/man/man1/deployd-reload.1"
check "man pages are 0644" mode_is "$root/usr/local/share/man/man1/deployd.1" 644
check "bash completion installed" same_file "$tmp/docs/completions/deployd.bash" "$root/usr/local/share/bash-completion/completions/deployd"
check "zsh completion installed" same_file "$tmp/docs/completions/_deployd" "$root/usr/local/share/zsh/site-functions/_deployd"
check "fish completion installed" same_file "$tmp/docs/completions/deployd.fish" "$root/usr/local/share/fish/vendor_completions.d/deployd.fish"
check "says the new config must be edited" contains "$tmp/out" "MUST be edited"
check "/etc/deployd is 0750" mode_is "$root/etc/deployd" 750
check "/etc/deployd/credentials is 0700" mode_is "$root/etc/deployd/credentials" 700
check "/var/lib/deployd is 0750" mode_is "$root/var/lib/deployd" 750
check "/var/log/deployd is 0750" mode_is "$root/var/log/deployd" 750
check "prints the next steps" contains "$tmp/out" "systemctl enable --now deployd.socket deployd.service"

# --- the second run: idempotent, and the config is the user's now -----------
echo "# edited by the operator" >>"$root/etc/deployd/deploy.toml"
cp "$root/etc/deployd/deploy.toml" "$tmp/edited.toml"
chmod 0600 "$root/etc/deployd/deploy.toml"
find "$root" -printf '%P %y %m\n' | sort >"$tmp/tree1"
run_install "$root" "$fake"
check "second run exits 0" is_zero "$status"
check "second run keeps the edited config" same_file "$tmp/edited.toml" "$root/etc/deployd/deploy.toml"
check "second run keeps the config's mode" mode_is "$root/etc/deployd/deploy.toml" 600
check "second run says the config is kept" contains "$tmp/out" "exists: left as it is"
find "$root" -printf '%P %y %m\n' | sort >"$tmp/tree2"
check "second run creates and removes nothing, changes no mode" same_file "$tmp/tree1" "$tmp/tree2"

# --- a config that was there before the first run ----------------------------
root=$tmp/preexisting
mkdir -p "$root/etc/deployd"
echo "# the operator's own config" >"$root/etc/deployd/deploy.toml"
cp "$root/etc/deployd/deploy.toml" "$tmp/own.toml"
run_install "$root" "$fake"
check "install over an existing config exits 0" is_zero "$status"
check "an existing config is not overwritten" same_file "$tmp/own.toml" "$root/etc/deployd/deploy.toml"
check "no 'must be edited' note for a kept config" lacks "$tmp/out" "MUST be edited"

# --- PREFIX ------------------------------------------------------------------
root=$tmp/prefix
PREFIX=/usr run_install "$root" "$fake"
check "PREFIX=/usr exits 0" is_zero "$status"
check "PREFIX=/usr puts the binary in /usr/bin" same_file "$fake" "$root/usr/bin/deployd"
check "PREFIX=/usr points ExecStart at /usr/bin/deployd" \
    contains "$root/etc/systemd/system/deployd.service" "ExecStart=/usr/bin/deployd serve"
check "PREFIX=/usr points ExecReload at /usr/bin/deployd" \
    contains "$root/etc/systemd/system/deployd.service" "ExecReload=/usr/bin/deployd reload"
check "PREFIX=/usr leaves no /usr/local path in the unit" \
    lacks "$root/etc/systemd/system/deployd.service" "=/usr/local/bin/deployd"
check "PREFIX=/usr leaves /usr/local alone" test ! -e "$root/usr/local"
PREFIX=relative/path run_install "$tmp/relative" "$fake"
check "a relative PREFIX is refused" is_not_zero "$status"

# --- no man pages to install --------------------------------------------------
DOCS=$tmp/no-docs run_install "$tmp/nodocs" "$fake"
check "missing man pages do not fail the install" is_zero "$status"
check "missing man pages are reported" contains "$tmp/out" "no man pages or completions"
check "missing man pages install none" test ! -e "$tmp/nodocs/usr/local/share/man"

# --- bad invocations -----------------------------------------------------------
run_install "$tmp/missing" "$tmp/no-such-binary"
check "a missing binary is refused" is_not_zero "$status"
check "a missing binary installs nothing" test ! -e "$tmp/missing"
check "a missing binary is named in the error" contains "$tmp/out" "$tmp/no-such-binary"
run_install "$tmp/help" --help
check "--help exits 0" is_zero "$status"
check "--help describes DESTDIR" contains "$tmp/out" "DESTDIR"
check "--help installs nothing" test ! -e "$tmp/help"
run_install "$tmp/bogus" --bogus
check "an unknown option exits 2" test "$status" = 2

echo "install: $passed passed, $failed failed"
((failed == 0))
