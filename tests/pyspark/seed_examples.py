"""The seed's PySpark code (../../../shared/seed-spec.md), as a user writes it, with only
`.remote(...)` added and the events' schema defined. Run from the folder the server serves:

    python seed_examples.py sc://127.0.0.1:15002

Example 1 gets `.trigger(availableNow=True)` so that its `awaitTermination()` returns; the other
examples run with the default trigger, as the seed has them, until `processAllAvailable()`.
Prints one JSON line of what the monitoring calls returned, for the test to check.
"""
import json
import sys

from pyspark.sql import SparkSession
from pyspark.sql.functions import avg, col, count, window
from pyspark.sql.types import (DoubleType, IntegerType, StringType, StructField, StructType,
                               TimestampType)

remote = sys.argv[1] if len(sys.argv) > 1 else "sc://localhost:15002"

spark = SparkSession.builder \
    .remote(remote) \
    .appName("StreamingDemo") \
    .config("spark.jars.packages", "io.delta:delta-core_2.12:2.4.0") \
    .config("spark.sql.extensions",
            "io.delta.sql.DeltaSparkSessionExtensions") \
    .config("spark.sql.catalog.spark_catalog",
            "org.apache.spark.sql.delta.catalog.DeltaCatalog") \
    .config("spark.sql.streaming.checkpointLocation", "./checkpoints") \
    .getOrCreate()

schema = StructType([
    StructField("event_id", StringType()),
    StructField("timestamp", TimestampType()),
    StructField("user_id", IntegerType()),
    StructField("event_type", StringType()),
    StructField("value", DoubleType()),
])

# Example 1: Simple Pass-Through
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

# Example 2: Windowed Aggregations
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
query2 = windowed.writeStream \
    .format("delta") \
    .outputMode("update") \
    .option("checkpointLocation", "./checkpoints/agg") \
    .start("./data/event_aggregates")

# Example 3: Late Data Handling
# Watermark allows late data up to 10 minutes
stream_with_watermark = stream_df \
    .withWatermark("timestamp", "10 minutes") \
    .groupBy(
        window(col("timestamp"), "5 minutes", "1 minute"),  # Sliding window
        col("user_id")
    ) \
    .count()

query3 = stream_with_watermark.writeStream \
    .format("delta") \
    .outputMode("append") \
    .option("checkpointLocation", "./checkpoints/late") \
    .start("./data/user_activity")

# Example 4: Stream-Static Join
# Static dimension table
users_df = spark.read.format("delta").load("./data/users")

# Join stream with static data
enriched = stream_df.join(users_df, "user_id")

query4 = enriched.writeStream \
    .format("delta") \
    .outputMode("append") \
    .option("checkpointLocation", "./checkpoints/enriched") \
    .start("./data/enriched_events")

active = sorted(q.id for q in spark.streams.active)
for q in (query2, query3, query4):
    q.processAllAvailable()

# Monitoring & Querying
# Query streaming table
current_data = spark.read.format("delta").load("./data/events")
current_data.show()
current_data.printSchema()

# View streaming query status
status = query2.status

# View recent progress
progress = query2.recentProgress
last = query3.lastProgress
was_active = query4.isActive
finished_in_time = query4.awaitTermination(0.1)

# Stop query
for q in (query2, query3, query4):
    q.stop()

print(json.dumps({
    "active": active,
    "ids": [q.id for q in (query2, query3, query4)],
    "status": status,
    "recent_progress": progress,
    "last_progress": last,
    "was_active": was_active,
    "finished_in_time": finished_in_time,
    "active_after_stop": [q.isActive for q in (query, query2, query3, query4)],
    "exceptions": [None if q.exception() is None else str(q.exception()) for q in (query2, query3, query4)],
    "events_count": current_data.count(),
    "events_columns": current_data.columns,
    "schema_tree": current_data._tree_string(),
    "first_rows": [r.asDict() for r in current_data.orderBy("event_id").limit(2).collect()],
    "pandas_rows": len(current_data.toPandas()),
}, default=str))
