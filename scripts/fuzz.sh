#!/usr/bin/env bash
# Fuzzes the code that reads hostile input — signature headers, webhook
# payloads, the config file — one cargo-fuzz target after another, then
# prints a summary. Exits 1 if any target crashed (or failed to build).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#
# Not run in CI: it takes minutes. The targets live in fuzz/, a crate with a
# workspace of its own, so the main cargo build, test and clippy never see it.
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer=address and friends);
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. AddressSanitizer
# works that way; FUZZ_ARGS="-s none" turns it off if it ever does not.
#
# The committed seeds in fuzz/corpus/<target>/ are only read; what the fuzzer
# learns goes to fuzz/target/corpus/<target>/ (ignored by git) and is reused
# by the next run. A crash is saved under fuzz/artifacts/<target>/; replay it:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz <target> fuzz/artifacts/<target>/<file>
#
# libFuzzer runs one process per target by default (no -jobs), and it runs
# under nice: this is meant to share a machine.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
if [ ${#targets[@]} -eq 0 ]; then
  echo "no fuzz targets found in fuzz/" >&2
  exit 1
fi

logs=fuzz/target/logs
mkdir -p "$logs"
summary=()
failed=0
for t in "${targets[@]}"; do
  work=fuzz/target/corpus/$t
  log=$logs/$t.log
  mkdir -p "$work"
  touch "$work"  # artifacts newer than this are this run's
  echo "== $t: ${seconds}s (full log: $log)"
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of options on purpose
  nice -n 10 cargo fuzz run --fuzz-dir fuzz ${FUZZ_ARGS:-} "$t" "$work" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 &
  pid=$!
  # Progress while it runs: libFuzzer's periodic lines only.
  tail -n +1 -F --pid="$pid" "$log" 2>/dev/null | grep --line-buffered -E 'INITED|pulse|DONE' &
  tailer=$!
  wait "$pid"
  rc=$?
  wait "$tailer" 2>/dev/null

  final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
  runs=$(final_stat number_of_executed_units)
  rate=$(final_stat average_exec_per_sec)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  if [ "$rc" -eq 0 ]; then
    verdict=ok
  else
    verdict="FAILED (exit $rc)"
    failed=$((failed + 1))
    echo "!! $t failed; the end of its log:"
    tail -n 60 "$log"
    find "fuzz/artifacts/$t" -type f -newer "$work" 2>/dev/null | sed 's/^/   artifact: /'
  fi
  summary+=("$(printf '%-10s %-16s runs=%-10s exec/s=%-8s cov=%s' \
    "$t" "$verdict" "${runs:-?}" "${rate:-?}" "${cov:-?}")")
done

echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
[ "$failed" -eq 0 ]
