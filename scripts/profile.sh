#!/usr/bin/env bash
# Where does clockworker's per-task cost go? The steps of docs/PROFILING.md, scripted:
#
#   1. build the overhead_profile bench (release code with debug info);
#   2. count instructions with callgrind, collecting only inside the bench's
#      `measured` function, for tokio's LocalSet and for the chosen clockworker
#      configuration, and print instructions per task and the top functions;
#   3. if perf works here: record a sampled profile with DWARF call stacks, and turn it
#      into a flame graph (with `flamegraph`, if installed) and a Firefox-profiler file
#      (with `samply import`, if installed). Each skipped step says why.
#
# Usage: scripts/profile.sh [--quick] [CONFIG]
#   CONFIG: an overhead_profile configuration: fifo (default), las, tokio,
#           fifo-neutral, tokio-neutral, smol, cw-smol.
#   --quick: few tasks and one round (seconds; what CI runs).
# Environment: OVH_TASKS, OVH_ITERS, OVH_ROUNDS as for the bench; CARGO_TARGET_DIR.
# Output: target/clockworker-bench/profile/ (callgrind.*.out, perf.data, flamegraph.svg,
# profile.json.gz).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
config=fifo
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h | --help)
            sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "unknown option $arg (see --help)" >&2
            exit 2
            ;;
        *) config="$arg" ;;
    esac
done

if [ "$quick" = 1 ]; then
    export OVH_TASKS="${OVH_TASKS:-2000}" OVH_ROUNDS="${OVH_ROUNDS:-1}"
    perf_rounds=1
else
    export OVH_TASKS="${OVH_TASKS:-50000}" OVH_ROUNDS="${OVH_ROUNDS:-3}"
    perf_rounds=30
fi
tasks=$((OVH_TASKS * OVH_ROUNDS))
target_dir="${CARGO_TARGET_DIR:-target}"
out="$target_dir/clockworker-bench/profile"
mkdir -p "$out"

step() { printf '\n== %s\n' "$*"; }

step "1. build: cargo bench --bench overhead_profile --no-run"
cargo bench --bench overhead_profile --no-run
# The glob also matches the dependency file overhead_profile-<hash>.d: keep executables.
bin="$(ls -t "$target_dir"/release/deps/overhead_profile-* | grep -v '\.d$' | head -1)"
echo "executable: $bin"

# Sums callgrind_annotate's lines by function (code inlined into a function is charged
# to it, as the annotation does) and prints the top $2 with their cost per task.
top_functions() {
    callgrind_annotate --auto=no --threshold=100 "$1" | awk -v top="$2" -v tasks="$tasks" '
        /^ *[0-9,]+ +\(/ {
            ir = $1; gsub(/,/, "", ir)
            line = $0
            sub(/^ *[0-9,]+ +\([^)]*\) +/, "", line)
            if (line ~ /PROGRAM TOTALS/) { total = ir; next }
            sub(/ \[[^]]*\]$/, "", line)
            if (match(line, /^[^:]*:[^:]/)) line = substr(line, RLENGTH)
            sum[line] += ir
        }
        END {
            n = 0
            for (f in sum) names[++n] = f
            for (i = 2; i <= n; i++) {
                v = names[i]; j = i - 1
                while (j > 0 && sum[names[j]] < sum[v]) { names[j + 1] = names[j]; j-- }
                names[j + 1] = v
            }
            printf "%14s %7s %9s  %s\n", "instructions", "share", "per task", "function"
            for (i = 1; i <= n && i <= top; i++) {
                f = names[i]
                printf "%14d %6.1f%% %9.1f  %s\n", sum[f], 100 * sum[f] / total, sum[f] / tasks, f
            }
        }'
}

# Instructions collected in a callgrind output file.
collected() {
    awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

step "2. callgrind: $OVH_TASKS tasks x ${OVH_ITERS:-5} yields, $OVH_ROUNDS measured round(s)"
if ! command -v valgrind >/dev/null; then
    echo "skipped: valgrind is not installed (Debian: apt-get install valgrind)"
else
    configs="tokio $config"
    [ "$config" = tokio ] && configs=tokio
    [ "$config" = tokio-neutral ] && configs=tokio-neutral
    case "$config" in fifo-neutral | smol | cw-smol) configs="tokio-neutral $config" ;; esac
    base=""
    for c in $configs; do
        file="$out/callgrind.$c.out"
        valgrind --tool=callgrind --toggle-collect='*measured*' \
            --callgrind-out-file="$file" "$bin" "$c" 2>"$out/callgrind.$c.log" | sed 's/^/  /'
        ir="$(collected "$file")"
        per=$((ir / tasks))
        [ -z "$base" ] && base=$per
        echo "$c: $ir instructions in 'measured', $per per task ($(awk -v a="$per" -v b="$base" 'BEGIN { printf "%.2f", a / b }') x ${configs%% *})"
    done
    step "2b. top functions of $config (callgrind, self cost per task)"
    top_functions "$out/callgrind.$config.out" 20
    echo
    echo "files: $out/callgrind.*.out (open with kcachegrind, or callgrind_annotate FILE)"
fi

step "3. perf record --call-graph dwarf (sampled profile)"
perf_ok=0
if ! command -v perf >/dev/null; then
    echo "skipped: perf is not installed (Debian: apt-get install linux-perf)"
elif ! perf record -q -o "$out/perf-probe.data" true >/dev/null 2>&1; then
    echo "skipped: perf cannot record here (kernel.perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo '?'); run as root or lower it)"
else
    perf_ok=1
    # More rounds than under callgrind: a sampled profile wants a second or so of CPU.
    OVH_ROUNDS="$perf_rounds" perf record -q --call-graph dwarf -o "$out/perf.data" "$bin" "$config" 2>&1 | sed 's/^/  /'
    echo "wrote $out/perf.data ($(du -h "$out/perf.data" | cut -f1))"
fi
rm -f "$out/perf-probe.data"

step "3b. flame graph from perf.data (flamegraph --perfdata)"
if [ "$perf_ok" = 0 ]; then
    echo "skipped: no perf.data (see step 3)"
elif ! command -v flamegraph >/dev/null; then
    echo "skipped: flamegraph is not installed (cargo install flamegraph)"
else
    flamegraph --perfdata "$out/perf.data" -o "$out/flamegraph.svg" 2>&1 | sed 's/^/  /'
fi

step "3c. Firefox-profiler file from perf.data (samply import)"
if [ "$perf_ok" = 0 ]; then
    echo "skipped: no perf.data (see step 3)"
elif ! command -v samply >/dev/null; then
    echo "skipped: samply is not installed (cargo install samply)"
else
    samply import --save-only -o "$out/profile.json.gz" "$out/perf.data" 2>&1 | sed 's/^/  /'
    echo "wrote $out/profile.json.gz (view: samply load $out/profile.json.gz)"
fi

step "done"
