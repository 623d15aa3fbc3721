#!/usr/bin/env bash
# Writes packaging/symbol-order.txt: the functions the release daemon runs
# from its start to idle first, then those of its everyday work (a ping, a
# deploy push, a bad signature, status, history, the status page, /metrics,
# a reload, a stop), each once: the start as gdb sees it natively (one-shot
# breakpoints on every function, in the order hit) and as valgrind's
# callgrind sees it, the work as callgrind sees it. build.rs hands the list to the linker, which lays those functions out
# first, so an idle daemon keeps ~1 MB of code resident instead of most of
# the binary (docs/performance.md, "Code layout").
#
#   scripts/symbol-order.sh           # rewrite the list
#   scripts/symbol-order.sh --check   # how much of the list this build has
#   KEEP=1 scripts/symbol-order.sh    # keep the profiles and logs
#
# Run it after a compiler upgrade or a change of dependencies (the symbol
# names carry hashes of both): with a stale list the build is still right,
# only the idle daemon's memory grows back. --check prints the share of the
# list found in target/release/deployd and fails below 90%.
# Needs valgrind, gdb (both installed with apt-get when run as root), curl
# and nm.
set -euo pipefail
cd "$(dirname "$0")/.."
LIST=packaging/symbol-order.txt
BIN=${CARGO_TARGET_DIR:-target}/release/deployd
say() { echo "symbol-order: $*" >&2; }

functions() { # the binary's defined functions, one name a line
  nm --defined-only "$1" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u
}

if [ "${1:-}" = --check ]; then
  [ -x "$BIN" ] || { say "no $BIN: cargo build --release first"; exit 2; }
  total=$(wc -l <"$LIST")
  found=$(sort -u "$LIST" | comm -12 - <(functions "$BIN") | wc -l)
  pct=$((found * 100 / total))
  say "$found of $total listed functions are in $BIN ($pct%)"
  [ "$pct" -ge 90 ] || { say "the list is stale: run scripts/symbol-order.sh"; exit 1; }
  exit 0
fi

for c in valgrind gdb curl; do
  if ! command -v "$c" >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      say "installing $c"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$c" >/dev/null
    else
      say "$c is required (sudo apt-get install $c)"; exit 1
    fi
  fi
done

say "building deployd (release)"
cargo build --release --quiet
BIN=$(realpath "$BIN")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/deployd-order.XXXXXX")
DPID=""
cleanup() {
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

port() { # a free TCP port on 127.0.0.1
  local p
  while :; do
    p=$((20000 + RANDOM % 10000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
HOOK=$(port)
WEB=$(port)
DEAD=$(port)
# Configs in tiers: the smallest everyday one, one project per forge, then
# the smallest with one feature more each, then one with most keys a config
# may hold. Functions are listed tier by tier, so a daemon using some
# features finds each feature's start in one stretch rather than spread
# among the others'.
server() {
  cat <<EOF
[server]
listen = "127.0.0.1:$HOOK"
state_dir = "$1-state"
log_dir = "$1-logs"
control_socket = "$1.sock"
EOF
}
app() {
  cat <<EOF

[projects.app]
secret = "order-secret-0a1b2c3d"
repository = "acme/app"
branch = "main"
script = "/bin/true"
max_age = "87600h"
EOF
}
WEB_TABLE="
[web]
listen = \"127.0.0.1:$WEB\"
token = \"order-web-token-0a1b\"
actions = true"
NOTIFY_TABLES="
[notify.ops]
kind = \"webhook\"
url = \"http://127.0.0.1:$DEAD/hook\"
secret = \"order-notify-secret\"
on = [\"failed\"]

[notify.chat]
kind = \"slack\"
url = \"http://127.0.0.1:$DEAD/slack\"

[notify.mail]
kind = \"command\"
command = [\"/bin/true\"]"
REPORT_TABLE="
[projects.app.report]
token = \"order-token\"
api_url = \"http://127.0.0.1:$DEAD\""
{ server small; app; } >"$WORK/small.toml"
{ server web; app; echo "$WEB_TABLE"; } >"$WORK/web.toml"
{ server notify; app; echo "$NOTIFY_TABLES"; } >"$WORK/notify.toml"
{ server report; app; echo "$REPORT_TABLE"; } >"$WORK/report.toml"
{
  server forges
  app
  for forge in gitea gitlab bitbucket; do
    cat <<EOF

[projects.$forge]
provider = "$forge"
secret = "order-secret-$forge-0a1b"
repository = "acme/$forge"
branch = "main"
script = "/bin/true"
EOF
  done
} >"$WORK/forges.toml"
{
  server all
  cat <<EOF
max_age = "87600h"
allow_from = ["127.0.0.0/8", "::1"]
trusted_proxies = ["127.0.0.1"]

[projects.app]
provider = "github"
secret = "order-secret-0a1b2c3d"
repository = "acme/app"
branches = ["main", "release/*"]
tags = ["v*"]
paths_ignore = ["docs/**", "*.txt"]
script = "/bin/true"
env = { APP_ENV = "order" }
timeout = "1m"
health_check = ["/bin/true"]
health_retries = 2
health_interval = "1s"

[projects.gated]
provider = "gitea"
secret = "order-secret-4e5f6a7b"
repository = "acme/gated"
branch = "main"
script = "/bin/true"
after_ci = ["CI"]
ci_timeout = "1h"
on_new_push = "cancel"
EOF
  echo "$REPORT_TABLE"; echo "$NOTIFY_TABLES"; echo "$WEB_TABLE"
} >"$WORK/all.toml"
TIERS=(small forges web notify report all)
chmod 600 "$WORK"/*.toml
cp benches/push-8k.json "$WORK/push.json"
echo '{"zen":"Keep it logically awesome.","hook_id":1}' >"$WORK/ping.json"
ctl() { (cd "$WORK" && "$BIN" -c all.toml "$@"); }

# One profile: start under callgrind, wait until it listens, then (full)
# the everyday work (on all.toml), then stop it. $1: a tier, or full.
profile() {
  local config=$1.toml
  [ "$1" = full ] && config=all.toml
  (cd "$WORK" && exec valgrind --tool=callgrind --demangle=no \
    --callgrind-out-file="$WORK/$1.out" "$BIN" -c "$config" serve) \
    >"$WORK/$1.log" 2>&1 &
  DPID=$!
  for _ in $(seq 300); do
    grep -q "listening on" "$WORK/$1.log" && break
    sleep 0.1
  done
  grep -q "listening on" "$WORK/$1.log" || { say "deployd did not start:"; cat "$WORK/$1.log" >&2; exit 1; }
  sleep 1
  if [ "$1" = full ]; then
    local sig hook=http://127.0.0.1:$HOOK/hooks/app
    sig=$(ctl sign app ping.json)
    curl -s -o /dev/null -H "Content-Type: application/json" -H "X-GitHub-Event: ping" -H "X-GitHub-Delivery: order-1" \
      -H "X-Hub-Signature-256: $sig" --data-binary @"$WORK/ping.json" "$hook"
    sig=$(ctl sign app push.json)
    curl -s -o /dev/null -H "Content-Type: application/json" -H "X-GitHub-Event: push" -H "X-GitHub-Delivery: order-2" \
      -H "X-Hub-Signature-256: $sig" --data-binary @"$WORK/push.json" "$hook"
    curl -s -o /dev/null -H "Content-Type: application/json" -H "X-GitHub-Event: push" -H "X-GitHub-Delivery: order-3" \
      -H "X-Hub-Signature-256: sha256=$(printf '0%.0s' $(seq 64))" \
      --data-binary @"$WORK/push.json" "$hook"
    sleep 3
    ctl status >/dev/null
    ctl history app >/dev/null
    for page in / /projects/app /projects/app/runs/1 /metrics; do
      curl -s -o /dev/null -H "Authorization: Bearer order-web-token-0a1b" \
        "http://127.0.0.1:$WEB$page"
    done
    ctl reload >/dev/null
  fi
  kill -TERM "$DPID"
  wait "$DPID" || true
  DPID=""
}

# The start once more, natively under gdb with a one-shot breakpoint on
# every function: what valgrind's emulated CPU does not show (code picked
# by CPU features, e.g. SHA instructions; the C runtime's start). Each hit
# is written down in order. $1: a tier.
native() {
  local config=$1.toml
  nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ { print $1, $3 }' |
    sort -u -k1,1 >"$WORK/functions"
  cat >"$WORK/trace.py" <<EOF
import gdb
gdb.execute("set pagination off")
gdb.execute("starti")
open("$WORK/$1.pid", "w").write(str(gdb.selected_inferior().pid))
base = None
for line in gdb.execute("info proc mappings", to_string=True).splitlines():
    if line.strip().endswith("$BIN"):
        base = int(line.split()[0], 16)
        break
hits = open("$WORK/$1.hits", "w")
class Once(gdb.Breakpoint):
    def stop(self):
        hits.write(self.name + "\n")
        hits.flush()
        self.enabled = False
        return False
for line in open("$WORK/functions"):
    address, name = line.split()
    Once("*" + hex(base + int(address, 16)), internal=True).name = name
gdb.execute("continue")
EOF
  rm -f "$WORK/$1.pid"
  (cd "$WORK" && exec gdb -q -batch -x "$WORK/trace.py" --args "$BIN" -c "$config" serve) \
    >"$WORK/$1.gdb.log" 2>&1 &
  DPID=$!
  for _ in $(seq 1200); do
    grep -q "listening on" "$WORK/$1.gdb.log" && break
    sleep 0.1
  done
  grep -q "listening on" "$WORK/$1.gdb.log" || { say "deployd did not start under gdb:"; cat "$WORK/$1.gdb.log" >&2; exit 1; }
  sleep 1
  # An interrupt stops the program in gdb, which then ends the batch and it.
  kill -INT "$(cat "$WORK/$1.pid")"
  wait "$DPID" || true
  DPID=""
}

for tier in "${TIERS[@]}"; do
  say "profiling the start and idle: $tier"
  profile "$tier"
  native "$tier"
done
say "profiling the everyday work"
profile full
# The list is only as good as the work it saw.
grep -q "POST /hooks/app 202" "$WORK/full.log" || {
  say "the deploy push was not accepted:"; grep -v '^==' "$WORK/full.log" >&2; exit 1
}

# Each name once, in the order first seen: each tier's start (natively,
# then under valgrind), then the work; only names the binary defines
# (callgrind also sees libc's).
calls() { grep -ohE '^c?fn=\([0-9]+\) [^ ]+' "$1" | sed -E 's/^c?fn=\([0-9]+\) //'; }
{
  for tier in "${TIERS[@]}"; do cat "$WORK/$tier.hits"; calls "$WORK/$tier.out"; done
  calls "$WORK/full.out"
} | awk '!seen[$0]++' |
  awk 'NR == FNR { ok[$1]; next } $0 in ok' <(functions "$BIN") - >"$WORK/list"
mv "$WORK/list" "$LIST"
say "$(wc -l <"$LIST") functions in $LIST; cargo build --release links with them"
