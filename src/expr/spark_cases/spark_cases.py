#!/usr/bin/env python3
"""Spark's answers for the expression cases of src/expr/tests.rs.

Regenerate (from the repository root, with the spark-oracle venv):
    TZ=UTC /work/shared/spark-oracle/.venv/bin/python src/expr/spark_cases/spark_cases.py \
        > src/expr/spark_cases/cases.tsv

Every case is `SELECT <expr> FROM t` over the 4-row table below (the same rows the Rust test
builds), in Spark 3.5 with its defaults (spark.sql.ansi.enabled=false) and the session time zone
UTC. Output, one line per case, tab-separated:
    expr  output-name  simple-type  values-as-JSON
or, when Spark rejects the expression:
    expr  ERROR  error-class  message
Values: JSON null / bool / number; decimals, dates, timestamps ("YYYY-MM-DD HH:MM:SS.ffffff")
as strings; NaN/Infinity as strings; structs as objects.
"""
import datetime as dt
import decimal
import json
import math
import os
import sys
import time

os.environ["TZ"] = "UTC"
time.tzset()

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql.types import (  # noqa: E402
    BooleanType, DateType, DecimalType, DoubleType, IntegerType, LongType, StringType,
    StructField, StructType, TimestampType,
)

CASES = r"""
i
I
w.start
w.`end`
1
-5
3000000000
1.5
1.5e3
'x'
true
NULL
DATE'2024-01-02'
TIMESTAMP'2024-01-02 03:04:05'
i + 1
i + l
i + d
i + m
m + m
m * m
m - 1
m / 3
i * 2
i - l
i / 2
i / 0
d / 0
i % 2
i % 0
-d % 2
l * 1000000000000
i * 2147483647
-i
i + '1'
i + s
(i + 1) * 2
i div 2
i = 1
i <> 1
i != 1
i < l
i <= 1
i > 1
i >= 1
i <=> NULL
i = NULL
s = 42
s > 'A'
m = 1.25
b AND true
b OR NULL
b AND NULL
NOT b
i > 0 AND d > 0
i > 0 OR s IS NULL
s IS NULL
s IS NOT NULL
isnull(i)
i IN (1, 2, 3)
i IN (1, NULL)
i NOT IN (1, 2)
s IN ('Hello', '42')
i BETWEEN 0 AND 5
i NOT BETWEEN 0 AND 5
s LIKE 'H%'
s LIKE '_e%o'
s NOT LIKE '%a%'
s RLIKE '^[0-9]+$'
s rlike 'l+'
CAST(i AS STRING)
CAST(i AS BIGINT)
CAST(d AS INT)
CAST(s AS INT)
CAST(s AS DOUBLE)
CAST('1.7' AS INT)
CAST(' 12 ' AS INT)
CAST(m AS INT)
CAST(d AS DECIMAL(10,1))
CAST(i AS DECIMAL(5,2))
CAST(ts AS DATE)
CAST(ts AS STRING)
CAST(dt AS TIMESTAMP)
CAST(d AS STRING)
CAST(b AS INT)
CAST('2024-05-06 07:08:09' AS TIMESTAMP)
CAST('nope' AS DATE)
CAST(i AS long)
CASE WHEN i > 0 THEN 'pos' WHEN i < 0 THEN 'neg' ELSE 'zero' END
CASE WHEN i > 0 THEN 1 END
CASE i WHEN 1 THEN 'one' WHEN -3 THEN 'minus three' END
CASE WHEN b THEN d ELSE i END
coalesce(i, 0)
coalesce(s, 'none')
coalesce(i, l)
upper(s)
lower(s)
concat(s, '!')
concat(s, i)
concat_ws('-', s, 'x', s)
substring(s, 2, 3)
substring(s, -2)
substr(s, 0, 2)
substring(s, 2)
length(s)
trim(s)
ltrim(s)
rtrim(s)
regexp_extract(s, '([a-z]+)', 1)
regexp_extract(s, '(\\d)(\\d)', 2)
regexp_replace(s, 'l', 'L')
regexp_replace(s, '([a-z])', '<$1>')
abs(i)
abs(d)
abs(m)
round(d)
round(d, 0)
round(m, 1)
round(2.5)
round(i, -1)
round(d * 1.05, 1)
floor(d)
ceil(d)
floor(m)
ceil(i)
sqrt(i)
pow(i, 2)
power(d, 2)
to_date(s)
to_date('2024-02-03')
to_date('03/02/2024', 'dd/MM/yyyy')
to_date(ts)
to_timestamp('2024-02-03 04:05:06')
to_timestamp('2024/02/03 04', 'yyyy/MM/dd HH')
date_trunc('hour', ts)
date_trunc('month', ts)
date_trunc('DAY', ts)
date_format(ts, 'yyyy-MM-dd HH:mm')
date_format(ts, 'yyyyMMdd')
year(ts)
month(ts)
dayofmonth(ts)
day(dt)
hour(ts)
minute(ts)
second(ts)
year(dt)
unix_timestamp(ts)
unix_timestamp('2024-01-01 00:00:00')
from_unixtime(l)
from_unixtime(0, 'yyyy-MM-dd')
struct(i, s)
struct(i AS x, s)
named_struct('a', i, 'b', s)
named_struct('a', i, 'b', s).b
i * 2 AS doubled
CAST(w.start AS DATE)
date_format(w.start, 'HH:mm')
'it\'s'
s LIKE '%\\%%'
s ILIKE 'h%'
CAST(d * 1e10 AS STRING)
CAST(d / 1e4 AS STRING)
CAST('1e3' AS INT)
CAST('yes' AS BOOLEAN)
CAST(ts AS BIGINT)
CAST(i AS TIMESTAMP)
CAST(dt AS INT)
CAST('2024-01-01T10:00:00Z' AS TIMESTAMP)
CAST('2024-01-01 10:00:00+02:00' AS TIMESTAMP)
i IN ('1', 2)
dt > '2000-01-01'
ts >= '2024-01-01'
dt = ts
b = 'true'
NULL <=> NULL
l div 0
-i % 3
i * 1.5
l + m
m / m
m * m * m * m * m
1 / 3
1.0 / 3
d % 0.5
abs(-2147483648)
concat(s, NULL)
substring(s, -10, 3)
round(-2.5)
round(CAST(1.005 AS DOUBLE), 2)
floor(-0.5)
sqrt(m)
if(i > 0, 'a', 'b')
nvl(s, 'x')
nullif(i, 1)
CASE WHEN i > 0 THEN 'x' ELSE 1 END
CASE s WHEN 'Hello' THEN 1 ELSE 0 END
date_trunc('week', ts)
date_trunc('quarter', ts)
date_format(dt, 'EEE MMM d')
unix_timestamp('2024/01/01', 'yyyy/MM/dd')
to_date('2024-13-01')
year('2024-05-06')
struct(i + 1, s)
w
named_struct('x', 1).x
s || '!'
trim(BOTH 'H' FROM s)
regexp_replace(s, '\\s', '_')
upper(i)
CAST(1e20 AS INT)
CAST(3000000000 AS INT)
CAST(1e20 AS BIGINT)
CAST(-1.5 AS DECIMAL(2,0))
CAST(s AS DECIMAL(5,1))
CAST(' 1.5 ' AS DOUBLE)
CAST(i AS SMALLINT)
CAST(i AS BOOLEAN)
CAST(ts AS DOUBLE)
CAST(m AS DOUBLE)
CAST(m AS STRING)
CAST(b AS STRING)
CAST(w AS STRING)
CAST(struct(i, s) AS STRING)
i / l
l % 3
d * i
l * 2.5
m + 1.5D
1L + 1
2Y
3S
1.5BD
s LIKE 'H_llo'
s NOT RLIKE 'l'
upper(w.start)
substring(s FROM 2 FOR 3)
concat_ws(',', s, NULL, 'z')
length('héllo')
date_format(ts, 'yyyy-MM-dd HH:mm:ss.SSS')
to_timestamp('2024-02-03T04:05:06.789Z')
hour('2024-01-01 05:06:07')
month(dt)
from_unixtime(-1)
unix_timestamp(dt)
NOT NULL
i = '1'
d = 1.5
s < 5
CASE WHEN NULL THEN 1 ELSE 2 END
coalesce(NULL, i, 5)
coalesce(d, i)
round(d, 1)
round(l, -2)
ceil(-1.5)
ceil(m)
abs(l)
pow(d, 0.5)
-m
-(i + 1)
i + NULL
named_struct('a', i).a + 1
struct(i, s).i
regexp_extract(s, 'x(y)?', 1)
regexp_extract(s, '(l+)', 0)
trim(LEADING ' ' FROM s)
s BETWEEN 'A' AND 'Z'
ts BETWEEN '2000-01-01' AND '2025-01-01'
date_add(dt, 1)
datediff(dt, '2000-01-01')
ts + 1
isnan(d)
CAST(NULL AS INT)
lower(NULL)
1 + 1 AS two
nvl(i, 'x')
i IN (NULL)
b IN (true)
i > 1.5
i >= 1.5
i < -1.5
i <= 1.5
1.5 < i
i BETWEEN 0.5 AND 2.5
i = 1.5
dt + 1
dt - 1
nope + 1
upper(nope)
nosuchfn(i)
i + b
s AND b
count(i)
"""

SCHEMA = StructType([
    StructField("i", IntegerType()),
    StructField("l", LongType()),
    StructField("d", DoubleType()),
    StructField("m", DecimalType(10, 2)),
    StructField("s", StringType()),
    StructField("b", BooleanType()),
    StructField("ts", TimestampType()),
    StructField("dt", DateType()),
    StructField("w", StructType([
        StructField("start", TimestampType()),
        StructField("end", TimestampType()),
    ])),
])

T = dt.datetime
ROWS = [
    (1, 10, 1.5, decimal.Decimal("1.25"), "Hello", True,
     T(2024, 3, 15, 13, 45, 30, 123456), dt.date(2024, 3, 15),
     (T(2024, 3, 15, 13, 45), T(2024, 3, 15, 13, 50))),
    (-3, 20, -2.5, decimal.Decimal("-3.50"), " a b ", False,
     T(1999, 12, 31, 23, 59, 59), dt.date(2000, 2, 29),
     (T(1999, 12, 31, 23, 55), T(2000, 1, 1, 0, 0))),
    (None, None, None, None, None, None, None, None, None),
    (2147483647, 9223372036854775807, 0.0, decimal.Decimal("100.00"), "42", True,
     T(1970, 1, 1, 0, 0, 0), dt.date(1970, 1, 1),
     (T(1970, 1, 1), T(1970, 1, 1, 0, 5))),
]


def to_json(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return v
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, dt.date):
        return v.isoformat()
    if hasattr(v, "asDict"):
        return {k: to_json(x) for k, x in v.asDict().items()}
    return str(v)


def main():
    spark = (SparkSession.builder.master("local[1]").appName("expr-cases")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.sql.ansi.enabled", "false")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    spark.createDataFrame(ROWS, SCHEMA).createOrReplaceTempView("t")
    for line in CASES.strip().splitlines():
        e = line.strip()
        if not e:
            continue
        try:
            df = spark.sql(f"SELECT {e} FROM t")
            rows = df.collect()
            f = df.schema.fields[0]
            vals = [to_json(r[0]) for r in rows]
            print("\t".join([e, f.name, f.dataType.simpleString(), json.dumps(vals)]))
        except Exception as ex:  # noqa: BLE001
            msg = str(ex).splitlines()[0]
            cls = msg.split("]")[0].lstrip("[") if msg.startswith("[") else type(ex).__name__
            print("\t".join([e, "ERROR", cls, msg.replace("\t", " ")]))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
