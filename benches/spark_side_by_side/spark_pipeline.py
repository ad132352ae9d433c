#!/usr/bin/env python3
"""One Spark Structured Streaming run of one pipeline, in a fresh Python + JVM process.

Used by benches/spark_side_by_side.sh (adapted from shared/spark-oracle/spark_bench.py).

    spark_pipeline.py --query NAME --mfpt N --input DIR --run-dir DIR [--static-table DELTA_DIR]

NAME is one of passthrough, aggregations, late-data, join (the seed's four queries, as in
shared/seed-spec.md) or orders (examples/orders/query.toml written with the DataFrame API).
Source: spark.readStream.format("json").schema(...).option("maxFilesPerTrigger", N).load(DIR),
trigger availableNow, checkpoint in RUN_DIR/ckpt, output Delta table RUN_DIR/out.

Spark's Delta jars (delta-spark) come from Maven at run time and cannot be had on this machine,
so every query writes its Delta table through foreachBatch with delta-rs (the `deltalake`
package of the oracle venv): append mode appends the micro-batch (one Delta commit per
non-empty batch); update mode (the seed's aggregations) is a MERGE by the grouping key
(foreachBatch + MERGE is also what a Spark user must write: Delta's own sink refuses update
mode). The static tables (users, customers) are Delta tables written by microbatch; Spark
reads their parquet files as listed by the table's Delta log.

Prints one line `RESULT {json}` on stdout: startup_s (SparkSession.getOrCreate), query_s
(writeStream.start() -> awaitTermination()), input_rows, batches, rows_written, delta_commits,
the peak RSS of the JVM and of the Python driver (VmHWM, KiB), process_s.
"""
import argparse
import json
import os
import shutil
import sys
import time

T_PROC = time.time()

EVENT_SCHEMA = "event_id STRING, timestamp TIMESTAMP, user_id INT, event_type STRING, value DOUBLE"
ORDER_SCHEMA = "order_id STRING, ts TIMESTAMP, customer STRING, amount DECIMAL(10,2), note STRING"


def vm_hwm_kb(pid):
    """Peak resident set size of a live process (VmHWM), KiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--query", required=True,
                   choices=["passthrough", "aggregations", "late-data", "join", "orders"])
    p.add_argument("--mfpt", type=int, required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--run-dir", required=True)
    p.add_argument("--static-table", default=None,
                   help="Delta table to join with: the users table (join) or customers (orders)")
    p.add_argument("--shuffle-partitions", type=int, default=2)
    p.add_argument("--driver-memory", default="6g")
    a = p.parse_args()

    from deltalake import DeltaTable, write_deltalake
    from pyspark.sql import SparkSession, functions as F

    shutil.rmtree(a.run_dir, ignore_errors=True)
    os.makedirs(a.run_dir)
    out = os.path.join(a.run_dir, "out")
    ckpt = os.path.join(a.run_dir, "ckpt")

    t0 = time.time()
    spark = (SparkSession.builder.master("local[2]").appName(f"sbs-{a.query}-{a.mfpt}")
             .config("spark.driver.memory", a.driver_memory)
             .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.shuffle.partitions", str(a.shuffle_partitions))
             .config("spark.sql.streaming.numRecentProgressUpdates", "100000")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.time() - t0

    def read_delta(path):
        # spark.read.format("delta").load(path) without the Delta jars: the parquet files the
        # table's current version lists
        files = DeltaTable(path).file_uris()
        return spark.read.parquet(*files)

    schema = ORDER_SCHEMA if a.query == "orders" else EVENT_SCHEMA
    src = (spark.readStream.format("json").schema(schema)
           .option("maxFilesPerTrigger", a.mfpt).load(os.path.abspath(a.input)))
    merge_keys = None
    if a.query == "passthrough":
        df, mode = src, "append"
    elif a.query == "aggregations":
        df = (src.withWatermark("timestamp", "10 minutes")
              .groupBy(F.window(F.col("timestamp"), "5 minutes"), F.col("event_type"))
              .agg(F.count("*").alias("event_count"), F.avg("value").alias("avg_value")))
        mode, merge_keys = "update", ["window", "event_type"]
    elif a.query == "late-data":
        df = (src.withWatermark("timestamp", "10 minutes")
              .groupBy(F.window(F.col("timestamp"), "5 minutes", "1 minute"), F.col("user_id"))
              .count())
        mode = "append"
    elif a.query == "join":
        users = read_delta(a.static_table)
        df, mode = src.join(users, "user_id"), "append"
    else:  # orders: examples/orders/query.toml
        customers = read_delta(a.static_table)
        df = (src.filter("amount > 0 AND (note IS NULL OR note NOT LIKE 'test%')")
              .join(customers, ["customer"], "inner")
              .withWatermark("ts", "10 minutes")
              .groupBy(F.expr("window(ts, '10 minutes')"), F.col("country"))
              .agg(F.expr("sum(amount) AS revenue"), F.expr("count(*) AS orders"),
                   F.expr("max(amount)")))
        mode = "append"

    written = {"rows": 0, "commits": 0}

    def to_delta(batch_df, batch_id):
        batches = batch_df._collect_as_arrow()
        rows = sum(b.num_rows for b in batches)
        if rows == 0:
            return
        import pyarrow as pa
        tbl = pa.Table.from_batches(batches)
        if merge_keys is None or not DeltaTable.is_deltatable(out):
            write_deltalake(out, tbl, mode="append")
        else:
            pred = " AND ".join(f"t.`{k}` = s.`{k}`" for k in merge_keys)
            (DeltaTable(out).merge(tbl, pred, source_alias="s", target_alias="t")
             .when_matched_update_all().when_not_matched_insert_all().execute())
        written["rows"] += rows
        written["commits"] += 1

    w = (df.writeStream.outputMode(mode).option("checkpointLocation", ckpt)
         .foreachBatch(to_delta).trigger(availableNow=True))
    t1 = time.time()
    q = w.start()
    q.awaitTermination()
    query_s = time.time() - t1
    if q.exception() is not None:
        raise SystemExit(f"query failed: {q.exception()}")
    prog = q.recentProgress
    jvm = spark.sparkContext._gateway.proc
    jvm_hwm_kb = vm_hwm_kb(jvm.pid)
    res = {
        "query": a.query, "mfpt": a.mfpt,
        "startup_s": round(startup, 3), "query_s": round(query_s, 3),
        "input_rows": sum(p["numInputRows"] for p in prog),
        "batches": len(prog), "rows_written": written["rows"], "delta_commits": written["commits"],
        "jvm_peak_rss_kb": jvm_hwm_kb, "python_peak_rss_kb": vm_hwm_kb("self"),
    }
    spark.stop()
    # end the JVM and reap it (closing its stdin is PySpark's way to end the gateway), so the
    # process's time includes the JVM's exit and /usr/bin/time sees the JVM as a child
    try:
        spark.sparkContext._gateway.shutdown()
    except Exception:
        pass
    jvm.stdin.close()
    try:
        jvm.wait(timeout=60)
    except Exception:
        jvm.kill()
        jvm.wait()
    res["process_s"] = round(time.time() - T_PROC, 3)
    print("RESULT " + json.dumps(res), flush=True)
    sys.stderr.flush()
    # delta-rs's runtime threads can abort the interpreter's teardown ("terminate called
    # without an active exception"); everything is written and the session stopped by now
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
