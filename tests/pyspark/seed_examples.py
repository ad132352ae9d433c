"""The seed's PySpark code (Streaming Configuration, Example 1-4, Monitoring & Querying) as a user
writes it, with `.remote(url)` added and the events' schema defined. Its relative paths
(./input, ./data, ./checkpoints) are the server's: it resolves them under its --root.

    python seed_examples.py sc://127.0.0.1:15002

So that the file ends, Examples 1 and 3 get `.trigger(availableNow=True)` and wait with
`awaitTermination()`; Examples 2 and 4 keep the seed's default trigger and are waited for with
`processAllAvailable()`, then stopped. The seed assigns every query to `query`; the only lines
added to the examples keep a name for each (`raw = query`, ...) so the monitoring can look at
all four. What the monitoring calls returned is printed last, as one line `REPORT {json}`, for
test_seed.py to check; show() and printSchema() print as they do for a user.
"""
import contextlib
import io
import json
import sys

from pyspark.sql import SparkSession
from pyspark.sql.types import (DoubleType, IntegerType, StringType, StructField, StructType,
                               TimestampType)

url = sys.argv[1] if len(sys.argv) > 1 else "sc://localhost:15002"

# Streaming Configuration
spark = SparkSession.builder \
    .remote(url) \
    .appName("StreamingDemo") \
    .config("spark.jars.packages", "io.delta:delta-core_2.12:2.4.0") \
    .config("spark.sql.extensions",
            "io.delta.sql.DeltaSparkSessionExtensions") \
    .config("spark.sql.catalog.spark_catalog",
            "org.apache.spark.sql.delta.catalog.DeltaCatalog") \
    .config("spark.sql.streaming.checkpointLocation", "./checkpoints") \
    .getOrCreate()

# The generator's events (the seed's Data Generator), as microbatch's CLI reads them.
schema = StructType([
    StructField("event_id", StringType()),
    StructField("timestamp", TimestampType()),
    StructField("user_id", IntegerType()),
    StructField("event_type", StringType()),
    StructField("value", DoubleType()),
])

# ### Example 1: Simple Pass-Through
# Read stream
stream_df = spark.readStream \
    .format("json") \
    .schema(schema) \
    .option("maxFilesPerTrigger", 1) \
    .load("./input/")

# Write to Delta
query = stream_df.writeStream \
    .format("delta") \
    .outputMode("append") \
    .option("checkpointLocation", "./checkpoints/raw") \
    .trigger(availableNow=True) \
    .start("./data/events")

query.awaitTermination()
raw = query

# ### Example 2: Windowed Aggregations
from pyspark.sql.functions import window, col, count, avg  # noqa: E402

# Tumbling window (5 minutes)
windowed = stream_df \
    .withWatermark("timestamp", "10 minutes") \
    .groupBy(
        window(col("timestamp"), "5 minutes"),
        col("event_type")
    ) \
    .agg(
        count("*").alias("event_count"),
        avg("value").alias("avg_value")
    )

# Write aggregates
query = windowed.writeStream \
    .format("delta") \
    .outputMode("update") \
    .option("checkpointLocation", "./checkpoints/agg") \
    .start("./data/event_aggregates")
agg = query

# ### Example 3: Late Data Handling
# Watermark allows late data up to 10 minutes
stream_with_watermark = stream_df \
    .withWatermark("timestamp", "10 minutes") \
    .groupBy(
        window(col("timestamp"), "5 minutes", "1 minute"),  # Sliding window
        col("user_id")
    ) \
    .count()

query = stream_with_watermark.writeStream \
    .format("delta") \
    .outputMode("append") \
    .option("checkpointLocation", "./checkpoints/late") \
    .trigger(availableNow=True) \
    .start("./data/user_activity")
late = query

# ### Example 4: Stream-Static Join
# Static dimension table
users_df = spark.read.format("delta").load("./data/users")

# Join stream with static data
enriched = stream_df.join(users_df, "user_id")

query = enriched.writeStream \
    .format("delta") \
    .outputMode("append") \
    .option("checkpointLocation", "./checkpoints/enriched") \
    .start("./data/enriched_events")
join = query

# ---- waiting for the four (not in the seed: its queries run until stopped) ----
active_ids = sorted(q.id for q in spark.streams.active)
agg_active_before = agg.isActive
agg_wait_running = agg.awaitTermination(0.5)  # a running query: False after the timeout
agg.processAllAvailable()
join.processAllAvailable()
late_finished = late.awaitTermination()  # availableNow ends by itself; None without a timeout
raw_wait_finished = raw.awaitTermination(5)  # a finished query: True at once
agg_status_running = agg.status
agg_last = agg.lastProgress
late_last = late.lastProgress
exceptions = [None if q.exception() is None else str(q.exception())
              for q in (raw, agg, late, join)]

# ### Monitoring & Querying
# Query streaming table
current_data = spark.read.format("delta").load("./data/events")
shown = io.StringIO()
with contextlib.redirect_stdout(shown):
    current_data.show()
sys.stdout.write(shown.getvalue())

# View streaming query status
status = query.status

# View recent progress
recent = query.recentProgress

# Stop query
query.stop()

agg_recent = agg.recentProgress
agg.stop()

tree = io.StringIO()
with contextlib.redirect_stdout(tree):
    current_data.printSchema()
sys.stdout.write(tree.getvalue())

rows = current_data.collect()
pdf = current_data.toPandas()
report = {
    "spark_version": spark.version,
    "ids": {"raw": raw.id, "agg": agg.id, "late": late.id, "join": join.id},
    "run_ids": {"raw": raw.runId, "agg": agg.runId, "late": late.runId, "join": join.runId},
    "names": [raw.name, agg.name, late.name, join.name],
    "active_ids": active_ids,
    "active_after_stop": [q.id for q in spark.streams.active],
    "agg_active_before": agg_active_before,
    "agg_wait_running": agg_wait_running,
    "late_finished": late_finished,
    "raw_wait_finished": raw_wait_finished,
    "is_active_after": [q.isActive for q in (raw, agg, late, join)],
    "exceptions": exceptions,
    "exceptions_after_stop": [None if q.exception() is None else str(q.exception())
                              for q in (raw, agg, late, join)],
    "show": shown.getvalue(),
    "print_schema": tree.getvalue(),
    "status": status,
    "status_raw_finished": raw.status,
    "status_agg_running": agg_status_running,
    "status_agg_stopped": agg.status,
    "progress": {"raw": raw.recentProgress, "agg": agg_recent, "late": late.recentProgress,
                 "join": recent},
    "last_progress": {"agg": agg_last, "late": late_last, "join": join.lastProgress},
    "count": int(current_data.count()),  # numpy.int64 in the Connect client
    "columns": current_data.columns,
    "is_streaming": [current_data.isStreaming, stream_df.isStreaming],
    "collect_len": len(rows),
    "collect_keys": sorted(rows[0].asDict()) if rows else None,
    "collect_types": {k: type(v).__name__ for k, v in rows[0].asDict().items()} if rows else None,
    "pandas_len": len(pdf),
    "pandas_columns": list(pdf.columns),
    "pandas_dtypes": {c: str(t) for c, t in pdf.dtypes.items()},
    "collect_ids": sorted(r["event_id"] for r in rows),
}
print("REPORT " + json.dumps(report, default=str))
