"""Plans Spark rejects, and requests this server does not serve, raise the client's
AnalysisException with a message saying what; none of them stops the server or another
session's work. With --token the server refuses callers without it."""
import os
import subprocess
from pathlib import Path

import pytest
from pyspark.errors import AnalysisException, StreamingQueryException
from pyspark.errors.exceptions.connect import SparkConnectGrpcException
from pyspark.sql import SparkSession
from pyspark.sql.functions import col, udf

from conftest import mb, run_client

HERE = Path(__file__).resolve().parent

SCHEMA = "event_id string, timestamp timestamp, user_id int, event_type string, value double"


@pytest.fixture
def root(tmp_path):
    mb("generate", "--input", "input", "--batches", "3", "--events-per-batch", "100",
       "--users", "data", cwd=tmp_path)
    return tmp_path


@pytest.fixture
def session():
    """Makes client sessions, and stops them after the test (a session left as the default
    would point a later test's getOrCreate() at a server that is gone)."""
    made = []

    def make(url):
        s = SparkSession.builder.remote(url).create()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_rejected_plans_are_analysis_exceptions_and_the_server_goes_on(root, serve, session):
    server = serve(root)
    spark = session(server.url)
    other = session(server.url)
    stream = spark.readStream.format("json").schema(SCHEMA).load("./input")
    # Another session's query runs through all of it.
    running = other.readStream.format("json").schema(SCHEMA).option("maxFilesPerTrigger", 1) \
        .load("./input").writeStream.format("delta") \
        .option("checkpointLocation", "./checkpoints/other").start("./data/other")
    users = spark.read.format("delta").load("./data/users")
    cases = [
        ("an unknown column", lambda: users.select("nope").collect(), "`nope`"),
        ("an unknown column in a stream",
         lambda: stream.select(col("nope")).writeStream.format("delta")
         .option("checkpointLocation", "./checkpoints/e1").start("./data/e1"), "`nope`"),
        ("an unknown function", lambda: users.selectExpr("frobnicate(name)").collect(), "frobnicate"),
        ("append without a watermark",
         lambda: stream.groupBy("event_type").count().writeStream.format("delta")
         .outputMode("append").option("checkpointLocation", "./checkpoints/e2").start("./data/e2"),
         "Append output mode not supported"),
        ("a path outside the root", lambda: spark.read.format("delta").load("/etc").collect(), "--root"),
        ("a checkpoint outside the root",
         lambda: stream.writeStream.format("delta").option("checkpointLocation", "../cp")
         .start("./data/x"), "PATH_OUTSIDE_ROOT"),
        ("a stream without a schema",
         lambda: spark.readStream.format("json").load("./input").writeStream.format("delta")
         .option("checkpointLocation", "./checkpoints/e3").start("./data/e3"),
         "Schema must be specified"),
        ("show() of a stream", lambda: stream.show(), "writeStream.start()"),
        ("spark.sql", lambda: spark.sql("select 1").collect(), "spark.sql"),
        ("sample", lambda: users.sample(0.5).collect(), "'sample'"),
        ("a Python UDF", lambda: users.select(udf(lambda x: x)("name")).collect(), "not served"),
        ("a missing table", lambda: spark.read.format("delta").load("./data/nothing").collect(),
         "not a Delta table"),
    ]
    for what, f, text in cases:
        with pytest.raises(AnalysisException) as e:
            f()
        assert text in str(e.value), f"{what}: {e.value}"
    assert not (root / "data" / "e2").exists(), "a refused query writes nothing"
    running.processAllAvailable()
    assert running.isActive and running.exception() is None
    assert other.read.format("delta").load("./data/other").count() == 300
    assert spark.read.format("delta").load("./data/users").count() == 980, "the session still works"
    running.stop()
    assert server.alive()


def test_a_failed_query_raises_streaming_query_exception(root, serve, session):
    server = serve(root)
    spark = session(server.url)
    (root / "bad").mkdir()
    # Two queries on one checkpoint: the second cannot take it.
    w = lambda: spark.readStream.format("json").schema(SCHEMA).load("./input") \
        .writeStream.format("delta").option("checkpointLocation", "./checkpoints/same")
    first = w().start("./data/first")
    with pytest.raises(AnalysisException) as e:
        w().start("./data/second")
    assert "checkpoint" in str(e.value).lower(), str(e.value)
    first.stop()
    # FAILFAST: a malformed line fails the query; awaitTermination raises, exception() says why.
    (root / "bad" / "x.json").write_text('{"event_id": "a", "timestamp": "2026-11-24T10:00:00", "user_id": 1, "event_type": "click", "value": 1.0}\nnot json\n')
    q = spark.readStream.format("json").schema(SCHEMA).option("mode", "FAILFAST").load("./bad") \
        .writeStream.format("delta").option("checkpointLocation", "./checkpoints/bad") \
        .start("./data/bad")
    with pytest.raises(StreamingQueryException):
        q.awaitTermination(60)
    assert q.exception() is not None
    assert not q.isActive


def test_a_token_is_required_when_the_server_has_one(root, serve, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = serve(root, "--token", "s3cret", "--tls-cert", str(cert), "--tls-key", str(key))
    # PySpark sends a token only over TLS; the client (a process of its own: gRPC reads the
    # setting at start) trusts this certificate.
    env = dict(os.environ, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=str(cert))
    out = run_client(HERE / "token_client.py", f"sc://localhost:{server.port}", cwd=root, env=env)
    assert out.strip().splitlines()[-1] == "right token: 980 | wrong token: refused | no token: refused", out
