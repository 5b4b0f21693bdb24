#!/usr/bin/env bash
# Drives examples/http_server.rs with a real HTTP load generator and prints latency
# (p50/p90/p99) and throughput for:
#   clockworker, no background load      clockworker, with background load
#   plain LocalSet, no background load   plain LocalSet, with background load
#
# Usage: scripts/http-bench.sh            (from the repository root)
# Environment (defaults in brackets):
#   DURATION [5]      seconds of load per run
#   ROUNDS [3]        rounds; the four configurations are interleaved in each round,
#                     and every figure is the median over rounds
#   CONNS [32]        concurrent keep-alive connections of the load generator
#   BG [4]            background tasks in the "with background load" runs
#   CHUNK_US [50]     CPU per background chunk (between two yields), µs
#   SERVER_ARGS [""]  more arguments for examples/http_server.rs in clockworker mode
#                     (e.g. "--driver-yield-us 100 --lag-tolerance-us 0"; see its docs)
#   PORT [18080]      port on 127.0.0.1
#   PIN [1]           pin the server to CPU $SERVER_CPU [0] and the load generator to
#                     CPU $CLIENT_CPU [1] (taskset)
#   PRIORITY [0]      1: run everything in its own scheduler autogroup at nice -20
#                     (root; keeps other processes on a shared machine from adding
#                     milliseconds of their own to the tail), and the kernel's
#                     ksoftirqd threads at nice -20 too for the run (restored at exit):
#                     a server saturated by its background at nice -20 otherwise
#                     starves the thread that delivers its packets
#   LOADGEN [auto]    wrk, oha or http_load; auto: http_load with RATE, else wrk
#                     (installed from Debian with apt-get if missing, else oha with cargo)
#   RATE [unset]      open loop: send this many requests/s in all, whatever the
#                     latency, each latency counted from when its request was due.
#                     Uses examples/http_load.rs (one busy-polling thread, built here),
#                     or oha -q with --latency-correction if LOADGEN=oha (oha needs more
#                     than one core of this VM to keep its schedule). Unset: closed
#                     loop, each connection sends its next request when the answer
#                     arrives (wrk), so at saturation the latencies follow the throughput.
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
BG=${BG:-4}
CHUNK_US=${CHUNK_US:-50}
SERVER_ARGS=${SERVER_ARGS:-}
PORT=${PORT:-18080}
PIN=${PIN:-1}
PRIORITY=${PRIORITY:-0}
LOADGEN=${LOADGEN:-auto}

cd "$(dirname "$0")/.."

# Own autogroup at nice -20 (Linux, root): re-exec once inside a new session.
if [ "$PRIORITY" = 1 ] && [ -z "${HTTP_BENCH_IN_GROUP:-}" ]; then
    exec setsid -w env HTTP_BENCH_IN_GROUP=1 bash -c \
        'echo -20 > /proc/self/autogroup 2>/dev/null || echo "note: could not renice the autogroup" >&2; exec "$0" "$@"' \
        "$0" "$@"
fi

# --- load generator ------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
if [ "$LOADGEN" = auto ] && [ -n "${RATE:-}" ]; then
    LOADGEN=http_load
fi
if [ "$LOADGEN" = oha ] && ! have oha; then
    cargo install oha --locked
fi
if [ "$LOADGEN" = auto ]; then
    if have wrk; then
        LOADGEN=wrk
    elif have apt-get && { apt-get install -y wrk >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; }; }; then
        LOADGEN=wrk
    elif have oha || cargo install oha --locked; then
        LOADGEN=oha
    else
        echo "no load generator: install wrk (apt-get install wrk) or oha (cargo install oha)" >&2
        exit 1
    fi
fi
echo "load generator: $LOADGEN"

# --- server binary -----------------------------------------------------------------------
cargo build --release --example http_server --example http_load
SERVER="${CARGO_TARGET_DIR:-target}/release/examples/http_server"
HTTP_LOAD="${CARGO_TARGET_DIR:-target}/release/examples/http_load"

server_cpu=()
client_cpu=()
if [ "$PIN" = 1 ] && have taskset && [ "$(nproc)" -ge 2 ]; then
    server_cpu=(taskset -c "${SERVER_CPU:-0}")
    client_cpu=(taskset -c "${CLIENT_CPU:-1}")
fi

# Converts wrk's "123.45us" / "1.20ms" / "2.00s" to microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") m = 1; else if (u == "ms") m = 1000; else if (u == "s") m = 1e6; else m = 1;
        printf "%.1f", n * m }'
}

# Runs the load generator once; prints "rps p50 p90 p99" (latencies in µs).
load() {
    local url="http://127.0.0.1:$PORT/"
    if [ "$LOADGEN" = http_load ]; then
        local out
        out=$("${client_cpu[@]}" "$HTTP_LOAD" --addr "127.0.0.1:$PORT" --rate "$RATE" \
            --conns "$CONNS" --seconds "$DURATION" --warmup 0.5)
        # "sent N done N rate R p50 A p90 B p99 C p99.9 D max E (µs) backlog max K"
        echo "$out" | awk '{for (i = 1; i < NF; i++) v[$i] = $(i + 1);
            print v["rate"], v["p50"], v["p90"], v["p99"]}'
    elif [ "$LOADGEN" = wrk ]; then
        local out
        out=$("${client_cpu[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url")
        local rps p50 p90 p99
        rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
        p50=$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")
        p90=$(to_us "$(echo "$out" | awk '$1 == "90%" {print $2}')")
        p99=$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")
        echo "$rps $p50 $p90 $p99"
    else
        local out
        local open_loop=()
        [ -n "${RATE:-}" ] && open_loop=(-q "$RATE" --latency-correction)
        out=$("${client_cpu[@]}" oha --no-tui -z "${DURATION}s" -c "$CONNS" "${open_loop[@]}" "$url")
        local rps p50 p90 p99
        rps=$(echo "$out" | awk '/Requests\/sec:/ {print $2}')
        # oha: "  50.00% in 0.0003 secs" (older) or "  50.00% in 5.0234 ms" (1.16)
        pct() {
            echo "$out" | awk -v q="$1" '$1 == q {
                m = 1e6; if ($4 == "ms") m = 1e3; else if ($4 == "us" || $4 == "µs") m = 1;
                else if ($4 == "ns") m = 1e-3;
                printf "%.1f", $3 * m; exit }'
        }
        p50=$(pct 50.00%)
        p90=$(pct 90.00%)
        p99=$(pct 99.00%)
        echo "$rps $p50 $p90 $p99"
    fi
}

SERVER_PID=
# PRIORITY=1: ksoftirqd at our autogroup's priority for the run (see above).
SOFTIRQ_NICE=()
if [ "$PRIORITY" = 1 ] && have pgrep && have renice; then
    for pid in $(pgrep ksoftirqd); do
        SOFTIRQ_NICE+=("$pid:$(ps -o ni= -p "$pid" | tr -d ' ')")
        renice -n -20 -p "$pid" >/dev/null 2>&1 || true
    done
fi

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    for entry in "${SOFTIRQ_NICE[@]}"; do
        renice -n "${entry#*:}" -p "${entry%%:*}" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

# One run: starts the server, waits for it to listen, loads it, stops it.
run() {
    local mode=$1 bg=$2
    local args=(--addr "127.0.0.1:$PORT" --bg "$bg" --chunk-us "$CHUNK_US"
        --seconds $((DURATION + 30)))
    if [ "$mode" = plain ]; then
        args+=(--plain)
    else
        # shellcheck disable=SC2206 # split on purpose: several arguments
        args+=($SERVER_ARGS)
    fi
    "${server_cpu[@]}" "$SERVER" "${args[@]}" >/dev/null 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
        sleep 0.05
    done
    load
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

configs=("clockworker 0" "clockworker $BG" "plain 0" "plain $BG")
declare -A results
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    n=${#configs[@]}
    for i in $(seq 0 $((n - 1))); do
        # Rotate the starting configuration from round to round.
        c=${configs[$(((i + round - 1) % n))]}
        results["$c"]+="$(run $c)"$'\n'
    done
done

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
col() { echo -n "${results[$1]}" | awk -v k="$2" 'NF {print $k}' | median; }

echo
echo "HTTP/1.1 hello-world, $CONNS connections, ${RATE:+open loop at $RATE requests/s, }${DURATION}s x $ROUNDS rounds (medians); background: $BG tasks of ${CHUNK_US}µs chunks${SERVER_ARGS:+; clockworker: $SERVER_ARGS}"
echo
echo "| server | background | req/s | p50 µs | p90 µs | p99 µs | p99 vs no background |"
echo "|---|---|---:|---:|---:|---:|---:|"
for c in "${configs[@]}"; do
    read -r mode bg <<<"$c"
    rps=$(col "$c" 1); p50=$(col "$c" 2); p90=$(col "$c" 3); p99=$(col "$c" 4)
    base=$(col "$mode 0" 4)
    ratio=$(awk -v a="$p99" -v b="$base" 'BEGIN {printf "%.2f", a / b}')
    label=$([ "$mode" = plain ] && echo "plain LocalSet" || echo "clockworker (Fg 8 / Bg 1)")
    load_label=$([ "$bg" = 0 ] && echo "none" || echo "$bg tasks")
    printf "| %s | %s | %.0f | %s | %s | %s | %s |\n" "$label" "$load_label" "$rps" "$p50" "$p90" "$p99" "$ratio"
done
