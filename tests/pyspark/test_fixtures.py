"""The nine Spark 3.5.9 conformance pipelines (tests/fixtures/spark/pipelines/) through
`microbatch serve`: the recorded `pipeline.py` runs unchanged in the real PySpark Connect client,
its stream goes to a Delta table, and that table must equal Spark's `final.jsonl` row for row.

Per pipeline: a fresh root folder and server; the input files copied with mtimes in name order
(the file source takes files by mtime, and git keeps none); each static table written as Delta
through the server (`createDataFrame` + `write.format("delta")`), because the server reads only
Delta tables in batch, and the pipeline's `spark.read.schema(ddl).json(x.jsonl)` is answered
by a thin session wrapper with `spark.read.format("delta").load(<that table>)`; everything
else goes to the real Connect session untouched. The output is read back with the `deltalake`
package; its column names and types (nullability and field metadata aside) must be Spark's
`schema.json`, and its rows, encoded as `record.py` encodes (timestamps `%Y-%m-%dT%H:%M:%S.%f`
UTC, decimals as exact strings, structs as objects) and sorted by all columns nulls first on the
native values, must equal `final.jsonl` row for row (update mode: the table holds the upserts,
which is final.jsonl). Only final tables are compared: `numInputRows` may differ from Spark's
(see the README).

    MICROBATCH_BIN=/root/.cache/mb-target/release/microbatch \
        /root/.cache/pyconnect/bin/python -m pytest tests/pyspark/test_fixtures.py -q
"""
import datetime as dt
import decimal
import importlib.util
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PIPELINES = REPO / "tests" / "fixtures" / "spark" / "pipelines"
NAMES = sorted(p.name for p in PIPELINES.iterdir() if (p / "pipeline.py").is_file())
TS_FMT = "%Y-%m-%dT%H:%M:%S.%f"
QUERY_TIMEOUT_S = 600


def binary() -> str:
    b = os.environ.get("MICROBATCH_BIN")
    if b:
        return b
    release = Path("/root/.cache/mb-target/release/microbatch")
    if release.is_file():
        r = subprocess.run([str(release), "serve", "--help"], capture_output=True)
        if r.returncode == 0:
            return str(release)
    return "/root/.cache/mb-target/debug/microbatch"


# --------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------

class Server:
    """`microbatch serve --port 0 --root ROOT`; its stderr goes to a file (a pipe nobody reads
    would fill up and stall the server)."""

    def __init__(self, root: Path, log: Path):
        self.log = log
        self._fh = open(log, "w")
        self.proc = subprocess.Popen([binary(), "serve", "--port", "0", "--root", str(root)],
                                     stdout=subprocess.DEVNULL, stderr=self._fh)
        deadline = time.monotonic() + 60
        while True:
            m = re.search(r"listening on (\S+):(\d+)", log.read_text())
            if m:
                self.url = f"sc://127.0.0.1:{m.group(2)}"
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.05)

    def tail(self, n=40) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._fh.close()


# --------------------------------------------------------------------------------------------
# values: JSON in, native values for createDataFrame; native values out, JSON like final.jsonl
# --------------------------------------------------------------------------------------------

def split_top(s: str, sep=","):
    """Splits on `sep` outside <> and ()."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return [x.strip() for x in out]


def ddl_fields(ddl: str):
    """`a STRING, b DECIMAL(10,2)` -> [("a", "STRING"), ("b", "DECIMAL(10,2)")]."""
    fields = []
    for f in split_top(ddl):
        name, typ = f.split(None, 1)
        fields.append((name.strip("`"), typ.strip().upper()))
    return fields


def from_json(v, typ: str):
    """A JSON value of the static files -> the Python value `createDataFrame` wants for `typ`."""
    if v is None:
        return None
    if typ == "TIMESTAMP":
        return dt.datetime.strptime(v, TS_FMT).replace(tzinfo=dt.timezone.utc)
    if typ.startswith("DECIMAL"):
        scale = int(re.search(r",\s*(\d+)\)", typ).group(1)) if "," in typ else 0
        return decimal.Decimal(str(v)).quantize(decimal.Decimal(1).scaleb(-scale))
    if typ in ("DOUBLE", "FLOAT"):
        return float(v)
    if typ in ("INT", "INTEGER", "BIGINT", "LONG", "SMALLINT", "TINYINT"):
        return int(v)
    if typ in ("STRING", "BOOLEAN"):
        return v
    raise TypeError(f"no conversion for static column type {typ}")


def native(v):
    """A value from pyarrow's to_pylist -> the value Spark's collect() gives (naive UTC)."""
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(v, dict):
        return {k: native(x) for k, x in v.items()}
    if isinstance(v, list):
        return [native(x) for x in v]
    return v


def encode(v):
    """As record.py's `encode`: native value -> JSON value."""
    if v is None or isinstance(v, (bool, int, str, float)):
        return v
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, dt.datetime):
        return v.strftime(TS_FMT)
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: encode(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [encode(x) for x in v]
    raise TypeError(f"cannot encode {type(v)}: {v!r}")


def sort_key(v):
    """As record.py's `sort_key`: nulls first, structs field by field."""
    if v is None:
        return (0,)
    if isinstance(v, dict):
        return (1, tuple(sort_key(x) for x in v.values()))
    if isinstance(v, (list, tuple)):
        return (1, tuple(sort_key(x) for x in v))
    return (1, v)


def row_sort_key(row):
    return tuple(sort_key(v) for v in row.values())


# --------------------------------------------------------------------------------------------
# the session wrapper: `spark.read.schema(ddl).json(static jsonl)` -> the Delta table
# --------------------------------------------------------------------------------------------

class StaticReader:
    """Stands in for `spark.read`: `.schema(ddl).json(path)` of a static jsonl loads the Delta
    table written from it; anything else goes to the real reader."""

    def __init__(self, spark, tables):
        self._spark = spark
        self._tables = tables  # normpath of the jsonl -> (its DDL, the Delta table's path)
        self._ddl = None

    def schema(self, ddl):
        self._ddl = ddl
        return self

    def json(self, path, *args, **kwargs):
        key = os.path.normpath(path)
        if key not in self._tables:
            raise AssertionError(f"the pipeline reads {path!r}, not a known static table "
                                 f"({sorted(self._tables)})")
        ddl, table = self._tables[key]
        assert self._ddl is not None and ddl_fields(self._ddl) == ddl_fields(ddl), \
            f"{path}: the pipeline's schema {self._ddl!r} is not {ddl!r} of the .schema.ddl"
        return self._spark.read.format("delta").load(table)

    def __getattr__(self, name):
        reader = self._spark.read
        if self._ddl is not None:
            reader = reader.schema(self._ddl)
        return getattr(reader, name)


class SessionProxy:
    def __init__(self, spark, tables):
        self._spark = spark
        self._tables = tables

    @property
    def read(self):
        return StaticReader(self._spark, self._tables)

    def __getattr__(self, name):
        return getattr(self._spark, name)


# --------------------------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------------------------

def load_pipeline(name):
    spec = importlib.util.spec_from_file_location(f"fixture_pipeline_{name}",
                                                  PIPELINES / name / "pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def copy_input(src: Path, dst: Path):
    """The input files in name order, with mtimes increasing in that order (as record.py)."""
    dst.mkdir(parents=True)
    for i, f in enumerate(sorted(p for p in src.iterdir() if p.is_file())):
        shutil.copyfile(f, dst / f.name)
        t = 1700000000 + 10 * i
        os.utime(dst / f.name, (t, t))


def write_static(spark, pdir: Path, mod):
    """Each static table as Delta under ./static/<t>; returns the wrapper's lookup table."""
    tables = {}
    for t, pipeline_ddl in mod.STATIC_TABLES.items():
        ddl = (pdir / "static" / f"{t}.schema.ddl").read_text().strip()
        assert ddl_fields(ddl) == ddl_fields(pipeline_ddl), (t, ddl, pipeline_ddl)
        fields = ddl_fields(ddl)
        rows = []
        for line in (pdir / "static" / f"{t}.jsonl").read_text().splitlines():
            if line.strip():
                obj = json.loads(line)
                rows.append(tuple(from_json(obj.get(c), typ) for c, typ in fields))
        target = f"./static/{t}"
        spark.createDataFrame(rows, ddl).write.format("delta").mode("overwrite").save(target)
        back = spark.read.format("delta").load(target).count()
        assert back == len(rows), f"static {t}: wrote {len(rows)} rows, read back {back}"
        tables[os.path.normpath(os.path.join("./static", f"{t}.jsonl"))] = (ddl, target)
    return tables


def bare_type(t):
    """A Spark/Delta JSON schema type without nullability and metadata: Delta stores every
    column nullable, and the watermark/window metadata stays in the query, not the table."""
    if isinstance(t, dict) and t.get("type") == "struct":
        return ("struct", tuple((f["name"], bare_type(f["type"])) for f in t["fields"]))
    if isinstance(t, dict) and t.get("type") == "array":
        return ("array", bare_type(t["elementType"]))
    if isinstance(t, dict) and t.get("type") == "map":
        return ("map", bare_type(t["keyType"]), bare_type(t["valueType"]))
    return t


def read_delta(path: Path):
    """The table's columns, their types (bare) and rows (native values)."""
    from deltalake import DeltaTable
    dt_ = DeltaTable(str(path))
    types = [(f["name"], bare_type(f["type"]))
             for f in json.loads(dt_.schema().to_json())["fields"]]
    table = dt_.to_pyarrow_table()
    rows = [{k: native(v) for k, v in r.items()} for r in table.to_pylist()]
    return table.schema.names, types, rows


def diff_message(name, expected, actual, n=8) -> str:
    exp_s = [json.dumps(r, sort_keys=False) for r in expected]
    act_s = [json.dumps(r, sort_keys=False) for r in actual]
    lines = [f"{name}: the Delta table differs from Spark's final.jsonl: "
             f"{len(actual)} rows, Spark has {len(expected)}"]
    first = next((i for i, (e, a) in enumerate(zip(exp_s, act_s)) if e != a),
                 min(len(exp_s), len(act_s)))
    lines.append(f"first differing row: #{first}")
    for i in range(first, min(first + 3, max(len(exp_s), len(act_s)))):
        lines.append(f"  spark [{i}]: {exp_s[i] if i < len(exp_s) else '-'}")
        lines.append(f"  ours  [{i}]: {act_s[i] if i < len(act_s) else '-'}")
    remaining = list(act_s)
    missing = []
    for e in exp_s:
        if e in remaining:
            remaining.remove(e)
        else:
            missing.append(e)
    lines.append(f"rows only in Spark's table ({len(missing)}):")
    lines += [f"  - {r}" for r in missing[:n]] + (["  ..."] if len(missing) > n else [])
    lines.append(f"rows only in ours ({len(remaining)}):")
    lines += [f"  + {r}" for r in remaining[:n]] + (["  ..."] if len(remaining) > n else [])
    return "\n".join(lines)


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_matches_spark(name, tmp_path):
    from pyspark.sql import SparkSession

    pdir = PIPELINES / name
    mod = load_pipeline(name)
    expected = [json.loads(l) for l in (pdir / "final.jsonl").read_text().splitlines()
                if l.strip()]
    spark_schema = json.loads((pdir / "schema.json").read_text())
    columns = spark_schema["columns"]
    spark_types = [(f["name"], bare_type(f["type"])) for f in spark_schema["schema"]["fields"]]

    root = tmp_path / "root"
    root.mkdir()
    copy_input(pdir / "input", root / "input")
    server = Server(root, tmp_path / "server.log")
    spark = None
    try:
        spark = SparkSession.builder.remote(server.url).create()
        tables = write_static(spark, pdir, mod)
        df = mod.build(SessionProxy(spark, tables), "./input", "./static")
        query = (df.writeStream.format("delta")
                 .outputMode(mod.OUTPUT_MODE)
                 .option("checkpointLocation", "./cp")
                 .trigger(availableNow=True)
                 .start("./out"))
        finished = query.awaitTermination(QUERY_TIMEOUT_S)
        assert finished is not False, f"{name}: the query did not finish in {QUERY_TIMEOUT_S}s"
        exc = query.exception()
        assert exc is None, f"{name}: the query failed: {exc}\n--- server log ---\n{server.tail()}"

        names, types, rows = read_delta(root / "out")
        assert names == columns, f"{name}: columns {names}, Spark has {columns}"
        assert types == spark_types, f"{name}: column types {types}, Spark has {spark_types}"
        rows.sort(key=row_sort_key)
        actual = [encode(r) for r in rows]
        assert actual == expected, diff_message(name, expected, actual)
    finally:
        if spark is not None:
            try:
                spark.stop()
            except Exception:  # the server may be gone already; it is killed next
                pass
        server.stop()
