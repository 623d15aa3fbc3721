#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, the checks of the
# shipped scripts and units, the docs' examples (scripts/check-docs.sh), the
# status page in a real browser, and the
# Debian package under a real systemd (scripts/test-system.sh, as root). Installs the Debian packages the checks need
# (git, curl, systemd-analyze, shellcheck, python3-prometheus-client) when
# missing and it may
# (root, or sudo without a password). Prints "steps: N passed, M failed"
# last and exits non-zero if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

need=()
command -v git >/dev/null || need+=(git)
command -v curl >/dev/null || need+=(curl)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v shellcheck >/dev/null || need+=(shellcheck)
# tests/integration/web.rs reads /metrics with the Python client's OpenMetrics parser.
/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || need+=(python3-prometheus-client)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else sudo=(none); fi
  if [ "${sudo[0]:-}" = none ]; then
    echo "missing: ${need[*]} (install them: apt-get install ${need[*]}); their steps will fail"
  else
    echo "installing: ${need[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
fi

failed=0
passed=0
step() {
  local name=$1; shift
  echo "== $name"
  if "$@"; then passed=$((passed + 1)); else echo "!! $name failed"; failed=$((failed + 1)); fi
}

# cargo test, with its per-binary results added up into one line.
cargo_tests() {
  local out status
  out=$(mktemp)
  cargo test --all-targets --quiet 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
       END { printf "cargo: %d passed, %d failed\n", p, f }' "$out"
  rm -f "$out"
  return "$status"
}

step "cargo test" cargo_tests
step "shellcheck" shellcheck scripts/*.sh .ci/run packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm
step "systemd units" scripts/check-units.sh
step "install.sh" scripts/test-install.sh
# The README's and docs/'s examples: configs, links, the demo's shell lines.
step "docs" scripts/check-docs.sh
step "browser" scripts/test-browser.sh
# The Debian package under a real systemd: boots a Debian container, so it
# needs root (it says so and fails without it).
step "system" scripts/test-system.sh

echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
