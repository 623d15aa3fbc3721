#!/usr/bin/env bash
# build-deb.sh — build deployd's Debian package; prints the path of the .deb.
#
#   scripts/build-deb.sh [OUT_DIR]
#
# OUT_DIR defaults to target/debian. Needs cargo (the release build and the
# man page and completion generator) and dpkg-deb; nothing else to install.
# Environment:
#   DEB_VERSION   the package version (default: Cargo.toml's version, -1)
#
# The package holds:
#   /usr/bin/deployd                        the daemon and CLI
#   /usr/share/deployd/deploy-git.sh        the git deploy script
#   /lib/systemd/system/deployd.{service,socket}
#   /etc/deployd/deploy.toml                conffile, commented, no project
#   /etc/deployd/credentials/               0700 root: the unit's LoadCredential= directory
#   /usr/lib/sysusers.d/deployd.conf        the deployd system user and group
#   man pages (deployd(1), deployd-<command>(1)), bash/zsh/fish completions, docs
# Installing starts nothing; an upgrade restarts a running daemon gracefully;
# `apt remove` stops it; `apt purge` removes its state (packaging/deb/).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/target/debian}
log() { printf 'build-deb: %s\n' "$*" >&2; }

cd "$repo"
version=${DEB_VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)-1}
arch=$(dpkg --print-architecture)

log "cargo build --release"
cargo build --release --quiet >&2
# The code layout only saves memory; a stale list is worth a line, not a stop.
scripts/symbol-order.sh --check || log "(the package is right; only its idle memory grows)"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
log "generating man pages and completions"
cargo run --quiet --example gen-docs -- "$stage/gen" >&2

root=$stage/root
d() { install -d -m 0755 "$root/$1"; }
for dir in DEBIAN usr/bin usr/share/deployd lib/systemd/system etc/deployd \
    usr/lib/sysusers.d usr/share/man/man1 usr/share/doc/deployd/examples \
    usr/share/bash-completion/completions usr/share/zsh/vendor-completions \
    usr/share/fish/vendor_completions.d usr/share/lintian/overrides; do
    d "$dir"
done

install -m 0755 target/release/deployd "$root/usr/bin/deployd"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/deployd"
install -m 0755 scripts/deploy-git.sh "$root/usr/share/deployd/deploy-git.sh"
# The units name /usr/local/bin/deployd, where install.sh puts it.
sed "s|^\(Exec[A-Za-z]*\)=/usr/local/bin/deployd |\1=/usr/bin/deployd |" \
    systemd/deployd.service >"$root/lib/systemd/system/deployd.service"
install -m 0644 systemd/deployd.socket "$root/lib/systemd/system/deployd.socket"
chmod 0644 "$root/lib/systemd/system/deployd.service"
if grep -q /usr/local "$root/lib/systemd/system/deployd.service"; then
    log "error: deployd.service still names /usr/local"
    exit 1
fi
install -m 0640 packaging/deb/deploy.toml "$root/etc/deployd/deploy.toml"
install -d -m 0700 "$root/etc/deployd/credentials"
install -m 0644 packaging/deb/sysusers.conf "$root/usr/lib/sysusers.d/deployd.conf"
for f in "$stage"/gen/man/*.1; do
    page=$(basename "$f")
    gzip -9n <"$f" >"$root/usr/share/man/man1/$page.gz"
done
install -m 0644 "$stage/gen/completions/deployd.bash" "$root/usr/share/bash-completion/completions/deployd"
install -m 0644 "$stage/gen/completions/_deployd" "$root/usr/share/zsh/vendor-completions/_deployd"
install -m 0644 "$stage/gen/completions/deployd.fish" "$root/usr/share/fish/vendor_completions.d/deployd.fish"
gzip -9n <README.md >"$root/usr/share/doc/deployd/README.md.gz"
# The guide the README links to, beside it as the links expect.
install -d -m 0755 "$root/usr/share/doc/deployd/docs"
for page in docs/*.md; do
    name=${page#docs/}
    gzip -9n <"$page" >"$root/usr/share/doc/deployd/docs/$name.gz"
done
install -m 0644 deploy.example.toml "$root/usr/share/doc/deployd/examples/deploy.example.toml"
install -m 0644 packaging/deb/copyright "$root/usr/share/doc/deployd/copyright"
install -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/deployd"
date=$(git log -1 --format=%aD 2>/dev/null || date -R)
gzip -9n >"$root/usr/share/doc/deployd/changelog.Debian.gz" <<EOF
deployd ($version) unstable; urgency=medium

  * Built from $(git describe --always --dirty 2>/dev/null || echo "a source tree") by scripts/build-deb.sh.

 -- deployd maintainers <maintainers@users.noreply.github.com>  $date
EOF
chmod 0644 "$root/usr/share/doc/deployd/changelog.Debian.gz" "$root"/usr/share/man/man1/*.gz \
    "$root/usr/share/doc/deployd/README.md.gz" "$root"/usr/share/doc/deployd/docs/*.md.gz

# The binary links libc and libgcc_s: require the newest symbol versions it uses.
glibc=$(objdump -T "$root/usr/bin/deployd" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1)
# systemd: the units and systemd-sysusers (deb-systemd-invoke comes with
# init-system-helpers, which is essential).
depends="libc6 (>= $glibc), libgcc-s1, systemd"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: deployd
Version: $version
Architecture: $arch
Maintainer: deployd maintainers <maintainers@users.noreply.github.com>
Installed-Size: $size
Depends: $depends
Recommends: git
Section: admin
Priority: optional
Description: webhook auto-deploy daemon for git pushes
 deployd verifies the webhooks of GitHub, Gitea/Forgejo, GitLab and
 Bitbucket, queues each push durably, and runs the project's deploy script
 one run at a time under a lock, keeping every line of its output. It comes
 with systemd units (socket activation, hardening), a git checkout deploy
 script, and a CLI for status, history, logs and manual deploys.
EOF
echo /etc/deployd/deploy.toml >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control" "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
    install -m 0755 "packaging/deb/$s" "$root/DEBIAN/$s"
done

mkdir -p "$out"
deb=$out/deployd_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
