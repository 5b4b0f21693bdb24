#!/usr/bin/env bash
# Leak check: runs examples/leak_check.rs (every way a task and an executor can end,
# with cross-thread wakes) under valgrind's memcheck and fails on any definite leak
# or memory error. Thread-local and static data still reachable at exit are not
# errors.
#
# Usage: scripts/leak-check.sh              builds the example, runs valgrind
#        scripts/leak-check.sh --self-test  the same with a leak planted on purpose
#                                           (one task's handle forgotten): must fail
# Env:   CARGO_TARGET_DIR   where to build (default: target)
#        LEAK_CHECK_PROFILE dev (default) or release
# Exit:  0 clean; 1 leak or memory error; 2 valgrind missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "leak-check: valgrind not installed (apt-get install valgrind)" >&2
    exit 2
fi

profile="${LEAK_CHECK_PROFILE:-dev}"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$profile" in
    dev) bin="$target_dir/debug/examples/leak_check" ;;
    release) bin="$target_dir/release/examples/leak_check" ;;
    *) echo "leak-check: LEAK_CHECK_PROFILE must be dev or release" >&2; exit 2 ;;
esac

cargo build --quiet --profile "$profile" --example leak_check

if [ "${1:-}" = "--self-test" ]; then
    if LEAK_CHECK_PLANT_LEAK=1 valgrind --leak-check=full --errors-for-leak-kinds=definite \
        --error-exitcode=1 --log-file=/dev/null "$bin" >/dev/null; then
        echo "leak-check self-test: FAILED (a planted leak went unnoticed)" >&2
        exit 1
    fi
    echo "leak-check self-test: ok (the planted leak was reported)"
    exit 0
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 \
    --log-file="$log" "$bin" || status=$?
# The summary lines: leaks by kind and the error count.
grep -E "definitely lost|indirectly lost|possibly lost|still reachable|ERROR SUMMARY" "$log" \
    | sed 's/^==[0-9]*== //'
if [ "$status" -ne 0 ]; then
    echo "leak-check: FAILED (valgrind exit $status); full report:" >&2
    cat "$log" >&2
    exit 1
fi
echo "leak-check: ok"
