#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang (ASan + UBSan) and runs each for
# FUZZ_SECONDS (default 60), bounded in time; prints libFuzzer's executions and fails on any
# finding (the crashing input is left in build-fuzz/findings/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh clang libclang-rt-14-dev
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)"
seconds=${FUZZ_SECONDS:-60}
mkdir -p build-fuzz/findings
status=0
for target in mqtt_codec_fuzz documents_fuzz; do
  corpus=build-fuzz/corpus/$target
  mkdir -p "$corpus"
  echo "== $target: $seconds s"
  if ! timeout $((seconds + 60)) "build-fuzz/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=4096 -artifact_prefix=build-fuzz/findings/"$target"- -print_final_stats=1 "$corpus" \
      2> "build-fuzz/$target.log"; then
    status=1
    echo "   FINDING: see build-fuzz/$target.log and build-fuzz/findings/"
  fi
  grep -E "^Done|stat::number_of_executed_units|stat::peak_rss_mb|ERROR" "build-fuzz/$target.log" || true
  echo "   corpus: $(find "$corpus" -type f | wc -l) inputs"
done
exit $status
