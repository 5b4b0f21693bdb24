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
#                           (default 120; the suite itself takes ~15 s). Tests also
#                           carry their own watchdog (tests/common), so a mutant that
#                           loses a wake fails in 30 s instead of timing out.
#        MUTANTS_TESTS      the test targets built and run per mutant (default
#                           "--lib --tests --features sim"); "--lib" alone builds one binary instead
#                           of ~40, for a first pass over a module the library's unit
#                           tests cover (src/eevdf): then re-run with the default and
#                           --iterate, which retries only what the first pass missed.
#        MUTANTS_OUT        where mutants.out/ goes (default target/mutants)
#
# Speed (docs/TESTING.md has the figures): every mutant is built with the `mutants`
# profile (no debug info), linked with mold when it is installed (Debian: `apt-get
# install mold`), and only the test targets are built: a plain `cargo test --no-run`,
# cargo-mutants' build step, would also build the eleven examples.
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
# integration tests). Default features, as a user builds it, plus `sim`: the
# simulator's tests hold the run loop's rules at exact virtual times, which a real
# clock cannot (e.g. the driven future's "32 task polls" bound of `run_until`, where
# real polls are too slow to reach 32 before the 20 µs bound). `--cargo-arg` reaches
# the build step as well as the test step; arguments after `--` reach only the test.
read -r -a tests <<<"${MUTANTS_TESTS:---lib --tests --features sim}"
cargo_args=()
for t in "${tests[@]}"; do
    cargo_args+=(--cargo-arg="$t")
done

# A mutant that loses a wake fails at the tests' watchdog (tests/common, the library's
# miri_tests) after this many seconds instead of the default 30: no test needs more
# than a few seconds. A failing proptest would shrink its input for seconds, which
# tells a mutation run nothing: no shrinking.
export CLOCKWORKER_TEST_TIMEOUT="${CLOCKWORKER_TEST_TIMEOUT:-10}"
export PROPTEST_MAX_SHRINK_ITERS="${PROPTEST_MAX_SHRINK_ITERS:-0}"

# mold links the test binaries several times faster than the default linker; only
# for this script's builds (the profile's own target directory keeps them apart).
if command -v mold >/dev/null 2>&1; then
    export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C link-arg=-fuse-ld=mold"
fi

exec cargo mutants \
    "${scope[@]}" \
    --jobs "${MUTANTS_JOBS:-1}" \
    --timeout "${MUTANTS_TIMEOUT:-120}" \
    --test-tool cargo \
    --profile mutants \
    "${cargo_args[@]}" \
    --output "${MUTANTS_OUT:-target/mutants}" \
    "$@"
