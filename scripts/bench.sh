#!/usr/bin/env bash
# Benchmark of the webhook listener, run by hand (not in CI): deployd against
# adnanh/webhook (Debian `webhook`, the usual small hook receiver) and nginx
# answering `return 204` (the HTTP ceiling of the machine), all driven by wrk
# with the same signed 8 KB GitHub push (benches/push-8k.json) over loopback.
# Prints a markdown table (stdout; progress on stderr).
#
#   scripts/bench.sh                       # 3 rounds of 10 s per path
#   ROUNDS=5 DURATION=20s scripts/bench.sh
#   STATIC=1 scripts/bench.sh              # deployd linked statically (glibc)
#   DEPLOYD=path/to/deployd scripts/bench.sh   # no build
#
# Paths: a push to an ignored branch (verify, parse, filter: 200), a bad
# signature (401), deploy pushes (202 once the request is fsynced, coalesced
# behind a deploy that runs through all rounds); then a burst of BURST
# distinct deploy pushes during a running deploy, counting the runs it
# caused. Memory from /proc/PID/status: VmRSS once started (idle, with a
# notification target and a commit-status report configured), VmHWM
# after the load. CPU per request from /proc/PID/stat around each wrk run.
# Last, a deploy printing BIGLOG_MB MiB (default 200) followed by two slow
# readers at once (`deployd deploy` through the daemon and `deployd logs
# -f`): peak RSS (VmHWM) of the daemon, reset before, and of each command.
# Rounds interleave the servers, so a noisy neighbour hits all of them.
#
# As root it installs what is missing with apt-get; otherwise it says what to
# install. A peer that cannot be had is left out with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
BURST=${BURST:-1000}
BURST_PARALLEL=${BURST_PARALLEL:-32}
BIGLOG_MB=${BIGLOG_MB:-200}
SECRET=bench-secret-5d1f0c
HERE=$PWD

say() { echo "bench: $*" >&2; }

# --- tools --------------------------------------------------------------------
declare -A PKG=([wrk]=wrk [curl]=curl [webhook]=webhook [nginx]=nginx-light)
missing=()
for c in wrk curl webhook nginx; do
  command -v "$c" >/dev/null || missing+=("${PKG[$c]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    apt-get update -qq || true
    for p in "${missing[@]}"; do
      # One at a time: a peer that is not packaged here must not stop the rest.
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" \
        >/dev/null || say "could not install $p"
    done
  else
    say "missing: ${missing[*]} (sudo apt-get install ${missing[*]})"
  fi
fi
for c in wrk curl; do
  command -v "$c" >/dev/null || { say "$c is required"; exit 1; }
done
have_webhook=false; command -v webhook >/dev/null && have_webhook=true
have_nginx=false; command -v nginx >/dev/null && have_nginx=true
$have_webhook || say "adnanh/webhook is not installed: its column stays empty"
$have_nginx || say "nginx is not installed: the HTTP-ceiling column stays empty"

if [ -z "${DEPLOYD:-}" ]; then
  if [ -n "${STATIC:-}" ]; then
    # glibc linked in: no libc.so/ld.so pages (1.4 MB resident in any
    # dynamically linked program). crt-static needs an explicit --target.
    host=$(rustc -vV | sed -n 's/^host: //p')
    say "building deployd (release, static, $host)"
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
      cargo build --release --quiet --target "$host"
    DEPLOYD=${CARGO_TARGET_DIR:-target}/$host/release/deployd
  else
    say "building deployd (release)"
    cargo build --release --quiet
    DEPLOYD=${CARGO_TARGET_DIR:-target}/release/deployd
  fi
fi
DEPLOYD=$(realpath "$DEPLOYD")
LINKED=$( (file -L "$DEPLOYD" 2>/dev/null || echo unknown) |
  awk '/static(-pie)? linked/ { print "static"; next } /dynamically/ { print "dynamic"; next } { print "linking unknown" }')

# --- setup --------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/deployd-bench.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# A TCP port nothing listens on (webhook and nginx need one up front),
# below the ephemeral range, where wrk's own connections come from.
free_port() {
  local p low
  low=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  while :; do
    p=$((10000 + RANDOM % (low - 10000)))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# Waits (at most 10 s) until URL answers anything.
wait_http() {
  for _ in $(seq 100); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    sleep 0.1
  done
  say "nothing answers on $1"; return 1
}

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# utime + stime of a process (its threads included), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
mib() { awk -v kb="$1" 'BEGIN { printf "%.1f MiB", kb / 1024 }'; }

BODY=$WORK/push.json
IGNORED=$WORK/push-ignored.json
# Pushed now: a push older than max_age (72h) is answered "stale delivery"
# before it is parsed, which is not the path to measure. Same length.
sed "s/\"pushed_at\":[0-9]\{10\}/\"pushed_at\":$(date +%s)/" benches/push-8k.json >"$BODY"
grep -q "\"pushed_at\":$(date +%s | cut -c1-6)" "$BODY" || { say "the fixture has no pushed_at to renew"; exit 1; }
# Same size, same signature cost: only the branch differs.
sed 's#"ref":"refs/heads/main"#"ref":"refs/heads/feat"#' "$BODY" >"$IGNORED"
cmp -s "$BODY" "$IGNORED" && { say "the fixture has no refs/heads/main ref"; exit 1; }

GATE=$WORK/gate
cat >"$WORK/deploy.sh" <<'EOF'
#!/bin/sh
# A deploy that lasts while the gate file exists (at most 10 minutes).
i=0
while [ -e "$GATE" ] && [ "$i" -lt 12000 ]; do sleep 0.05; i=$((i + 1)); done
EOF
chmod +x "$WORK/deploy.sh"
cat >"$WORK/biglog.sh" <<EOF
#!/bin/sh
yes 'a line of deploy output, long enough to look like a real one' | head -c $((BIGLOG_MB << 20))
EOF
chmod +x "$WORK/biglog.sh"

mkdir -p "$WORK/deployd"
CONFIG=$WORK/deployd/deploy.toml
cat >"$CONFIG" <<EOF
[server]
listen = "127.0.0.1:0"
state_dir = "state"
log_dir = "logs"
control_socket = "control.sock"

[projects.app]
secret = "$SECRET"
repository = "acme/app"
branch = "main"
script = "$WORK/deploy.sh"
env = { GATE = "$GATE" }
keep_runs = 1000

[projects.biglog]
secret = "$SECRET"
script = "$WORK/biglog.sh"
EOF
# Never pushed to: there for the idle figure, which counts with a
# notification target and a commit-status report configured (when the
# deployd measured has them: an older one is measured without).
if "$DEPLOYD" help 2>/dev/null | grep -q notify-test; then
  cat >>"$CONFIG" <<EOF

[projects.quiet]
secret = "$SECRET"
script = "$WORK/deploy.sh"

[projects.quiet.report]
token = "bench-token"
api_url = "http://127.0.0.1:9"

[notify.ops]
kind = "webhook"
url = "http://127.0.0.1:9/deployd"
projects = ["quiet"]
EOF
fi
chmod 600 "$CONFIG"
ctl() { "$DEPLOYD" -c "$CONFIG" "$@"; }
SIG=$(ctl sign app "$BODY")
SIG_IGNORED=$(ctl sign app "$IGNORED")
# Well-formed, wrong: the last hex digit changed.
SIG_BAD=${SIG_IGNORED%?}$([ "${SIG_IGNORED: -1}" = 0 ] && echo 1 || echo 0)

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "starting deployd ($LINKED)"
# Logs at the default level (a line per request), as in production.
"$DEPLOYD" serve -c "$CONFIG" 2>"$WORK/deployd.log" &
DEPLOYD_PID=$!
PIDS+=("$DEPLOYD_PID")
addr=""
for _ in $(seq 100); do
  addr=$(sed -n 's#.*listening on http://\([^ ]*\).*#\1#p' "$WORK/deployd.log")
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { say "deployd did not start:"; cat "$WORK/deployd.log" >&2; exit 1; }
URL_DEPLOYD=http://$addr/hooks/app

if $have_webhook; then
  WH_PORT=$(free_port)
  # The hook as webhook's documentation sets up a GitHub push: the HMAC of
  # the body in X-Hub-Signature-256, then the ref. Its command records the
  # delivery it runs for, so the runs of a burst can be counted.
  cat >"$WORK/webhook-deploy.sh" <<EOF
#!/bin/sh
echo "\$1" >>"$WORK/webhook-runs"
EOF
  chmod +x "$WORK/webhook-deploy.sh"
  cat >"$WORK/hooks.json" <<EOF
[
  {
    "id": "app",
    "execute-command": "$WORK/webhook-deploy.sh",
    "command-working-directory": "$WORK",
    "pass-arguments-to-command": [{ "source": "header", "name": "X-GitHub-Delivery" }],
    "trigger-rule": {
      "and": [
        { "match": { "type": "payload-hmac-sha256", "secret": "$SECRET",
                     "parameter": { "source": "header", "name": "X-Hub-Signature-256" } } },
        { "match": { "type": "value", "value": "refs/heads/main",
                     "parameter": { "source": "payload", "name": "ref" } } }
      ]
    }
  }
]
EOF
  say "starting webhook"
  # Its defaults, as the Debian service runs it: no -verbose, so no log lines.
  webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port "$WH_PORT" -nopanic \
    >"$WORK/webhook.log" 2>&1 &
  WEBHOOK_PID=$!
  PIDS+=("$WEBHOOK_PID")
  URL_WEBHOOK=http://127.0.0.1:$WH_PORT/hooks/app
  wait_http "http://127.0.0.1:$WH_PORT/" || { cat "$WORK/webhook.log" >&2; have_webhook=false; }
fi

if $have_nginx; then
  NG_PORT=$(free_port)
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
error_log $WORK/nginx/error.log warn;
pid $WORK/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx;
  proxy_temp_path $WORK/nginx;
  fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx;
  scgi_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$NG_PORT;
    location / { return 204; }
  }
}
EOF
  say "starting nginx"
  nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' 2>>"$WORK/nginx/error.log" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
  URL_NGINX=http://127.0.0.1:$NG_PORT/hooks/app
  wait_http "$URL_NGINX" || { cat "$WORK/nginx/error.log" >&2; have_nginx=false; }
fi

# Memory and CPU at rest, once everything has settled.
sleep 2
IDLE_DEPLOYD=$(status_kb "$DEPLOYD_PID" VmRSS)
c0=$(cpu_ticks "$DEPLOYD_PID")
if $have_webhook; then
  IDLE_WEBHOOK=$(status_kb "$WEBHOOK_PID" VmRSS)
  w0=$(cpu_ticks "$WEBHOOK_PID")
fi
sleep 10
IDLE_CPU_DEPLOYD=$(( ($(cpu_ticks "$DEPLOYD_PID") - c0) * TICK_US / 1000 ))
$have_webhook && IDLE_CPU_WEBHOOK=$(( ($(cpu_ticks "$WEBHOOK_PID") - w0) * TICK_US / 1000 ))

# --- load ---------------------------------------------------------------------
RESULTS=$WORK/results
: >"$RESULTS"
run=0
# load SERVER PID PATH URL BODY SIGNATURE: one wrk run, a line in $RESULTS.
load() {
  local server=$1 pid=$2 path=$3 url=$4 body=$5 sig=$6 out t0 cpu
  run=$((run + 1))
  t0=$(cpu_ticks "$pid")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -s "$HERE/scripts/bench/push.lua" "$url" -- "$body" "$sig" "r$run-$RANDOM" |
    grep '^BENCH ') || { say "wrk failed on $server $path"; return 1; }
  cpu=$(( ($(cpu_ticks "$pid") - t0) * TICK_US ))
  out="${out#BENCH } cpu_us=$cpu"
  echo "$server $path $out" >>"$RESULTS"
  say "$server $path: $out"
}

# Waits (at most 60 s) until webhook has run no command for a second: it
# answers first and starts them after, so none running yet is not enough.
webhook_settle() {
  local quiet=0
  for _ in $(seq 600); do
    if pgrep -P "$WEBHOOK_PID" >/dev/null; then quiet=0; else quiet=$((quiet + 1)); fi
    [ "$quiet" -ge 10 ] && return 0
    sleep 0.1
  done
}

say "warming up"
DURATION=2s load deployd "$DEPLOYD_PID" warmup "$URL_DEPLOYD" "$IGNORED" "$SIG_IGNORED"
if $have_webhook; then
  DURATION=2s load webhook "$WEBHOOK_PID" warmup "$URL_WEBHOOK" "$IGNORED" "$SIG_IGNORED"
fi
if $have_nginx; then
  DURATION=2s load nginx "$NGINX_PID" warmup "$URL_NGINX" "$IGNORED" "$SIG_IGNORED"
fi

# A deploy runs (held on the gate) through all rounds: deploy pushes are
# recorded and coalesced behind it, as during a real deploy.
touch "$GATE"
for r in $(seq "$ROUNDS"); do
  say "round $r of $ROUNDS"
  load deployd "$DEPLOYD_PID" ignored "$URL_DEPLOYD" "$IGNORED" "$SIG_IGNORED"
  $have_webhook && load webhook "$WEBHOOK_PID" ignored "$URL_WEBHOOK" "$IGNORED" "$SIG_IGNORED"
  $have_nginx && load nginx "$NGINX_PID" ignored "$URL_NGINX" "$IGNORED" "$SIG_IGNORED"
  load deployd "$DEPLOYD_PID" badsig "$URL_DEPLOYD" "$IGNORED" "$SIG_BAD"
  $have_webhook && load webhook "$WEBHOOK_PID" badsig "$URL_WEBHOOK" "$IGNORED" "$SIG_BAD"
  load deployd "$DEPLOYD_PID" deploy "$URL_DEPLOYD" "$BODY" "$SIG"
  if $have_webhook; then
    load webhook "$WEBHOOK_PID" deploy "$URL_WEBHOOK" "$BODY" "$SIG"
    # It answered before running them: let its commands finish first.
    webhook_settle
  fi
done
LOADED_DEPLOYD=$(status_kb "$DEPLOYD_PID" VmHWM)
$have_webhook && LOADED_WEBHOOK=$(status_kb "$WEBHOOK_PID" VmHWM)

# Waits (at most 60 s) until deployd runs and queues nothing.
wait_idle() { # until app runs nothing and has nothing pending
  local s
  for _ in $(seq 600); do
    s=$(ctl status)
    grep -q '^app: idle$' <<<"$s" && ! grep -q '^  pending:' <<<"$s" && return 0
    sleep 0.1
  done
  say "deployd did not go idle"; return 1
}
runs() { ctl history app --json -n 100000 | grep -c '^    "id": ' || true; }
rm -f "$GATE"
wait_idle

# --- burst --------------------------------------------------------------------
# One push starts a deploy (held on the gate); BURST distinct pushes arrive
# while it runs. Coalescing promises exactly one more run for all of them.
# Distinct pushes (each its own commit, each signed): the same body under
# new delivery ids would be answered "duplicate" (a replay), not queued.
mkdir -p "$WORK/burst"
say "signing $BURST distinct pushes"
for i in $(seq "$BURST"); do
  sha=$(printf '%040x' "$((0x5eed0000 + i))")
  sed "s/\"after\":\"[0-9a-f]*\"/\"after\":\"$sha\"/" "$BODY" >"$WORK/burst/$i.json"
  ctl sign app "$WORK/burst/$i.json" >"$WORK/burst/$i.sig"
done
burst_one() { # URL TAG I
  curl -s -o /dev/null -w '%{http_code}\n' \
    -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
    -H "X-GitHub-Delivery: $2-$3" -H "X-Hub-Signature-256: $(cat "$WORK/burst/$3.sig")" \
    --data-binary "@$WORK/burst/$3.json" "$1"
}
export -f burst_one
export WORK
burst() { # URL TAG → how many were answered 2xx
  seq "$BURST" | xargs -P "$BURST_PARALLEL" -I{} bash -c 'burst_one "$@"' _ "$1" "$2" {} |
    grep -c '^2' || true
}
say "burst of $BURST deploy pushes during a deploy"
before=$(runs)
touch "$GATE"
sed "s/\"after\":\"[0-9a-f]*\"/\"after\":\"$(printf '%040x' 0x5eedffff)\"/" "$BODY" >"$WORK/burst/first.json"
curl -s -o /dev/null -H 'Content-Type: application/json' -H 'X-GitHub-Event: push' \
  -H "X-GitHub-Delivery: burst-first-$RANDOM" \
  -H "X-Hub-Signature-256: $(ctl sign app "$WORK/burst/first.json")" \
  --data-binary "@$WORK/burst/first.json" "$URL_DEPLOYD"
for _ in $(seq 100); do
  ctl status --json | grep -q '"state": "running"' && break
  sleep 0.1
done
t0=$(date +%s%N)
BURST_OK_DEPLOYD=$(burst "$URL_DEPLOYD" "burst-$RANDOM")
BURST_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
rm -f "$GATE"
wait_idle
BURST_RUNS_DEPLOYD=$(( $(runs) - before ))
if $have_webhook; then
  tag=burst-$RANDOM
  BURST_OK_WEBHOOK=$(burst "$URL_WEBHOOK" "$tag")
  webhook_settle
  BURST_RUNS_WEBHOOK=$(grep -c "^$tag-" "$WORK/webhook-runs" || true)
fi

# --- big log ------------------------------------------------------------------
# Reads its stdin 1 MiB at a time with a pause between: a slow terminal.
slow_reader() { local n; while n=$(head -c 1048576 | wc -c) && [ "$n" -gt 0 ]; do sleep 0.02; done; }
# follow_peak PID: the largest VmHWM of PID until it exits, in KiB.
follow_peak() {
  local pid=$1 peak=0 v
  while kill -0 "$pid" 2>/dev/null; do
    v=$(status_kb "$pid" VmHWM 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
    sleep 0.05
  done
  echo "$peak"
}
say "a deploy printing $BIGLOG_MB MiB, followed by two slow readers"
# Peak RSS from here on (proc(5): clear_refs).
echo 5 >"/proc/$DEPLOYD_PID/clear_refs" 2>/dev/null || say "cannot reset the daemon's VmHWM"
mkfifo "$WORK/deploy.out" "$WORK/follow.out"
slow_reader <"$WORK/deploy.out" &
READERS=("$!")
# Not through ctl: $! must be the command itself, not a subshell.
"$DEPLOYD" -c "$CONFIG" deploy biglog >"$WORK/deploy.out" 2>/dev/null &
BIG_DEPLOY=$!
for _ in $(seq 100); do
  ctl history biglog --json | grep -q '"id"' && break
  sleep 0.1
done
slow_reader <"$WORK/follow.out" &
READERS+=("$!")
"$DEPLOYD" -c "$CONFIG" logs -f biglog >"$WORK/follow.out" &
BIG_FOLLOW=$!
follow_peak "$BIG_FOLLOW" >"$WORK/follow.peak" &
READERS+=("$!")
BIG_DEPLOY_PEAK=$(follow_peak "$BIG_DEPLOY")
wait "$BIG_DEPLOY" || say "deploy biglog failed"
wait "$BIG_FOLLOW" || say "logs -f biglog failed"
wait "${READERS[@]}"
BIG_FOLLOW_PEAK=$(cat "$WORK/follow.peak")
BIG_DAEMON_PEAK=$(status_kb "$DEPLOYD_PID" VmHWM)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -------------------------------------------------------------------
field() { # SERVER PATH FIELD → one value per round
  awk -v s="$1" -v p="$2" -v f="$3" '$1 == s && $2 == p {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$RESULTS"
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
spread() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf " (%s–%s)", lo, hi }'; }
num() { field "$1" "$2" "$3" | median; }
rps() { [ -n "$(num "$1" "$2" rps)" ] && printf "%.0f%s" "$(num "$1" "$2" rps)" "$(field "$1" "$2" rps | spread)"; }
ms() { # SERVER PATH FIELD → median in ms (range)
  field "$1" "$2" "$3" | awk '{ printf "%.2f\n", $1 / 1000 }' >"$WORK/ms"
  [ -s "$WORK/ms" ] && printf "%s ms%s" "$(median <"$WORK/ms")" "$(spread <"$WORK/ms")"
}
cpu() { # SERVER PATH → median CPU µs per request
  paste -d' ' <(field "$1" "$2" cpu_us) <(field "$1" "$2" requests) |
    awk '$2 > 0 { printf "%.1f\n", $1 / $2 }' | median
}
ratio() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf (a / b < 1 ? "%.2f×" : "%.1f×"), a / b }'; }
check() { if awk "BEGIN { exit !($1) }"; then echo "✅"; else echo "❌"; fi; }
non2xx() { field "$1" "$2" non2xx | awk '{ s += $1 } END { print s + 0 }'; }
W=$($have_webhook && echo yes || echo no)
N=$($have_nginx && echo yes || echo no)
cell() { if [ "$1" = yes ]; then echo "$2"; else echo "—"; fi; }

cpu_model=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
fs=$(df -T "$WORK" | awk 'NR == 2 { print $2 }')
echo
echo "## deployd $("$DEPLOYD" --version | awk '{ print $2 }') ($LINKED) vs adnanh/webhook $(cell "$W" "$(webhook -version 2>/dev/null | awk '{ print $3 }')")"
echo
echo "$(nproc) CPUs ($cpu_model), Linux $(uname -r), state on $fs; load average $LOAD_BEFORE before, $LOAD_AFTER after."
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION over loopback, 8 KB signed GitHub push, a new delivery id per request;"
echo "$ROUNDS rounds, median (min–max). Servers and wrk share the same CPUs."
echo
echo "| | deployd | webhook | deployd vs webhook | nginx \`return 204\` |"
echo "| --- | --- | --- | --- | --- |"
for p in ignored badsig deploy; do
  case $p in
    ignored) label="ignored branch (200)";;
    badsig) label="bad signature (401; webhook 500)";;
    deploy) label="deploy push, one signed body (deployd: 202 after fsync once, then 200 duplicate, a replay; webhook 200 + a command each)";;
  esac
  d=$(num deployd "$p" rps); w=$(num webhook "$p" rps)
  n_rps=$([ "$p" = ignored ] && cell "$N" "$(rps nginx ignored)" || echo "—")
  n_p50=$([ "$p" = ignored ] && cell "$N" "$(ms nginx ignored p50_us)" || echo "—")
  n_p99=$([ "$p" = ignored ] && cell "$N" "$(ms nginx ignored p99_us)" || echo "—")
  echo "| $label: requests/s | $(rps deployd "$p") | $(cell "$W" "$(rps webhook "$p")") | $(cell "$W" "$(ratio "$d" "$w")") | $n_rps |"
  echo "| $label: p50 | $(ms deployd "$p" p50_us) | $(cell "$W" "$(ms webhook "$p" p50_us)") | | $n_p50 |"
  echo "| $label: p99 | $(ms deployd "$p" p99_us) | $(cell "$W" "$(ms webhook "$p" p99_us)") | | $n_p99 |"
  echo "| $label: CPU per request | $(cpu deployd "$p") µs | $(cell "$W" "$(cpu webhook "$p") µs") | | |"
done
echo "| idle RSS (VmRSS after start) | $(mib "$IDLE_DEPLOYD") | $(cell "$W" "$(mib "${IDLE_WEBHOOK:-0}")") | $(cell "$W" "$(ratio "$IDLE_DEPLOYD" "${IDLE_WEBHOOK:-0}")") | |"
echo "| CPU over 10 s idle | ${IDLE_CPU_DEPLOYD} ms | $(cell "$W" "${IDLE_CPU_WEBHOOK:-0} ms") | | |"
echo "| peak RSS (VmHWM after the rounds) | $(mib "$LOADED_DEPLOYD") | $(cell "$W" "$(mib "${LOADED_WEBHOOK:-0}")") | $(cell "$W" "$(ratio "$LOADED_DEPLOYD" "${LOADED_WEBHOOK:-0}")") | |"
echo "| $BURST deploy pushes during a deploy: accepted, runs | $BURST_OK_DEPLOYD, $BURST_RUNS_DEPLOYD (the running one + $((BURST_RUNS_DEPLOYD - 1))) in $BURST_MS ms | $(cell "$W" "${BURST_OK_WEBHOOK:-}, ${BURST_RUNS_WEBHOOK:-}") | | |"
echo
echo "Non-2xx answers seen by wrk from deployd (only the bad-signature path should have any):" \
  "ignored $(non2xx deployd ignored), deploy $(non2xx deployd deploy), bad signature $(non2xx deployd badsig)."
echo
echo "A deploy printing $BIGLOG_MB MiB, followed at once by \`deployd deploy\` (through the daemon) and \`deployd logs -f\`, each into a slow reader: peak RSS (VmHWM) daemon $(mib "$BIG_DAEMON_PEAK"), \`deploy\` $(mib "$BIG_DEPLOY_PEAK"), \`logs -f\` $(mib "$BIG_FOLLOW_PEAK")."
echo
echo "### Targets (issue 6)"
echo
d_ign=$(num deployd ignored rps); d_bad=$(num deployd badsig rps)
d_p99=$(num deployd ignored p99_us); dep_p99=$(num deployd deploy p99_us)
if $have_webhook; then
  w_ign=$(num webhook ignored rps); w_bad=$(num webhook badsig rps)
  echo "- ignored branch ≥ 4× webhook's requests/s: $(ratio "$d_ign" "$w_ign") $(check "$d_ign >= 4 * $w_ign")"
  echo "- bad signature ≥ 4× webhook's requests/s: $(ratio "$d_bad" "$w_bad") $(check "$d_bad >= 4 * $w_bad")"
fi
if $have_nginx; then
  n_p99=$(num nginx ignored p99_us)
  echo "- p99 (ignored branch) ≤ 2× nginx's p99: $(ratio "$d_p99" "$n_p99") $(check "$d_p99 <= 2 * $n_p99")"
fi
echo "- idle RSS ≤ 4 MiB: $(mib "$IDLE_DEPLOYD") $(check "$IDLE_DEPLOYD <= 4096")"
echo "- $BURST-push burst → exactly 1 extra run: $((BURST_RUNS_DEPLOYD - 1)) $(check "$BURST_RUNS_DEPLOYD == 2 && $BURST_OK_DEPLOYD == $BURST")"
echo "- following a $BIGLOG_MB MiB log: daemon and each command < 16 MiB peak RSS: $(mib "$BIG_DAEMON_PEAK"), $(mib "$BIG_DEPLOY_PEAK"), $(mib "$BIG_FOLLOW_PEAK") $(check "$BIG_DAEMON_PEAK < 16384 && $BIG_DEPLOY_PEAK < 16384 && $BIG_FOLLOW_PEAK < 16384")"
echo "- p99 of the deploy path (since replays are caught, the replay check, not the durable write) ≤ 5 ms: $(awk -v v="$dep_p99" 'BEGIN { printf "%.2f ms", v / 1000 }') $(check "$dep_p99 <= 5000")"

# --- status page ----------------------------------------------------------------
# Its own script, so it can run alone; the same binary.
DEPLOYD=$DEPLOYD scripts/bench-web.sh
