#!/usr/bin/env bash
# check-units.sh — lint the shipped systemd units without installing them.
#
#   scripts/check-units.sh [MAX_EXPOSURE]      (default 2.0)
#
# 1. `systemd-analyze verify` of systemd/deployd.service and deployd.socket.
# 2. `systemd-analyze security --offline=true` of the service: the overall
#    exposure must be MAX_EXPOSURE or below.
#
# Exits 0 when both pass, 1 when either fails, 2 when systemd-analyze (systemd
# 252 or newer, for --offline) is missing. Touches nothing outside a temporary
# directory: no root needed, no daemon-reload, nothing installed.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit 0
fi
max=${1:-2.0}
if [[ ! $max =~ ^[0-9]+(\.[0-9])?$ ]]; then
    echo "check-units: MAX_EXPOSURE must look like 2.0, got '$max'" >&2
    exit 2
fi

# Reports of the tools are indented under check-units' own lines.
indent() { sed 's/^/  /'; }

root=$(cd "$(dirname "$0")/.." && pwd)
units=$root/systemd

if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "check-units: systemd-analyze not found (install systemd, version 252 or newer)" >&2
    exit 2
fi
version=$(systemd-analyze --version | head -n 1)
echo "check-units: $version"
# --offline (security of a unit file that is not loaded) came in systemd 252.
read -r _ number _ <<<"$version"
if [[ ! ${number%%[!0-9]*} =~ ^[0-9]+$ ]] || ((${number%%[!0-9]*} < 252)); then
    echo "check-units: systemd 252 or newer is needed for 'security --offline'" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# verify refuses a unit whose ExecStart binary does not exist, and the real
# /usr/local/bin/deployd is not installed where this runs (CI, a dev machine).
# So the units are checked as copies whose ExecStart= and ExecReload= point
# at a stub; nothing else in them changes, and the names stay the same so that
# the socket still finds its service. (`--root=` would need a whole systemd tree in the root.)
mkdir "$tmp/bin" "$tmp/units"
printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/deployd"
chmod 0755 "$tmp/bin/deployd"
sed "s|^\(Exec[A-Za-z]*\)=/usr/local/bin/deployd |\1=$tmp/bin/deployd |" \
    "$units/deployd.service" >"$tmp/units/deployd.service"
cp "$units/deployd.socket" "$tmp/units/deployd.socket"
if ! grep -q "^ExecStart=$tmp/bin/deployd " "$tmp/units/deployd.service"; then
    echo "check-units: FAIL: deployd.service has no 'ExecStart=/usr/local/bin/deployd ...' line to check" >&2
    exit 1
fi

failed=0

# --- verify ------------------------------------------------------------------
# verify exits 0 on warnings (an unknown key, a value it ignores), so any line
# that names one of our units fails the check too. Lines about the host's own
# units are shown but not held against ours, and neither are errors in our
# dependencies (--recursive-errors=no): they are the machine's, not ours.
status=0
out=$(systemd-analyze verify --man=no --recursive-errors=no \
    "$tmp/units/deployd.service" "$tmp/units/deployd.socket" 2>&1) || status=$?
ours=$(grep -E 'deployd\.(service|socket)' <<<"$out" || true)
if [[ -n $out ]]; then
    indent <<<"$out"
fi
if ((status != 0)) || [[ -n $ours ]]; then
    echo "check-units: FAIL: systemd-analyze verify (exit status $status)"
    failed=1
else
    echo "check-units: ok: systemd-analyze verify"
fi

# --- security ----------------------------------------------------------------
# systemd's own --threshold counts tenths (2.0 is 20) and is compared here as
# well, but the figure is also read back from the report and compared, so the
# check holds whatever a future systemd does with --threshold.
threshold=$(awk -v m="$max" 'BEGIN { printf "%d", m * 10 + 0.5 }')
status=0
out=$(systemd-analyze security --offline=true --threshold="$threshold" --no-pager \
    "$tmp/units/deployd.service" 2>&1) || status=$?
# The items that still count against the unit, then the overall figure.
grep -E '^(✗|  NAME)' <<<"$out" | indent || true
exposure=$(sed -n 's/.*Overall exposure level for deployd\.service: \([0-9.]*\).*/\1/p' <<<"$out")
if [[ -z $exposure ]]; then
    indent <<<"$out"
    echo "check-units: FAIL: systemd-analyze security printed no exposure level (exit status $status)"
    failed=1
elif ((status != 0)) || ! awk -v e="$exposure" -v m="$max" 'BEGIN { exit !(e <= m) }'; then
    echo "check-units: FAIL: exposure $exposure, allowed at most $max (exit status $status)"
    failed=1
else
    echo "check-units: ok: exposure $exposure (at most $max)"
fi

if ((failed)); then
    echo "check-units: FAILED"
    exit 1
fi
echo "check-units: all passed"
