"""Plans Spark rejects raise the client's AnalysisException with a message naming what is wrong;
a path outside --root is refused; after each error the session, and a new session, still run
queries, and the server is alive. With --token (over TLS: PySpark sends a token only there),
a client without the right token is refused and one with it works."""
import os
import subprocess
from pathlib import Path

import pytest
from pyspark.errors import AnalysisException
from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql import SparkSession
from pyspark.sql.functions import col, count, expr

from conftest import HERE, SCHEMA_DDL, generate, run_client

BATCHES, EVENTS = 3, 100


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    generate(r, BATCHES, EVENTS)
    return r


def stream(spark):
    return spark.readStream.format("json").schema(SCHEMA_DDL) \
        .option("maxFilesPerTrigger", 1).load("./input/")


def to_delta(df, name, mode="append"):
    return df.writeStream.format("delta").outputMode(mode) \
        .option("checkpointLocation", f"./checkpoints/{name}").start(f"./data/{name}")


def unknown_column_batch(spark):
    spark.read.format("delta").load("./data/users").select("nope").collect()


def unknown_column_stream(spark):
    to_delta(stream(spark).select(col("event_id"), col("nope")), "e_col")


def unknown_column_in_filter_string(spark):
    to_delta(stream(spark).filter("nope > 1"), "e_filter")


def unknown_function_batch(spark):
    spark.read.format("delta").load("./data/users").select(expr("frobnicate(name)")).collect()


def unknown_function_stream(spark):
    to_delta(stream(spark).selectExpr("event_id", "frobnicate(value) AS f"), "e_fun")


def append_aggregation_without_watermark(spark):
    to_delta(stream(spark).groupBy("event_type").agg(count("*").alias("n")), "e_append")


def read_outside_root(spark):
    spark.read.format("delta").load("/etc").collect()


def read_stream_outside_root(spark):
    to_delta(spark.readStream.format("json").schema(SCHEMA_DDL).load("../"), "e_outside")


def write_outside_root(spark):
    stream(spark).writeStream.format("delta") \
        .option("checkpointLocation", "./checkpoints/e_out").start("../outside_table")


def checkpoint_outside_root(spark):
    stream(spark).writeStream.format("delta") \
        .option("checkpointLocation", "../outside_checkpoint").start("./data/e_cp")


# (the user's mistake, exception types, texts the message must hold (lowercased), tables or
# folders that must not have been written)
CASES = {
    "unknown column (batch select)": (unknown_column_batch, (AnalysisException,), ["nope"], []),
    "unknown column (stream select)": (unknown_column_stream, (AnalysisException,), ["nope"],
                                       ["data/e_col"]),
    "unknown column (filter string)": (unknown_column_in_filter_string, (AnalysisException,),
                                       ["nope"], ["data/e_filter"]),
    "unknown function (batch)": (unknown_function_batch, (AnalysisException,), ["frobnicate"], []),
    "unknown function (stream)": (unknown_function_stream, (AnalysisException,), ["frobnicate"],
                                  ["data/e_fun"]),
    "streaming aggregation, append, no watermark": (
        append_aggregation_without_watermark, (AnalysisException,),
        ["append output mode not supported", "watermark"], ["data/e_append"]),
    "read outside the root": (read_outside_root, (AnalysisException, SparkConnectGrpcException),
                              ["root"], []),
    "stream from outside the root": (read_stream_outside_root,
                                     (AnalysisException, SparkConnectGrpcException), ["root"],
                                     ["data/e_outside"]),
    "table outside the root": (write_outside_root, (AnalysisException, SparkConnectGrpcException),
                               ["root"], ["../outside_table", "checkpoints/e_out"]),
    "checkpoint outside the root": (checkpoint_outside_root,
                                    (AnalysisException, SparkConnectGrpcException), ["root"],
                                    ["../outside_checkpoint", "data/e_cp"]),
}


def still_works(url, spark, root: Path, tag: str):
    """The session that saw the error still reads; a new session runs a streaming query."""
    assert spark.read.format("delta").load("./data/users").count() == 980, \
        "the session that saw the error no longer reads the users table"
    other = SparkSession.builder.remote(url).create()
    assert other.client._session_id != spark.client._session_id, "create() made a new session"
    q = stream(other).writeStream.format("delta") \
        .option("checkpointLocation", f"./checkpoints/ok_{tag}") \
        .trigger(availableNow=True).start(f"./data/ok_{tag}")
    q.awaitTermination()
    assert q.exception() is None, f"a new session's query failed: {q.exception()}"
    n = other.read.format("delta").load(f"./data/ok_{tag}").count()
    assert n == BATCHES * EVENTS, f"a new session's query wrote {n} rows"
    assert (root / "data" / f"ok_{tag}" / "_delta_log").is_dir()
    other.stop()


@pytest.mark.parametrize("case", list(CASES))
def test_error_then_the_server_goes_on(case, root, serve):
    server = serve(root)
    f, types, texts, unwritten = CASES[case]
    spark = SparkSession.builder.remote(server.url).create()
    try:
        with pytest.raises(SparkConnectGrpcException) as e:
            f(spark)
        assert isinstance(e.value, types), \
            f"{case}: {type(e.value).__name__} instead of {[t.__name__ for t in types]}: {e.value}"
        msg = str(e.value).lower()
        missing = [t for t in texts if t not in msg]
        assert not missing, f"{case}: the message lacks {missing}: {e.value}"
        for p in unwritten:
            assert not (root / p).exists(), f"{case}: the refused request wrote {p}"
        assert [q.id for q in spark.streams.active] == [], \
            f"{case}: a refused query is listed as active"
        assert server.alive(), f"{case}: the server died:\n{server.tail()}"
        still_works(server.url, spark, root, "after")
        assert server.alive(), f"the server died:\n{server.tail()}"
    finally:
        spark.stop()


def test_errors_in_a_row_in_one_session(root, serve):
    """Every mistake one after the other in one session, then it and a new one still work."""
    server = serve(root)
    spark = SparkSession.builder.remote(server.url).create()
    try:
        for case, (f, types, _, _) in CASES.items():
            with pytest.raises(types):
                f(spark)
        still_works(server.url, spark, root, "row")
    finally:
        spark.stop()
    assert not (root.parent / "outside_table").exists()
    assert not (root.parent / "outside_checkpoint").exists()


def test_a_token_is_required(root, serve, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = serve(root, "--token", "s3cret", "--tls-cert", str(cert), "--tls-key", str(key))
    # gRPC reads the roots it trusts when it starts: the clients are processes of their own.
    env = dict(os.environ, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(cert))
    base = f"sc://localhost:{server.port}"
    cases = {"no token": f"{base}/;use_ssl=true", "wrong token": f"{base}/;token=wrong",
             "right token": f"{base}/;token=s3cret"}
    got = {}
    for what, url in cases.items():
        out = run_client(HERE / "token_client.py", url, cwd=tmp_path, env=env, timeout=120)
        got[what] = out.strip().splitlines()[-1]
    assert got["right token"] == "ok 980", f"with the token: {got['right token']}"
    for what in ("no token", "wrong token"):
        assert got[what].startswith("refused"), f"{what}: {got[what]}"
        assert "unauthenticated" in got[what].lower() or "token" in got[what].lower(), got[what]
    assert server.alive()
