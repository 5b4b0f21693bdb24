#!/usr/bin/env bash
# Mutation testing of the scheduling core with cargo-mutants: each mutant (a function
# body replaced, an operator flipped, a condition forced) is built and the test suite
# run against it; a mutant the suite still passes is "missed". Results and how to
# read them: docs/TESTING.md. Not part of .ci/run: a full run takes hours here.
#
# Usage: scripts/mutants.sh [extra cargo-mutants arguments]
#   scripts/mutants.sh --list                  the mutants, without running them
#   scripts/mutants.sh --shard 0/8             one eighth of them
#   scripts/mutants.sh --file src/ready.rs     one file of the scope
# Env:   CARGO_TARGET_DIR   cargo-mutants copies the tree and builds in the copy;
#                           set it to keep builds out of the source tree
#        MUTANTS_JOBS       parallel builds (default 1: 2-core machines)
#        MUTANTS_TIMEOUT    seconds per test run before a mutant counts as timed out
#                           (default 120; the suite itself takes ~30 s). Tests also
#                           carry their own watchdog (tests/common), so a mutant that
#                           loses a wake fails in 30 s instead of timing out.
# Needs: cargo install --locked cargo-mutants
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo mutants --version >/dev/null 2>&1; then
    echo "mutants.sh: cargo-mutants is not installed (cargo install --locked cargo-mutants)" >&2
    exit 2
fi

# The scope: the EEVDF state machine, the ready side, the run loop, tasks, the
# built-in schedulers and the builder's wiring. Test-only files are excluded. A
# `--file` on the command line replaces the scope (cargo-mutants would add it).
scope=(
    --file 'src/eevdf/mod.rs'
    --file 'src/ready.rs'
    --file 'src/core/**'
    --file 'src/task/**'
    --file 'src/scheduler/**'
    --file 'src/builder.rs'
    --exclude 'src/eevdf/*tests.rs'
)
for arg in "$@"; do
    case "$arg" in
        -f | --file | --file=*) scope=(--exclude 'src/eevdf/*tests.rs') ;;
    esac
done

# The tests that can see these modules: the library's unit tests and the integration
# tests (doc tests are left out: they add minutes per mutant and duplicate the
# integration tests). Default features, as a user builds it.
exec cargo mutants \
    "${scope[@]}" \
    --jobs "${MUTANTS_JOBS:-1}" \
    --timeout "${MUTANTS_TIMEOUT:-120}" \
    --test-tool cargo \
    --output "${MUTANTS_OUT:-target/mutants}" \
    "$@" \
    -- --lib --tests
