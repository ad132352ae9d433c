#!/usr/bin/env bash
# Spark 3.5.9 and microbatch side by side, on the same input, in one go.
#
#   benches/spark_side_by_side.sh [--files 100] [--events 10000] [--runs 3] [--mfpt 1,100]
#                                 [--only passthrough,aggregations,late-data,join,orders]
#                                 [--work DIR] [--seed 7] [--table-only]
#   --table-only: print the table again from WORK/results.tsv (e.g. of an interrupted run)
#
# Input: `microbatch generate --batches FILES --events-per-batch EVENTS --seed SEED --users`
# (default 100 x 10,000 events, 115 MB: the README's reference input) and, for the orders
# pipeline (examples/orders/query.toml, the README's "Your own pipeline"), FILES x EVENTS orders
# from benches/spark_side_by_side/gen_orders.py with its customers table loaded by
# `microbatch load-table`.
#
# Each configuration (query x maxFilesPerTrigger) runs RUNS times per engine, in RUNS rounds over
# all configurations, alternating microbatch and Spark, each run a fresh process on a fresh output table and checkpoint,
# trigger availableNow. Measured: the wall time of the whole process (and its peak RSS, from
# /usr/bin/time -v) for both; for Spark also the query time alone (writeStream.start() to
# awaitTermination(), i.e. without the JVM's start and SparkSession creation). The best of the
# RUNS is reported. Spark runs from benches/spark_side_by_side/spark_pipeline.py (local[2],
# spark.sql.shuffle.partitions 2, Delta output through foreachBatch + delta-rs: see that file).
#
# Stdout: a Markdown table (the README's), with the date, commit and machine. Everything else
# goes to stderr; the runs' details are kept in WORK/results.tsv and WORK/runs/.
#
# Needs: the release binary (${MICROBATCH_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/microbatch-target}/release/microbatch};
# this script does not build it), Java 17, and the Spark oracle beside the repository
# (../shared/spark-oracle/setup.sh, or SPARK_ORACLE_DIR), whose setup.sh makes the virtualenv
# ORACLE_VENV (default $HOME/oracle-venv) with pyspark 3.5.9 and deltalake.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPERS="$REPO/benches/spark_side_by_side"
FILES=100
EVENTS=10000
RUNS=3
MFPTS=1,100
ONLY=passthrough,aggregations,late-data,join,orders
WORK=/tmp/microbatch-sbs
SEED=7
TABLE_ONLY=0

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }
die() { echo "spark_side_by_side: $*" >&2; exit 1; }
log() { echo "[sbs $(date -u +%H:%M:%S)] $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --files) FILES="$2"; shift 2 ;;
    --events) EVENTS="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --mfpt) MFPTS="$2"; shift 2 ;;
    --only) ONLY="$2"; shift 2 ;;
    --work) WORK="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --table-only) TABLE_ONLY=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "spark_side_by_side: unknown argument '$1'" >&2; usage 2 ;;
  esac
done
for n in "$FILES" "$EVENTS" "$RUNS" "$SEED"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || { echo "spark_side_by_side: '$n' is not a positive integer" >&2; exit 2; }
done
IFS=, read -r -a QUERIES <<<"$ONLY"
for q in "${QUERIES[@]}"; do
  case "$q" in passthrough|aggregations|late-data|join|orders) ;;
    *) echo "spark_side_by_side: unknown query '$q' (passthrough, aggregations, late-data, join, orders)" >&2; exit 2 ;;
  esac
done
IFS=, read -r -a MFPT_LIST <<<"$MFPTS"
for n in "${MFPT_LIST[@]}"; do
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || { echo "spark_side_by_side: --mfpt wants positive integers, got '$n'" >&2; exit 2; }
done

MB="${MICROBATCH_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/microbatch-target}/release/microbatch}"
[ -x "$MB" ] || die "no microbatch binary at $MB: build it with 'cargo build --release' or set MICROBATCH_BIN"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time): it gives the peak RSS"
ORACLE="${SPARK_ORACLE_DIR:-$REPO/../shared/spark-oracle}"
[ -f "$ORACLE/setup.sh" ] || die "the Spark oracle is not at $ORACLE (../shared/spark-oracle/setup.sh beside the repository); set SPARK_ORACLE_DIR to its folder"
export ORACLE_VENV="${ORACLE_VENV:-$HOME/oracle-venv}"
PY="$ORACLE_VENV/bin/python"
IN="$WORK/input_${FILES}x${EVENTS}_s${SEED}"
ROWS=$((FILES * EVENTS))
RUNS_DIR="$WORK/runs"
RESULTS="$WORK/results.tsv"
if [ "$TABLE_ONLY" = 0 ]; then
log "Spark oracle venv $ORACLE_VENV (setup.sh: created or checked)"
bash "$ORACLE/setup.sh" >&2 || die "$ORACLE/setup.sh failed"

# ---- input (made once per size and seed, kept in WORK) ----
if [ ! -f "$IN/.ok" ]; then
  log "generating $FILES files x $EVENTS events and orders into $IN"
  rm -rf "$IN"
  mkdir -p "$IN/data"
  "$MB" generate --input "$IN/events" --batches "$FILES" --events-per-batch "$EVENTS" \
    --seed "$SEED" --users "$IN/data" >&2
  "$PY" "$HELPERS/gen_orders.py" --out-dir "$IN/orders" --customers "$IN/customers.jsonl" \
    --files "$FILES" --orders "$EVENTS" --seed "$SEED"
  "$MB" load-table "$IN/data/customers" "$IN/customers.jsonl" \
    --schema "customer STRING, country STRING, tier STRING" >&2
  touch "$IN/.ok"
fi
log "input: $(du -sh "$IN/events" | cut -f1) of events, $(du -sh "$IN/orders" | cut -f1) of orders, $ROWS rows each"

mkdir -p "$RUNS_DIR"
printf 'engine\tquery\tmfpt\trun\twall_s\tpeak_rss_kb\tquery_s\tstartup_s\toutput_rows\n' >"$RESULTS"

# output table of each query, under the run's data folder
table_of() {
  case "$1" in
    passthrough) echo events ;; aggregations) echo event_aggregates ;;
    late-data) echo user_activity ;; join) echo enriched_events ;; orders) echo orders_by_country ;;
  esac
}

count_rows() {  # rows of a Delta table (0 when there is none)
  "$PY" - "$1" <<'EOF'
import sys
from deltalake import DeltaTable
p = sys.argv[1]
print(len(DeltaTable(p).to_pyarrow_table()) if DeltaTable.is_deltatable(p) else 0, flush=True)
import os
os._exit(0)  # delta-rs's runtime threads can abort the interpreter's teardown
EOF
}

now() { date +%s.%N; }
rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

run_microbatch() {  # query mfpt run
  local q="$1" n="$2" r="$3" d="$RUNS_DIR/mb_${1}_$2"
  rm -rf "$d"; mkdir -p "$d/data"
  local cmd
  if [ "$q" = orders ]; then
    cat >"$d/query.toml" <<EOF
# examples/orders/query.toml with this run's paths and maxFilesPerTrigger
name = "orders_by_country"

[source]
path = "$IN/orders"
schema = "order_id STRING, ts TIMESTAMP, customer STRING, amount DECIMAL(10,2), note STRING"
max_files_per_trigger = $n

[[op]]
filter = "amount > 0 AND (note IS NULL OR note NOT LIKE 'test%')"

[[op]]
join = { table = "$IN/data/customers", on = ["customer"], how = "inner" }

[[op]]
watermark = { column = "ts", delay = "10 minutes" }

[[op]]
group_by = ["window(ts, '10 minutes')", "country"]
agg = ["sum(amount) AS revenue", "count(*) AS orders", "max(amount)"]

[sink]
path = "$d/data/orders_by_country"
output_mode = "append"
checkpoint = "$d/checkpoints/orders_by_country"
trigger = "available-now"
EOF
    cmd=("$MB" run "$d/query.toml")
  else
    [ "$q" = join ] && cp -r "$IN/data/users" "$d/data/users"
    cmd=("$MB" run "$q" --input "$IN/events" --data "$d/data" --checkpoints "$d/checkpoints"
         --max-files-per-trigger "$n" --trigger available-now)
  fi
  local t0 t1 rc=0
  t0=$(now)
  /usr/bin/time -v -o "$d/time.txt" "${cmd[@]}" >"$d/stdout" 2>"$d/stderr" || rc=$?
  t1=$(now)
  [ "$rc" -eq 0 ] || die "microbatch $q mfpt $n failed (exit $rc): $(tail -5 "$d/stderr")"
  local wall rows
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  rows=$(count_rows "$d/data/$(table_of "$q")")
  printf 'microbatch\t%s\t%s\t%s\t%s\t%s\t\t\t%s\n' "$q" "$n" "$r" "$wall" "$(rss_kb "$d/time.txt")" "$rows" >>"$RESULTS"
  log "microbatch $q mfpt $n run $r: ${wall}s, peak RSS $(rss_kb "$d/time.txt") KB, $rows rows out"
}

run_spark() {  # query mfpt run
  local q="$1" n="$2" r="$3" d="$RUNS_DIR/spark_${1}_$2"
  rm -rf "$d"; mkdir -p "$d"
  local input="$IN/events" static=()
  [ "$q" = join ] && static=(--static-table "$IN/data/users")
  [ "$q" = orders ] && { input="$IN/orders"; static=(--static-table "$IN/data/customers"); }
  local t0 t1 rc=0
  t0=$(now)
  /usr/bin/time -v -o "$d/time.txt" "$PY" "$HELPERS/spark_pipeline.py" --query "$q" --mfpt "$n" \
    --input "$input" --run-dir "$d/run" "${static[@]}" >"$d/stdout" 2>"$d/stderr" || rc=$?
  t1=$(now)
  [ "$rc" -eq 0 ] || die "Spark $q mfpt $n failed (exit $rc): $(tail -5 "$d/stderr")"
  local wall res
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  res=$(grep '^RESULT ' "$d/stdout" | tail -1 | cut -c8-)
  [ -n "$res" ] || die "Spark $q mfpt $n printed no RESULT line (see $d/stdout, $d/stderr)"
  local qs ss rss rows
  # peak RSS: the JVM's and the Python driver's own peaks added (two processes)
  read -r qs ss rss < <("$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["query_s"], r["startup_s"], r["jvm_peak_rss_kb"] + r["python_peak_rss_kb"])' "$res")
  rows=$(count_rows "$d/run/out")
  printf 'spark\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$q" "$n" "$r" "$wall" "$rss" "$qs" "$ss" "$rows" >>"$RESULTS"
  log "Spark      $q mfpt $n run $r: ${wall}s (query ${qs}s, session start ${ss}s), peak RSS $rss KB (JVM + Python; /usr/bin/time: $(rss_kb "$d/time.txt") KB), $rows rows out"
}

# round after round over every configuration (so an interrupted run still covers all of them:
# --table-only prints what it has)
for r in $(seq 1 "$RUNS"); do
  for q in "${QUERIES[@]}"; do
    for n in "${MFPT_LIST[@]}"; do
      run_microbatch "$q" "$n" "$r"
      run_spark "$q" "$n" "$r"
    done
  done
done
else
  [ -f "$RESULTS" ] || die "--table-only: no $RESULTS"
  [ -x "$PY" ] || die "--table-only: no $PY"
fi

# ---- the table ----
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
"$PY" - "$RESULTS" "$ROWS" "$FILES" "$EVENTS" "$RUNS" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
  "$(nproc)" "$MEM" "$CPU" "$COMMIT" "$(du -sh "$IN/events" | cut -f1)" <<'EOF'
import csv, sys
path, rows, files, events, runs, date, ncpu, mem, cpu, commit, size = sys.argv[1:]
rows = int(rows)
recs = list(csv.DictReader(open(path), delimiter="\t"))
order = []
best = {}
for r in recs:
    key = (r["query"], int(r["mfpt"]))
    if key not in order:
        order.append(key)
    b = best.setdefault(key, {})
    e = r["engine"]
    b.setdefault(e + "_wall", []).append(float(r["wall_s"]))
    b.setdefault(e + "_rss", []).append(int(r["peak_rss_kb"]))
    b.setdefault(e + "_rows", set()).add(int(r["output_rows"]))
    if e == "spark":
        b.setdefault("spark_query", []).append(float(r["query_s"]))

def secs(s):
    return f"{s:.2f} s"

def rate(s):
    v = rows / s
    return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s"

def mib(kb):
    return f"{kb / 1024:.0f} MiB"

done = min(min(len(b["microbatch_wall"]), len(b["spark_wall"])) for b in best.values())
best_of = f"{done} (of {runs} asked)" if done < int(runs) else runs
print(f"Spark 3.5.9 and microbatch side by side, {date}, commit {commit}: "
      f"{ncpu} cores ({cpu}), {mem}; input {files} files x {events} events ({size}), "
      f"best of {best_of} whole-process runs each, trigger availableNow, output Delta tables "
      f"(`benches/spark_side_by_side.sh --files {files} --events {events} --runs {runs}`).")
print()
print("| query | maxFilesPerTrigger | microbatch | events/s | peak RSS | Spark, whole process | "
      "events/s | Spark, query only | events/s | peak RSS | ratio (whole process) | "
      "ratio (Spark query only) | rows out |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for key in order:
    b = best[key]
    mw, sw, sq = min(b["microbatch_wall"]), min(b["spark_wall"]), min(b["spark_query"])
    mr, sr = b["microbatch_rows"], b["spark_rows"]
    out = (f"{next(iter(mr))}" if mr == sr and len(mr) == 1
           else f"differ: microbatch {sorted(mr)}, Spark {sorted(sr)}")
    print(f"| {key[0]} | {key[1]} | {secs(mw)} | {rate(mw)} | {mib(min(b['microbatch_rss']))} | "
          f"{secs(sw)} | {rate(sw)} | {secs(sq)} | {rate(sq)} | {mib(min(b['spark_rss']))} | "
          f"**{sw / mw:.0f}×** | {sq / mw:.0f}× | {out} |")
EOF
