#!/usr/bin/env bash
# install.sh — install deployd on this machine, or stage it into DESTDIR.
#
#   scripts/install.sh [BINARY]
#
# BINARY defaults to target/release/deployd of this repository (build it with
# `cargo build --release`). Environment:
#   DESTDIR   staging root (default: empty, the real system). When set, no user
#             is created, no owner is changed and systemd is not reloaded: do
#             that on the target system.
#   PREFIX    where the binary goes, as $PREFIX/bin/deployd (default: /usr/local).
#   DOCS      the man pages and completions, as written by
#             `cargo run --example gen-docs -- DIR` (default: target/docs of
#             this repository, generated there when cargo is at hand; without
#             either, they are skipped with a note).
#
# Installs:
#   $PREFIX/bin/deployd                          the daemon and CLI        0755
#   $PREFIX/share/deployd/deploy-git.sh          the git deploy script     0755
#   /etc/systemd/system/deployd.{service,socket} the units                 0644
#   /etc/deployd/deploy.toml                     from deploy.example.toml  0640 root:deployd
#                                                (only if absent: an existing config is never touched)
#   /etc/deployd, /var/lib/deployd, /var/log/deployd                       0750
#   /etc/deployd/credentials                     secrets as systemd credentials 0700 root
#   $PREFIX/share/man/man1/deployd*.1            man pages                 0644
#   $PREFIX/share/bash-completion/completions/deployd, zsh/site-functions/_deployd,
#   fish/vendor_completions.d/deployd.fish       shell completions         0644
# and creates the system user and group `deployd` when they do not exist.
#
# Safe to run again, e.g. to upgrade: the binary, the script and the units are
# replaced, the config and the user are kept. Local changes to the units belong
# in drop-ins (`systemctl edit deployd.service`), which survive this.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

log() { printf 'install: %s\n' "$*"; }
die() {
    printf 'install: error: %s\n' "$*" >&2
    exit 1
}

case ${1:-} in
-h | --help)
    usage
    exit 0
    ;;
-*)
    printf 'install: unknown option %s\n\n' "$1" >&2
    usage >&2
    exit 2
    ;;
esac
if (($# > 1)); then
    usage >&2
    exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-$repo/target/release/deployd}
destdir=${DESTDIR:-}
destdir=${destdir%/} # "/" and "" both mean the real system
prefix=${PREFIX:-/usr/local}
prefix=${prefix%/}

[[ $prefix == /* ]] || die "PREFIX must be an absolute path, got '$prefix'"
[[ -f $binary && -x $binary ]] ||
    die "no executable at $binary (build it first: cargo build --release, or pass its path)"
for f in systemd/deployd.service systemd/deployd.socket scripts/deploy-git.sh deploy.example.toml; do
    [[ -f $repo/$f ]] || die "$f is missing from $repo: run this from a complete checkout"
done

# Only a real installation creates users and sets owners; a staged one (a
# package build, a test) usually runs unprivileged and has no deployd user.
real_root=false
if [[ -z $destdir ]]; then
    real_root=true
    (($(id -u) == 0)) || die "installing to the real system needs root (or set DESTDIR to stage it)"
fi

# --- user and group ----------------------------------------------------------

if $real_root; then
    if getent group deployd >/dev/null; then
        log "group deployd exists"
    else
        groupadd --system deployd
        log "created system group deployd"
    fi
    if getent passwd deployd >/dev/null; then
        log "user deployd exists"
    else
        nologin=/usr/sbin/nologin
        [[ -x $nologin ]] || nologin=/sbin/nologin
        [[ -x $nologin ]] || nologin=/bin/false
        # Its home is the state directory: git and ssh keep their config, the
        # deploy key and known_hosts there (the unit sets HOME to it as well).
        useradd --system --gid deployd --home-dir /var/lib/deployd --no-create-home \
            --shell "$nologin" --comment "deployd webhook auto-deploy daemon" deployd
        log "created system user deployd (home /var/lib/deployd, shell $nologin)"
    fi
else
    log "DESTDIR is set: not creating the deployd user and group, not changing owners"
fi

# install(1) options setting owners, on the real system only.
own_root=() own_daemon=() root_label='' daemon_label=''
if $real_root; then
    own_root=(-o root -g deployd) root_label=' root:deployd'
    own_daemon=(-o deployd -g deployd) daemon_label=' deployd:deployd'
fi

# --- directories -------------------------------------------------------------

# /etc/deployd holds the secrets: root writes them, the daemon (group deployd)
# reads them, nobody else may even list them.
install -d -m 0750 "${own_root[@]}" "$destdir/etc/deployd"
log "directory $destdir/etc/deployd (0750$root_label)"
# Secrets as systemd credentials: the unit loads every file in it
# (LoadCredential=deployd:/etc/deployd/credentials); only root reads them.
install -d -m 0700 "$destdir/etc/deployd/credentials"
log "directory $destdir/etc/deployd/credentials (0700)"
# State and logs belong to the daemon; systemd would create them on first start
# too, but the home directory should exist before, for a deploy key.
for dir in /var/lib/deployd /var/log/deployd; do
    install -d -m 0750 "${own_daemon[@]}" "$destdir$dir"
    log "directory $destdir$dir (0750$daemon_label)"
done
install -d -m 0755 "$destdir$prefix/bin" "$destdir$prefix/share/deployd" "$destdir/etc/systemd/system"

# --- files -------------------------------------------------------------------

# install(1) unlinks the old file before writing the new one, so replacing the
# binary of a running daemon is safe; the daemon keeps running the old one
# until it is restarted.
install -m 0755 "$binary" "$destdir$prefix/bin/deployd"
log "binary $destdir$prefix/bin/deployd"
install -m 0755 "$repo/scripts/deploy-git.sh" "$destdir$prefix/share/deployd/deploy-git.sh"
log "script $destdir$prefix/share/deployd/deploy-git.sh"

# Man pages and completions, generated from the CLI's own definitions.
docs=${DOCS:-$repo/target/docs}
if [[ -z ${DOCS:-} && ! -f $docs/man/deployd.1 ]] && command -v cargo >/dev/null 2>&1; then
    (cd "$repo" && cargo run --quiet --example gen-docs -- "$docs") ||
        log "could not generate the man pages and completions (cargo run --example gen-docs)"
fi
if [[ -f $docs/man/deployd.1 ]]; then
    install -d -m 0755 "$destdir$prefix/share/man/man1" \
        "$destdir$prefix/share/bash-completion/completions" \
        "$destdir$prefix/share/zsh/site-functions" \
        "$destdir$prefix/share/fish/vendor_completions.d"
    install -m 0644 "$docs"/man/*.1 "$destdir$prefix/share/man/man1/"
    install -m 0644 "$docs/completions/deployd.bash" "$destdir$prefix/share/bash-completion/completions/deployd"
    install -m 0644 "$docs/completions/_deployd" "$destdir$prefix/share/zsh/site-functions/_deployd"
    install -m 0644 "$docs/completions/deployd.fish" "$destdir$prefix/share/fish/vendor_completions.d/deployd.fish"
    log "man pages $destdir$prefix/share/man/man1/deployd*.1; bash, zsh and fish completions"
else
    log "no man pages or completions in $docs (make them: cargo run --example gen-docs -- $docs)"
fi

# The unit names /usr/local/bin/deployd (ExecStart=, ExecReload=); follow
# PREFIX when it differs.
sed "s|^\(Exec[A-Za-z]*\)=/usr/local/bin/deployd |\1=$prefix/bin/deployd |" \
    "$repo/systemd/deployd.service" >"$destdir/etc/systemd/system/deployd.service.tmp"
chmod 0644 "$destdir/etc/systemd/system/deployd.service.tmp"
mv -f "$destdir/etc/systemd/system/deployd.service.tmp" "$destdir/etc/systemd/system/deployd.service"
install -m 0644 "$repo/systemd/deployd.socket" "$destdir/etc/systemd/system/deployd.socket"
log "units $destdir/etc/systemd/system/deployd.service, deployd.socket"

config=$destdir/etc/deployd/deploy.toml
if [[ -e $config || -L $config ]]; then
    log "config $config exists: left as it is"
    config_new=false
else
    install -m 0640 "${own_root[@]}" "$repo/deploy.example.toml" "$config"
    log "config $config (0640$root_label), from deploy.example.toml"
    config_new=true
fi

# --- systemd -----------------------------------------------------------------

# /run/systemd/system exists exactly when systemd is the running init (the
# test of sd_booted(3)); in a container or a chroot there is nothing to reload.
if $real_root && command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl daemon-reload
    log "systemd reloaded its units"
    if systemctl is-active --quiet deployd.service; then
        log "deployd is running the previous binary: systemctl restart deployd.service"
    fi
elif $real_root; then
    log "systemd is not running here: no daemon-reload"
fi

# --- next steps --------------------------------------------------------------

bin=$prefix/bin/deployd
cat <<EOF

Next steps:
EOF
if $config_new; then
    cat <<EOF
  * /etc/deployd/deploy.toml is a copy of the example config, whose demo project
    uses paths relative to the repository: it MUST be edited before first start.
EOF
fi
cat <<EOF
  1. Write a webhook secret per project, as a systemd credential only root reads
     (then secret_credential = "deployd_myapp" in the config):
       openssl rand -hex 32 | install -m 0600 /dev/stdin /etc/deployd/credentials/myapp
     or as a file the daemon's group reads (then secret_file = "/etc/deployd/myapp.secret"):
       openssl rand -hex 32 | install -m 0640 -o root -g deployd /dev/stdin /etc/deployd/myapp.secret
  2. Edit /etc/deployd/deploy.toml: each project's secret, branch,
     working_dir and script ($prefix/share/deployd/deploy-git.sh for a git
     checkout). The checkout must belong to deployd, or git calls it dubious:
       sudo -u deployd git clone <url> /srv/myapp    (or: chown -R deployd: /srv/myapp)
     Deploy targets outside /srv: add ReadWritePaths= in
       systemctl edit deployd.service
  3. Check it:
       $bin check
  4. Start it (after a later edit of the config: systemctl reload deployd):
       systemctl enable --now deployd.socket deployd.service
  5. Register the hook with the forge, e.g. for GitHub:
       gh api repos/OWNER/REPO/hooks -f name=web -F active=true -f 'events[]=push' \\
         -f 'config[url]=https://deploy.example.com/hooks/myapp' \\
         -f 'config[content_type]=json' -f "config[secret]=\$(cat /etc/deployd/myapp.secret)"
     then watch the first run: $bin status; $bin logs myapp -f
EOF
