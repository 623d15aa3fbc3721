#!/usr/bin/env bash
# The status page in headless Chromium: Debian's chromium driven by
# playwright-core from npm (no browser download). Logs in, opens the
# overview, deploys from the page, follows a run's log live until it ends,
# checks its lines arrive in order, and saves screenshots in light and dark
# mode under target/browser/ (OUT=dir to choose). Installs chromium, npm and
# the locked playwright-core when missing and it may (root, or sudo without
# a password).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
    echo "test-browser: missing ${need[*]} (apt-get install ${need[*]})" >&2; exit 1
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  # The version in package-lock.json, nothing else; no browser download.
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
cargo build --quiet
OUT=${OUT:-$PWD/target/browser}
DEPLOYD=$PWD/target/debug/deployd OUT=$OUT CHROMIUM=$(command -v chromium) \
  timeout 180 node tests/browser/status-page.js
