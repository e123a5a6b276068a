#!/usr/bin/env bash
# Builds the fuzz targets once (cargo-fuzz, nightly) and runs each for a bounded time.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 60 seconds, every target)
#
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz --locked`. Not run in CI.
# The working corpus grows in fuzz/corpus/<target> (seeded from the committed fuzz/seeds/<target>);
# crashes land in fuzz/artifacts/<target>. Environment: FUZZ_SANITIZER (default `none`: the
# project forbids unsafe code; `address` for ASan), FUZZ_JOBS (build jobs, default 2).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(sanitize webhook ingest paid_grammar)
fi
sanitizer="${FUZZ_SANITIZER:-none}"

# Release with debug assertions: integer overflow and other debug checks are findings too.
CARGO_BUILD_JOBS="${FUZZ_JOBS:-2}" cargo +nightly fuzz build -O -a -s "$sanitizer"

summary=()
status=0
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    artifacts="fuzz/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    log="fuzz/artifacts/$target.log"
    echo "== $target: ${seconds}s"
    # One process on one core (no -jobs: that forks a worker logging to ./fuzz-N.log).
    set +e
    cargo +nightly fuzz run -O -a -s "$sanitizer" "$target" "$corpus" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1
    code=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
    crashes=$(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    if [ "$code" -ne 0 ]; then
        status=1
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -5 || true
    fi
    summary+=("$(printf '%-13s execs=%-10s %-22s exit=%s artifacts=%s log=%s' \
        "$target" "${execs:-?}" "${cov:-cov: ?}" "$code" "$crashes" "$log")")
done

echo
echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
exit "$status"
