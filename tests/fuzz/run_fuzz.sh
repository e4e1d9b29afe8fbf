#!/bin/sh
# Runs one libFuzzer target for a bounded time (the 'fuzz' suite; see docs/fuzzing.md).
#   run_fuzz.sh TARGET SEED_CORPUS ARTIFACT_DIR [libFuzzer options...]
# The fuzzer works on a copy of the seed corpus in a temporary directory (the source tree is
# never written); a crashing input is saved in ARTIFACT_DIR and the test fails.
# TCPECHO_FUZZ_SECONDS overrides the run time (default 60).
set -eu
target=$1 seeds=$2 artifacts=$3
shift 3
seconds=${TCPECHO_FUZZ_SECONDS:-60}

work=$(mktemp -d "${TMPDIR:-/tmp}/tcpecho-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$work/corpus" "$artifacts"
cp "$seeds"/* "$work/corpus/"

# UBSan only prints by default: a report must fail the run (and save the input).
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# -timeout: one input taking this long is a hang. -rss_limit_mb: ASan's shadow and quarantine
# included. -malloc_limit_mb=64: a single allocation above 64 MiB is a bug (a trusted length).
set +e
"$target" -max_total_time="$seconds" -malloc_limit_mb=64 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "$work/corpus"
rc=$?
set -e
echo "corpus: $(ls "$work/corpus" | wc -l) inputs after the run (seeds: $(ls "$seeds" | wc -l))"
if [ "$rc" -ne 0 ]; then
    echo "FAILED ($rc): artifacts in $artifacts; replay one with: $target FILE" >&2
fi
exit "$rc"
