#!/usr/bin/env bash
# Checks the examples of README.md and docs/*.md against the binary:
# configs parse, links lead somewhere, and the demo's shell examples run.
#
# A marker is an HTML comment alone on the last non-blank line before a
# fenced block (GitHub does not show it). The markers:
#
#   <!-- check -->         before ```toml: the block is a whole config;
#                          `deployd check -c` must accept it.
#   <!-- check: myapp -->  before ```toml: the block is one or more tables
#                          that go with a project; it is appended to BASE
#                          below ([server] and a project `myapp`) and the
#                          whole must pass `deployd check`. A block that
#                          opens with [projects.myapp] adds its keys to
#                          that project.
#   <!-- nocheck -->       before ```toml: a fragment on purpose (one key
#                          shown alone, say); not checked.
#   <!-- run -->           before ```sh: run, in order, in the demo session
#                          (below), with stdout and stderr kept.
#   <!-- run: idle -->     the same, once the demo project is idle: nothing
#                          running, nothing pending (a bounded wait).
#   <!-- expect -->        before an untagged ``` block that follows a run
#                          block: its first line must be one of the lines
#                          that run block printed.
#
# Every ```toml block carries one of the three toml markers: a block with
# none fails, so a new example is either checked or said not to be.
#
# Checked configs are completed by these rules, so that a server's example
# (/etc/deployd/..., /srv/myapp) checks on any machine: every string value
# that starts with "/" is moved under a scratch root; in that root, a
# `script` and the first word of a `command` become executable shell
# scripts, a `working_dir` a directory, a `url_file` a file holding a URL
# and any other `*_file` a file holding a secret; each `*_credential` gets
# a file in $CREDENTIALS_DIRECTORY (a URL for `url_credential`) and each
# `*_env` a variable.
#
# The demo session: deploy.example.toml and scripts/demo-deploy.sh copied
# into a scratch directory, `deployd serve` on that copy (the debug build,
# on a free port), `deployd` a shell function that runs the same binary on
# the same config, and the blocks run from that directory, with
# 127.0.0.1:9000 in them read as the daemon's address. The daemon is
# stopped at the end, whatever happens.
#
# Every relative link ([text](path#anchor)) must name an existing file and,
# for a Markdown file, one of its headings' anchors (GitHub's rule: lower
# case, punctuation dropped, spaces to dashes).
#
# Fails naming the file and line of each block or link that does not hold.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

BASE='[server]
listen = "127.0.0.1:9000"
state_dir = "/var/lib/deployd"
log_dir = "/var/log/deployd"

[projects.myapp]
secret_file = "/etc/deployd/myapp.secret"
repository = "OWNER/REPO"
script = "/usr/local/share/deployd/deploy-git.sh"
working_dir = "/srv/myapp"
'

if [ -n "${DEPLOYD_BIN:-}" ]; then
  bin=$DEPLOYD_BIN
else
  cargo build --quiet || { echo "check-docs: cargo build failed"; exit 1; }
  bin=$PWD/target/debug/deployd
fi
[ -x "$bin" ] || { echo "check-docs: no binary at $bin"; exit 1; }

tmp=$(mktemp -d)
daemon=
cleanup() {
  if [ -n "$daemon" ]; then
    kill "$daemon" 2>/dev/null
    wait "$daemon" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

docs=(README.md docs/*.md)

# Every fenced block, one file each: $tmp/blocks/N, and a line in the index:
# N, file, line of the opening fence, language, marker ("" when none),
# separated by | (not a tab: read would merge the empty fields).
mkdir -p "$tmp/blocks"
awk -v dir="$tmp/blocks" '
  FNR == 1 { last = ""; infence = 0 }
  infence {
    line = $0
    if (line ~ /^[ \t]*```[ \t]*$/) { infence = 0; close(out); last = ""; next }
    if (substr(line, 1, indent) ~ /^[ \t]*$/) line = substr(line, indent + 1)
    print line > out
    next
  }
  /^[ \t]*```/ {
    n++
    match($0, /^[ \t]*/); indent = RLENGTH
    lang = substr($0, indent + 4); gsub(/[ \t]/, "", lang)
    marker = ""
    if (last ~ /^[ \t]*<!--.*-->[ \t]*$/) { marker = last; sub(/^[ \t]*<!--[ \t]*/, "", marker); sub(/[ \t]*-->[ \t]*$/, "", marker) }
    out = dir "/" n
    printf "" > out
    printf "%d|%s|%d|%s|%s\n", n, FILENAME, FNR, lang, marker > (dir "/index")
    infence = 1
    next
  }
  NF { last = $0 }
' "${docs[@]}"

# --- Configs -------------------------------------------------------------

# Completes a config as the header says, in root $1, from stdin to stdout.
complete_config() {
  local root=$1 text key value path
  text=$(sed "s#\"/#\"$root/#g")
  printf '%s\n' "$text"
  while IFS= read -r line; do
    key=${line%%=*}
    key=${key//[[:space:]]/}
    value=$(printf '%s' "${line#*=}" | sed -n 's/^[[:space:]]*\[*[[:space:]]*"\([^"]*\)".*/\1/p')
    [ -n "$value" ] || continue
    # A relative path is the config's directory's, here the scratch root.
    case $value in /*) path=$value ;; *) path=$root/$value ;; esac
    case $key in
      script | command)
        mkdir -p "$(dirname "$path")"
        printf '#!/bin/sh\nexit 0\n' >"$path"
        chmod 755 "$path" ;;
      working_dir) mkdir -p "$path" ;;
      url_file) mkdir -p "$(dirname "$path")"; echo "https://hooks.example.com/x" >"$path" ;;
      *_file) mkdir -p "$(dirname "$path")"; echo "a-secret-for-the-docs" >"$path" ;;
      url_credential) echo "https://hooks.example.com/x" >"$root/credentials/$value" ;;
      *_credential) echo "a-secret-for-the-docs" >"$root/credentials/$value" ;;
      *_env) export "$value=a-secret-for-the-docs" ;;
    esac
  done <<<"$text"
}

check_config() {
  local n=$1 where=$2 marker=$3 root out
  root=$tmp/config-$n
  mkdir -p "$root/credentials"
  {
    if [ "$marker" = "check: myapp" ]; then
      printf '%s\n' "$BASE"
      # BASE ends in [projects.myapp]: the block's keys for it go on there.
      awk 'NR == 1 && /^\[projects\.myapp\]/ { next } { print }' "$tmp/blocks/$n"
    else
      cat "$tmp/blocks/$n"
    fi
  } | (complete_config "$root" >"$root/deploy.toml"
    chmod 600 "$root/deploy.toml"
    CREDENTIALS_DIRECTORY=$root/credentials "$bin" check -c "$root/deploy.toml" >"$root/out" 2>&1) || {
    out=$(cat "$root/out")
    fail "$where: this config does not pass deployd check: $out"
  }
}

configs=0
while IFS='|' read -r n file line lang marker; do
  [ "$lang" = toml ] || continue
  case $marker in
    check | "check: myapp") check_config "$n" "$file:$line" "$marker"; configs=$((configs + 1)) ;;
    nocheck) ;;
    *) fail "$file:$line: a toml block without <!-- check -->, <!-- check: myapp --> or <!-- nocheck -->" ;;
  esac
done <"$tmp/blocks/index"
echo "check-docs: $configs config(s) checked"

# --- Links ---------------------------------------------------------------

# The anchors of a Markdown file's headings, one a line.
anchors() {
  LC_ALL=C awk '
    /^[ \t]*```/ { fence = !fence; next }
    fence || !/^#+ / { next }
    {
      s = $0; sub(/^#+ +/, "", s); s = tolower(s)
      gsub(/[^a-z0-9 _-]/, "", s); gsub(/ /, "-", s)
      if (seen[s]++) s = s "-" (seen[s] - 1)
      print s
    }' "$1"
}

links=0
for file in "${docs[@]}"; do
  dir=$(dirname "$file")
  while IFS=$'\t' read -r line target; do
    links=$((links + 1))
    path=${target%%#*}
    anchor=
    case $target in *'#'*) anchor=${target#*#} ;; esac
    if [ -z "$path" ]; then dest=$file; else dest=$dir/$path; fi
    if [ ! -e "$dest" ]; then
      fail "$file:$line: link to $target: no such file"
    elif [ -n "$anchor" ] && [[ $dest == *.md ]] && ! anchors "$dest" | grep -qxF -- "$anchor"; then
      fail "$file:$line: link to $target: no such heading in $dest"
    fi
  done < <(awk '
    /^[ \t]*```/ { fence = !fence; next }
    fence { next }
    {
      s = $0; gsub(/`[^`]*`/, "", s)
      while (match(s, /\]\([^) ]+\)/)) {
        t = substr(s, RSTART + 2, RLENGTH - 3); s = substr(s, RSTART + RLENGTH)
        if (t !~ /^[a-z]+:/) printf "%d\t%s\n", FNR, t
      }
    }' "$file")
done
echo "check-docs: $links relative link(s) checked"

# --- The demo's shell examples -------------------------------------------

demo=$tmp/demo
mkdir -p "$demo/scripts"
cp scripts/demo-deploy.sh "$demo/scripts/"
sed 's/^listen = "127.0.0.1:9000"/listen = "127.0.0.1:0"/' deploy.example.toml >"$demo/deploy.example.toml"
deployd() { "$bin" -c "$demo/deploy.example.toml" "$@"; }

(cd "$demo" && exec "$bin" serve -c deploy.example.toml) >"$tmp/serve.log" 2>&1 &
daemon=$!
addr=
for _ in $(seq 300); do
  addr=$(sed -n 's#.*listening on http://\([0-9.:]*\) .*#\1#p' "$tmp/serve.log")
  [ -n "$addr" ] && break
  kill -0 "$daemon" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$addr" ]; then
  fail "the demo daemon did not start: $(cat "$tmp/serve.log")"
  exit 1
fi

wait_idle() {
  for _ in $(seq 600); do
    deployd status 2>/dev/null | head -n 1 | grep -qx 'demo: idle' && return 0
    sleep 0.1
  done
  return 1
}

ran=0
prev=
while IFS='|' read -r n file line lang marker; do
  case $marker in
    run | "run: idle")
      if [ "$lang" != sh ]; then fail "$file:$line: <!-- $marker --> on a block that is not sh"; continue; fi
      if [ "$marker" = "run: idle" ] && ! wait_idle; then
        fail "$file:$line: the demo project did not become idle within 60 s: $(deployd status 2>&1)"
      fi
      sed "s/127\.0\.0\.1:9000/$addr/g" "$tmp/blocks/$n" >"$tmp/run-$n.sh"
      # shellcheck source=/dev/null
      if ! (cd "$demo" && set -e && . "$tmp/run-$n.sh") >"$tmp/out-$n" 2>&1 </dev/null; then
        fail "$file:$line: this example failed: $(cat "$tmp/out-$n")"
      fi
      ran=$((ran + 1))
      prev=$n ;;
    expect)
      if [ -z "$prev" ]; then fail "$file:$line: <!-- expect --> with no run block before it"; continue; fi
      want=$(head -n 1 "$tmp/blocks/$n" | sed "s/127\.0\.0\.1:9000/$addr/g")
      if ! tr -d '\r' <"$tmp/out-$prev" | grep -qxF -- "$want"; then
        fail "$file:$line: the example above did not print: $want; it printed: $(cat "$tmp/out-$prev")"
      fi ;;
  esac
done <"$tmp/blocks/index"
echo "check-docs: $ran shell example(s) run"

echo "check-docs: $failures failure(s)"
[ "$failures" -eq 0 ]
