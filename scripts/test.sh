#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the shell-level
# checks of the shipped scripts and units. Prints "N passed, M failed" last.
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
passed=0
step() {
  local name=$1; shift
  echo "== $name"
  if "$@"; then passed=$((passed + 1)); else echo "!! $name failed"; failed=$((failed + 1)); fi
}

step "cargo test" cargo test --all-targets --quiet
step "shellcheck" shellcheck scripts/*.sh
step "systemd units" scripts/check-units.sh
step "install.sh" scripts/test-install.sh

echo "test steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
