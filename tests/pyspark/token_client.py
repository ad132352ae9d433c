"""test_errors.py's token client: `python token_client.py URL` prints `ok <users>` when the
server answers, `refused <exception>: <message>` when it refuses (on one line)."""
import sys

from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql import SparkSession

try:
    spark = SparkSession.builder.remote(sys.argv[1]).create()
    n = spark.read.format("delta").load("./data/users").count()
    print(f"ok {n}")
except SparkConnectGrpcException as e:
    print(f"refused {type(e).__name__}: " + " ".join(str(e).split()))
