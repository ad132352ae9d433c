"""The token test's client: the right token works, a wrong one and none are refused."""
import sys

from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql import SparkSession

base = sys.argv[1]


def users(url):
    try:
        return SparkSession.builder.remote(url).create().read.format("delta").load("./data/users").count()
    except SparkConnectGrpcException as e:
        assert "UNAUTHENTICATED" in str(e) or "bearer token" in str(e), str(e)
        return "refused"


print(f"right token: {users(base + '/;token=s3cret')} | wrong token: {users(base + '/;token=wrong')}"
      f" | no token: {users(base + '/;use_ssl=true')}")
