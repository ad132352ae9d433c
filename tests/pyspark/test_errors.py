"""Plans Spark rejects raise the client's AnalysisException with a message naming what is wrong;
a path outside --root is refused; after each error the session, and a new session, still run
queries, and the server is alive. With --token (over TLS: PySpark sends a token only there),
a client without the right token is refused and one with it works."""
import os
import subprocess
from pathlib import Path

import pytest
from pyspark.errors import AnalysisException, StreamingQueryException
from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql.functions import col, count, expr, udf

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


def stream_without_schema(spark):
    to_delta(spark.readStream.format("json").load("./input"), "e_noschema")


def show_of_a_stream(spark):
    stream(spark).show()


def spark_sql(spark):
    spark.sql("select 1").collect()


def sample(spark):
    spark.read.format("delta").load("./data/users").sample(0.5).collect()


def python_udf(spark):
    spark.read.format("delta").load("./data/users").select(udf(lambda x: x)("name")).collect()


def missing_table(spark):
    spark.read.format("delta").load("./data/nothing").collect()


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
    # Spark's own messages for these; the last four are what this server does not serve.
    "stream without a schema": (stream_without_schema, (AnalysisException,),
                                ["schema must be specified"], ["data/e_noschema"]),
    "show() of a stream": (show_of_a_stream, (AnalysisException,), ["writestream.start()"], []),
    "a missing table": (missing_table, (AnalysisException,), ["not a delta table"], []),
    "spark.sql (not served)": (spark_sql, (AnalysisException,), ["spark.sql"], []),
    "sample (not served)": (sample, (AnalysisException,), ["sample"], []),
    "a Python UDF (not served)": (python_udf, (AnalysisException,), ["udf"], []),
}


def still_works(url, spark, new_session, root: Path, tag: str):
    """The session that saw the error still reads; a new session runs a streaming query."""
    assert spark.read.format("delta").load("./data/users").count() == 980, \
        "the session that saw the error no longer reads the users table"
    other = new_session(url)
    assert other.client._session_id != spark.client._session_id, "create() made a new session"
    q = stream(other).writeStream.format("delta") \
        .option("checkpointLocation", f"./checkpoints/ok_{tag}") \
        .trigger(availableNow=True).start(f"./data/ok_{tag}")
    q.awaitTermination()
    assert q.exception() is None, f"a new session's query failed: {q.exception()}"
    n = other.read.format("delta").load(f"./data/ok_{tag}").count()
    assert n == BATCHES * EVENTS, f"a new session's query wrote {n} rows"
    assert (root / "data" / f"ok_{tag}" / "_delta_log").is_dir()


@pytest.mark.parametrize("case", list(CASES))
def test_error_then_the_server_goes_on(case, root, serve, session):
    server = serve(root)
    f, types, texts, unwritten = CASES[case]
    spark = session(server.url)
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
    still_works(server.url, spark, session, root, "after")
    assert server.alive(), f"the server died:\n{server.tail()}"


def test_errors_in_a_row_while_another_sessions_query_runs(root, serve, session):
    """Every mistake one after the other in one session while another session's query runs
    (default trigger); that query goes through all the input, and both sessions still work."""
    server = serve(root)
    spark, other = session(server.url), session(server.url)
    running = to_delta(stream(other), "running")
    for case, (f, types, _, _) in CASES.items():
        with pytest.raises(types):
            f(spark)
    running.processAllAvailable()
    assert running.isActive and running.exception() is None, running.exception()
    assert other.read.format("delta").load("./data/running").count() == BATCHES * EVENTS
    assert [q.id for q in other.streams.active] == [running.id]
    assert spark.streams.active == [], "sessions' queries are their own"
    running.stop()
    still_works(server.url, spark, session, root, "row")
    assert not (root.parent / "outside_table").exists()
    assert not (root.parent / "outside_checkpoint").exists()


def test_a_failed_query_raises_streaming_query_exception(root, serve, session):
    server = serve(root)
    spark = session(server.url)
    # Two queries on one checkpoint: the second cannot take it.
    w = lambda: stream(spark).writeStream.format("delta") \
        .option("checkpointLocation", "./checkpoints/same")
    first = w().start("./data/first")
    with pytest.raises(AnalysisException) as e:
        w().start("./data/second")
    assert "checkpoint" in str(e.value).lower(), str(e.value)
    first.stop()
    # FAILFAST: a malformed line fails the query; awaitTermination raises, exception() says why.
    (root / "bad").mkdir()
    (root / "bad" / "x.json").write_text(
        '{"event_id": "a", "timestamp": "2026-11-24T10:00:00", "user_id": 1, '
        '"event_type": "click", "value": 1.0}\nnot json\n')
    q = spark.readStream.format("json").schema(SCHEMA_DDL).option("mode", "FAILFAST") \
        .load("./bad").writeStream.format("delta") \
        .option("checkpointLocation", "./checkpoints/bad").start("./data/bad")
    with pytest.raises(StreamingQueryException):
        q.awaitTermination(60)
    assert q.exception() is not None
    assert not q.isActive
    assert server.alive()
    still_works(server.url, spark, session, root, "failed")


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
