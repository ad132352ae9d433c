"""Batch DataFrames through the server, as the PySpark client uses them around a stream:
a dimension table written from local rows, read back, shaped, counted and shown."""
from decimal import Decimal

import pytest
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F


@pytest.fixture
def spark(tmp_path, serve, session):
    server = serve(tmp_path)
    yield session(server.url)  # conftest's: kept alive (see _SESSIONS there), stopped after


def test_local_rows_written_read_and_shaped(spark):
    rows = [(i, f"c{i % 3}", Decimal(f"{i}.50"), "pro" if i % 2 else None) for i in range(1, 11)]
    df = spark.createDataFrame(rows, "id int, country string, amount decimal(10,2), tier string")
    df.write.format("delta").mode("overwrite").save("./data/customers")
    t = spark.read.format("delta").load("./data/customers")
    assert t.count() == 10
    assert t.columns == ["id", "country", "amount", "tier"]
    assert [r.id for r in t.orderBy(F.desc("id")).limit(3).collect()] == [10, 9, 8]
    assert t.first().id == 1 and len(t.head(2)) == 2 and len(t.take(4)) == 4
    assert t.select("country").distinct().count() == 3
    assert t.agg(F.countDistinct("country")).collect()[0][0] == 3
    assert t.agg(F.countDistinct("country")).columns == ["count(DISTINCT country)"]
    got = {r.country: (r.n, r.total) for r in
           t.groupBy("country").agg(F.count("*").alias("n"), F.sum("amount").alias("total")).collect()}
    assert got == {"c0": (3, Decimal("19.50")), "c1": (4, Decimal("24.00")), "c2": (3, Decimal("16.50"))}
    assert t.filter(F.col("tier").isNull()).count() == 5
    # NULL != 'pro' is NULL, not true: no row passes, and a count of none is one row of 0.
    assert t.filter((F.col("id") > 3) & (F.col("tier") != "pro")).count() == 0
    assert t.filter(F.col("id") > 100).agg(F.sum("amount"), F.count("id")).collect()[0] == (None, 0)
    assert t.withColumn("big", F.when(F.col("id") > 5, "yes").otherwise("no")) \
        .filter("big = 'yes'").count() == 5
    pdf = t.select("id", (F.col("amount") * 2).alias("double")).toPandas()
    assert list(pdf.columns) == ["id", "double"] and len(pdf) == 10
    # Appending, and a write that would overwrite without being told to.
    spark.createDataFrame([(11, "c2", Decimal("1.00"), "pro")], t.schema).write.format("delta") \
        .mode("append").save("./data/customers")
    assert t.count() == 11
    with pytest.raises(AnalysisException, match="already exist"):
        df.write.format("delta").save("./data/customers")


def test_show_gives_sparks_text(spark):
    spark.createDataFrame([(1, "a long name indeed, over twenty"), (2, None)], "id int, name string") \
        .write.format("delta").save("./data/t")
    t = spark.read.format("delta").load("./data/t")
    assert t._show_string(20, 20, False) == (
        "+---+--------------------+\n"
        "| id|                name|\n"
        "+---+--------------------+\n"
        "|  1|a long name indee...|\n"
        "|  2|                NULL|\n"
        "+---+--------------------+\n")
    assert t._show_string(1, 0, False) == (
        "+---+-------------------------------+\n"
        "|id |name                           |\n"
        "+---+-------------------------------+\n"
        "|1  |a long name indeed, over twenty|\n"
        "+---+-------------------------------+\n"
        "only showing top 1 row\n")
    assert t._show_string(1, 20, True) == (
        "-RECORD 0" + "-" * 20 + "\n"
        " id   | 1" + " " * 20 + "\n"
        " name | a long name indee... \n"
        "only showing top 1 row\n")
