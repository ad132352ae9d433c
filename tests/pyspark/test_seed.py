"""The seed's Example 1–4 and its monitoring code through `microbatch serve` with the real
PySpark 3.5.9 client leave the same Delta tables as `microbatch run all` on the same input."""
import json
import shutil
from pathlib import Path

from deltalake import DeltaTable

from conftest import copy_input, mb, run_client

HERE = Path(__file__).resolve().parent
TABLES = ["events", "event_aggregates", "user_activity", "enriched_events"]
PROGRESS_FIELDS = ["id", "runId", "name", "timestamp", "batchId", "numInputRows",
                   "inputRowsPerSecond", "processedRowsPerSecond", "durationMs", "eventTime",
                   "stateOperators", "sources", "sink"]


def rows(path: Path):
    t = DeltaTable(str(path)).to_pyarrow_table()
    return t.column_names, sorted(json.dumps(r, default=str, sort_keys=True) for r in t.to_pylist())


def prepare(tmp_path: Path, batches=8):
    connect, cli = tmp_path / "connect", tmp_path / "cli"
    connect.mkdir()
    mb("generate", "--input", "input", "--batches", str(batches), "--events-per-batch", "500",
       "--seed", "11", "--users", "data", cwd=connect)
    copy_input(connect / "input", cli / "input")
    shutil.copytree(connect / "data" / "users", cli / "data" / "users")
    return connect, cli


def test_the_seed_runs_as_written_and_leaves_the_clis_tables(tmp_path, serve):
    connect, cli = prepare(tmp_path)
    server = serve(connect)
    out = run_client(HERE / "seed_examples.py", server.url, cwd=connect)
    report = json.loads(out.strip().splitlines()[-1])
    mb("run", "all", "--trigger", "available-now", "--max-files-per-trigger", "1", cwd=cli)

    for table in TABLES:
        a_cols, a = rows(connect / "data" / table)
        b_cols, b = rows(cli / "data" / table)
        assert a_cols == b_cols, f"{table}: columns {a_cols} != the CLI's {b_cols}"
        assert len(a) > 0, f"{table} is empty"
        assert a == b, f"{table}: {len(a)} rows through the server, {len(b)} through the CLI; " \
                       f"first differences: {[x for x in a if x not in b][:3]} / {[x for x in b if x not in a][:3]}"

    # show() printed Spark's grid, the one `microbatch show` prints for the same table.
    grid = mb("show", "data/events", cwd=cli).stdout.split("only showing top 20 rows")[0]
    assert grid in out, f"show() text differs:\n{out[:2000]}\nexpected:\n{grid}"

    # The monitoring calls, with Spark's field names.
    assert sorted(report["active"]) == sorted(report["ids"]), "spark.streams.active lists the three running queries"
    assert set(report["status"]) == {"message", "isDataAvailable", "isTriggerActive"}, report["status"]
    progress = report["recent_progress"]
    assert len(progress) >= 8, f"one batch per file at least: {len(progress)}"
    for p in progress:
        missing = [f for f in PROGRESS_FIELDS if f not in p]
        assert not missing, f"progress lacks {missing}: {p}"
    assert sum(p["numInputRows"] for p in progress) == 8 * 500
    assert "watermark" in report["last_progress"]["eventTime"], report["last_progress"]
    assert report["was_active"] is True
    assert report["finished_in_time"] is False, "awaitTermination(0.1) on a running query returns False"
    assert report["active_after_stop"] == [False, False, False, False]
    assert report["exceptions"] == [None, None, None]
    assert int(report["events_count"]) == 8 * 500 == report["pandas_rows"]
    assert report["events_columns"] == ["event_id", "timestamp", "user_id", "event_type", "value"]
    assert report["schema_tree"] == (
        "root\n"
        " |-- event_id: string (nullable = true)\n"
        " |-- timestamp: timestamp (nullable = true)\n"
        " |-- user_id: integer (nullable = true)\n"
        " |-- event_type: string (nullable = true)\n"
        " |-- value: double (nullable = true)\n"), report["schema_tree"]
    first = report["first_rows"][0]
    assert set(first) == {"event_id", "timestamp", "user_id", "event_type", "value"}


def test_a_query_killed_with_the_server_goes_on_exactly_once(tmp_path, serve):
    connect, _ = prepare(tmp_path, batches=40)
    server = serve(connect)
    script = HERE / "restart_passthrough.py"
    # The first run is killed with the server while batches are landing.
    run_client(script, server.url, "kill-after-2", str(server.proc.pid), cwd=connect)
    server.proc.wait()
    server = serve(connect)
    run_client(script, server.url, "finish", cwd=connect)
    _, got = rows(connect / "data" / "events")
    ids = [json.loads(r)["event_id"] for r in got]
    assert len(ids) == 40 * 500, f"{len(ids)} rows for 20,000 events"
    assert len(set(ids)) == len(ids), "an event was written twice"
