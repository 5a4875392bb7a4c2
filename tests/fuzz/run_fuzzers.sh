#!/usr/bin/env bash
# Runs each libFuzzer target of tests/fuzz for a bounded time on its
# committed corpus (what `make fuzz` does after building them).
#
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS MERGE [TARGET...]
#
# New inputs go to BUILD_DIR/fuzz-work/<target>, crashes to
# BUILD_DIR/fuzz-artifacts/; the committed corpus tests/fuzz/corpus/<target>
# is only read, unless MERGE is 1: then what added coverage is merged into
# it (libFuzzer -merge=1, which keeps it minimal). Exits non-zero if any
# target found a crash, leak, timeout or sanitizer report.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="$1"
seconds="$2"
merge="$3"
shift 3
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_fault_spec fuzz_fault_control fuzz_kv_line fuzz_http_request
           fuzz_toxiproxy_model fuzz_vocabulary fuzz_message fuzz_history
           fuzz_kv_quorum_wire fuzz_stream_node_wire)
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer)"
fi

failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  corpus="$here/corpus/$t"
  work="$build/fuzz-work/$t"
  artifacts="$build/fuzz-artifacts"
  log="$build/fuzz-logs/$t.log"
  mkdir -p "$corpus" "$work" "$artifacts" "$(dirname "$log")"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin not built" >&2
    failed+=("$t")
    continue
  fi
  echo "fuzz: $t for ${seconds}s ($(ls "$corpus" | wc -l) corpus files)"
  # The work dir first: libFuzzer writes new inputs into the first dir only.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
    "$work" "$corpus" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  if [ $rc -ne 0 ]; then
    echo "fuzz: $t FAILED (exit $rc); log $log, inputs $artifacts/$t-*" >&2
    grep -E 'ERROR|SUMMARY|fuzz_|oracle|runtime error' "$log" | head -20 >&2
    failed+=("$t")
  elif [ "$merge" = 1 ]; then
    "$bin" -merge=1 "$corpus" "$work" >>"$log" 2>&1 ||
      { echo "fuzz: merging $t failed; log $log" >&2; failed+=("$t"); }
  fi
  summary+=("$(printf '%-20s %-6s %10s runs %8s exec/s  cov %s' "$t" \
    "$([ $rc -eq 0 ] && echo ok || echo FAIL)" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}")")
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
