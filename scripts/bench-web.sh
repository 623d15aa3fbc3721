#!/usr/bin/env bash
# Benchmark of the status page ([web]), run by hand or at the end of
# scripts/bench.sh: idle RSS of a daemon with [web] configured (one project,
# before and after pages are served), and the time to answer the overview,
# a project page and /metrics with 100 projects of 100 runs each (curl's
# time_total over loopback, best and median of ROUNDS; the overview's
# first, cold look on its own), and the time to answer a hook (a bad
# signature, 401; HOOKS of them) alone and while the overview is asked for
# ten times a second. Prints markdown.
#
#   scripts/bench-web.sh                       # builds the release binary
#   DEPLOYD=target/release/deployd ROUNDS=50 scripts/bench-web.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-30}
HOOKS=${HOOKS:-100}
PROJECTS=${PROJECTS:-100}
RUNS=${RUNS:-100}
TOKEN=bench-web-token-7c1e
say() { echo "bench-web: $*" >&2; }
command -v curl >/dev/null || { say "curl is required"; exit 1; }
if [ -z "${DEPLOYD:-}" ]; then
  say "building deployd (release)"
  cargo build --release --quiet
  DEPLOYD=${CARGO_TARGET_DIR:-target}/release/deployd
fi
DEPLOYD=$(realpath "$DEPLOYD")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/deployd-bench-web.XXXXXX")
PID=
LOAD=
cleanup() {
  if [ -n "$LOAD" ]; then kill "$LOAD" 2>/dev/null || true; wait "$LOAD" 2>/dev/null || true; fi
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
printf '#!/bin/sh\necho deployed\n' >"$WORK/deploy.sh"
chmod +x "$WORK/deploy.sh"

# A config with [web] and N projects under $1.
config() {
  local dir=$1 n=$2 i
  mkdir -p "$dir"
  {
    printf '[server]\nlisten = "127.0.0.1:0"\nstate_dir = "state"\nlog_dir = "logs"\ncontrol_socket = "control.sock"\n'
    printf '[web]\nlisten = "127.0.0.1:0"\ntoken = "%s"\n' "$TOKEN"
    for i in $(seq 0 $((n - 1))); do
      printf '[projects.p%03d]\nsecret = "bench-web-secret-0123456789"\nscript = "%s"\n' "$i" "$WORK/deploy.sh"
    done
  } >"$dir/deploy.toml"
  chmod 600 "$dir/deploy.toml"
}

# Starts the daemon on $1/deploy.toml; sets PID and WEB (the page's address).
start() {
  local dir=$1
  "$DEPLOYD" serve -c "$dir/deploy.toml" 2>"$dir/err" &
  PID=$!
  for _ in $(seq 200); do
    WEB=$(sed -n 's/.*status page on \(http:[^ ]*\).*/\1/p' "$dir/err")
    HOOK=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$dir/err")
    [ -n "$WEB" ] && grep -q "listening on" "$dir/err" && return 0
    sleep 0.05
  done
  say "deployd did not start:"; cat "$dir/err" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

# --- idle ---------------------------------------------------------------------
config "$WORK/idle" 1
start "$WORK/idle"
sleep 1
IDLE=$(rss_kb "$PID")
for path in / /projects/p000 /metrics; do
  curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "$WEB$path"
done
sleep 1
IDLE_AFTER=$(rss_kb "$PID")
stop

# --- 100 x 100 ----------------------------------------------------------------
say "writing $PROJECTS projects x $RUNS run records"
config "$WORK/many" "$PROJECTS"
for i in $(seq 0 $((PROJECTS - 1))); do
  p=$(printf 'p%03d' "$i")
  mkdir -p "$WORK/many/state/runs/$p" "$WORK/many/logs/$p"
  for id in $(seq 1 "$RUNS"); do
    if [ $((id % 7)) -eq 0 ]; then st=failed; else st=succeeded; fi
    printf '{"id":%d,"project":"%s","trigger":"webhook","ref":"refs/heads/main","sha":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","before":"","repository":"acme/%s","pusher":"octocat","delivery":"d-%s-%d","status":"%s","exit_code":0,"signal":null,"started_at":"2026-01-01T00:00:00.000Z","finished_at":"2026-01-01T00:00:%02d.000Z","log":"%s","request_seq":%d,"received_at":"2026-01-01T00:00:00.000Z","pid":null}\n' \
      "$id" "$p" "$p" "$p" "$id" "$st" $((id % 60)) "$WORK/many/logs/$p/$id.log" "$id" \
      >"$WORK/many/state/runs/$p/$id.json"
  done
done
start "$WORK/many"
# time_total in ms of ROUNDS requests: "best median".
timing() {
  local path=$1 i
  for i in $(seq "$ROUNDS"); do
    curl -fsS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$WEB$path"
  done | sort -n | awk '{ v[NR] = $1 * 1000 } END { printf "%.1f %.1f\n", v[1], v[int((NR + 1) / 2)] }'
}
# The first look reads every project's newest records from disk.
OV_COLD=$(curl -fsS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $TOKEN" "$WEB/" |
  awk '{ printf "%.1f", $1 * 1000 }')
# Records changed less than 2 s before a look are read again at each look
# (their times cannot yet tell the next change); those just written here
# settle first, as a running daemon's older records have.
sleep 2
read -r OV_BEST OV_MED < <(timing /)
read -r PR_BEST PR_MED < <(timing /projects/p050)
read -r ME_BEST ME_MED < <(timing /metrics)
OV_BYTES=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$WEB/" | wc -c)
MANY_RSS=$(rss_kb "$PID")
# A hook answered (bad signature: 401, no disk) HOOKS times: "median p99"
# in ms, alone, then while a loop asks for the overview every 100 ms (more
# than a few browsers following it would).
hook() {
  local i
  for i in $(seq "$HOOKS"); do
    curl -sS -o /dev/null -w '%{time_total}\n' -X POST -H "X-GitHub-Event: push" \
      -H "X-GitHub-Delivery: bench-web-$i" -H "X-Hub-Signature-256: sha256=00" \
      -H "Content-Type: application/json" --data '{}' "$HOOK/hooks/p000"
  done | sort -n | awk '{ v[NR] = $1 * 1000 } END { printf "%.1f %.1f\n", v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.5)] }'
}
read -r HK_MED HK_MAX < <(hook)
( end=$((SECONDS + 120)); while [ $SECONDS -lt $end ]; do
    curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" "$WEB/" || break
    sleep 0.1
  done ) &
LOAD=$!
sleep 0.5
read -r HL_MED HL_MAX < <(hook)
kill "$LOAD" 2>/dev/null || true; wait "$LOAD" 2>/dev/null || true; LOAD=
stop

check() { if awk "BEGIN { exit !($1) }"; then echo "✅"; else echo "❌"; fi; }
echo
echo "### Status page ([web])"
echo
echo "| | value |"
echo "| --- | --- |"
echo "| idle RSS with [web], 1 project (VmRSS after start) | $(mib "$IDLE") |"
echo "| the same after serving /, a project page and /metrics | $(mib "$IDLE_AFTER") |"
echo "| overview of $PROJECTS projects × $RUNS runs ($((OV_BYTES / 1024)) KiB of HTML): first look after start | $OV_COLD ms |"
echo "| the same, then: best, median | $OV_BEST ms, $OV_MED ms |"
echo "| project page ($RUNS runs, plot of 100): best, median | $PR_BEST ms, $PR_MED ms |"
echo "| /metrics: best, median | $ME_BEST ms, $ME_MED ms |"
echo "| RSS after those requests | $(mib "$MANY_RSS") |"
echo "| a hook answered (401), $HOOKS times: median, p99 | $HK_MED ms, $HK_MAX ms |"
echo "| the same while the overview is asked for ten times a second | $HL_MED ms, $HL_MAX ms |"
echo
echo "- overview of $PROJECTS × $RUNS ≤ 50 ms (median): $OV_MED ms $(check "$OV_MED <= 50")"
echo "- idle RSS with [web] ≤ 4 MiB: $(mib "$IDLE") $(check "$IDLE <= 4096")"
