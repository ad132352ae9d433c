"""Example 1 with a processing-time trigger: `kill-after-2 PID` kills the server (SIGKILL) as
soon as two batches landed; `finish` starts the same query again and runs it to the end."""
import os
import signal
import sys
import time

from pyspark.sql import SparkSession

remote, mode = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.remote(remote).getOrCreate()
schema = "event_id string, timestamp timestamp, user_id int, event_type string, value double"
stream_df = spark.readStream.format("json").schema(schema).option("maxFilesPerTrigger", 1).load("./input/")
writer = stream_df.writeStream.format("delta").outputMode("append") \
    .option("checkpointLocation", "./checkpoints/raw")
if mode == "kill-after-2":
    # One batch per 250 ms: the kill lands after batch 2 with files still unread (at "0 seconds"
    # a fast server could read all of them before the client sees two batches).
    query = writer.trigger(processingTime="250 milliseconds").start("./data/events")
    while len(query.recentProgress) < 2:
        time.sleep(0.005)
    os.kill(int(sys.argv[3]), signal.SIGKILL)
else:
    query = writer.trigger(availableNow=True).start("./data/events")
    query.awaitTermination()
    assert query.exception() is None, query.exception()
    runs = {p["runId"] for p in query.recentProgress}
    assert query.runId in runs, "the restarted run had batches left"
