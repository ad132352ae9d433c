"""The seed's code (seed_examples.py) through `microbatch serve` with the real PySpark 3.5.9 client
leaves the same four Delta tables as `microbatch run all --trigger available-now` on a copy of the
same input, batch by batch the same progress, and the monitoring calls answer as Spark's do."""
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
from deltalake import DeltaTable

from conftest import HERE, copy_input, generate, mb, run_client

BATCHES, EVENTS = 8, 400
TOTAL = BATCHES * EVENTS
# The CLI's query names -> the seed's tables.
TABLES = {"raw": "events", "agg": "event_aggregates", "late": "user_activity",
          "enriched": "enriched_events"}
# The seed_examples.py handles -> the CLI's query names.
HANDLES = {"raw": "raw", "agg": "agg", "late": "late", "join": "enriched"}
WATERMARKED = {"agg", "late"}
PROGRESS_FIELDS = ["id", "runId", "name", "timestamp", "batchId", "numInputRows",
                   "inputRowsPerSecond", "processedRowsPerSecond", "durationMs",
                   "stateOperators", "sources", "sink"]
SPARK_STATUS_MESSAGES = {"Initializing sources", "Waiting for data to arrive",
                         "Processing new data", "No new data but cleaning up state",
                         "Waiting for next trigger", "Stopped"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def delta(path: Path):
    """A Delta table's schema (column name, Arrow type) and its rows, sorted, as JSON text."""
    t = DeltaTable(str(path)).to_pyarrow_table()
    schema = [(f.name, str(f.type)) for f in t.schema]
    return schema, sorted(json.dumps(r, default=str, sort_keys=True) for r in t.to_pylist())


def semantic(p: dict) -> dict:
    """What a progress record says about the batch (no timings, ids or paths)."""
    return {
        "batchId": p.get("batchId"),
        "numInputRows": p.get("numInputRows"),
        "eventTime": p.get("eventTime"),
        "stateOperators": [{k: op.get(k) for k in ("operatorName", "numRowsTotal",
                                                   "numRowsUpdated", "numRowsRemoved",
                                                   "numRowsDroppedByWatermark")}
                           for op in p.get("stateOperators", [])],
        "sources": [{k: s.get(k) for k in ("startOffset", "endOffset", "numInputRows")}
                    for s in p.get("sources", [])],
        "sinkOutputRows": (p.get("sink") or {}).get("numOutputRows"),
    }


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory):
    """One run of both, shared by the checks below: (report, client stdout, folders, progress)."""
    from conftest import Server
    tmp = tmp_path_factory.mktemp("seed")
    connect, cli, client = tmp / "connect", tmp / "cli", tmp / "client"
    generate(connect, BATCHES, EVENTS)
    copy_input(connect / "input", cli / "input")
    shutil.copytree(connect / "data" / "users", cli / "data" / "users")
    client.mkdir()  # the client runs elsewhere: its relative paths are the server's

    server = Server(connect, log=tmp / "server.log")
    try:
        out = run_client(HERE / "seed_examples.py", server.url, cwd=client)
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- server log ---\n{server.tail()}") from None
    finally:
        server.stop()
    lines = [l for l in out.splitlines() if l.startswith("REPORT ")]
    assert lines, f"seed_examples.py printed no REPORT line:\n{out[-3000:]}"
    report = json.loads(lines[-1][len("REPORT "):])

    r = mb("run", "all", "--trigger", "available-now", "--max-files-per-trigger", 1,
           "--input", "input", "--data", "data", "--checkpoints", "checkpoints", "--json",
           cwd=cli)
    cli_progress = {}
    for line in r.stdout.splitlines():
        p = json.loads(line)
        cli_progress.setdefault(p["name"], []).append(p)
    return {"report": report, "out": out, "connect": connect, "cli": cli, "client": client,
            "cli_progress": cli_progress}


@pytest.mark.parametrize("query", list(TABLES))
def test_table_equals_the_clis(seed_run, query):
    table = TABLES[query]
    got_schema, got = delta(seed_run["connect"] / "data" / table)
    want_schema, want = delta(seed_run["cli"] / "data" / table)
    assert got_schema == want_schema, \
        f"{table}: schema through the server {got_schema}\n  the CLI's {want_schema}"
    assert want, f"{table}: the CLI wrote no rows (the input is too small?)"
    only_got = [x for x in got if x not in set(want)]
    only_want = [x for x in want if x not in set(got)]
    assert got == want, (f"{table}: {len(got)} rows through the server, {len(want)} from the "
                         f"CLI; only the server's (first 3): {only_got[:3]}; only the CLI's "
                         f"(first 3): {only_want[:3]}")


def test_users_table_and_layout(seed_run):
    connect = seed_run["connect"]
    assert delta(connect / "data" / "users") == delta(seed_run["cli"] / "data" / "users"), \
        "the users table was changed"
    for name in ("raw", "agg", "late", "enriched"):
        cp = connect / "checkpoints" / name
        for part in ("metadata", "offsets", "commits"):
            assert (cp / part).exists(), f"checkpoint {cp} lacks {part}: " \
                f"{sorted(p.name for p in cp.iterdir()) if cp.exists() else 'missing'}"
    assert sorted(p.name for p in (connect / "checkpoints").iterdir()) == \
        ["agg", "enriched", "late", "raw"], "checkpoints other than the four"
    assert list(seed_run["client"].iterdir()) == [], \
        "the client's working folder got files: paths must be the server's"


def test_show_prints_the_grid_microbatch_show_prints(seed_run):
    r = mb("show", "data/events", cwd=seed_run["cli"])
    lines = r.stdout.splitlines(keepends=True)
    assert re.match(r"^\d+ rows, table version \d+$", lines[-1].strip()), r.stdout[-200:]
    want = "".join(lines[:-1]) + "\n"  # print() of Spark's showString adds a newline
    got = seed_run["report"]["show"]
    assert got == want, f"show() printed:\n{got}\n`microbatch show` prints:\n{want}"
    assert got in seed_run["out"]


def test_print_schema_count_collect_to_pandas(seed_run):
    rep = seed_run["report"]
    assert rep["print_schema"] == (
        "root\n"
        " |-- event_id: string (nullable = true)\n"
        " |-- timestamp: timestamp (nullable = true)\n"
        " |-- user_id: integer (nullable = true)\n"
        " |-- event_type: string (nullable = true)\n"
        " |-- value: double (nullable = true)\n"
        "\n"), repr(rep["print_schema"])
    assert rep["count"] == TOTAL, f"count() {rep['count']}, {TOTAL} events"
    assert rep["collect_len"] == TOTAL and rep["pandas_len"] == TOTAL, \
        (rep["collect_len"], rep["pandas_len"])
    assert rep["columns"] == ["event_id", "timestamp", "user_id", "event_type", "value"]
    assert rep["is_streaming"] == [False, True], "isStreaming of the table / of the stream"
    assert rep["collect_types"] == {"event_id": "str", "timestamp": "datetime", "user_id": "int",
                                    "event_type": "str", "value": "float"}, rep["collect_types"]
    assert rep["pandas_columns"] == rep["columns"]
    # pyarrow >= 13 keeps Arrow's unit (Spark sends microseconds); older ones give ns.
    assert rep["pandas_dtypes"] in ({"event_id": "object", "timestamp": f"datetime64[{u}]",
                                     "user_id": "int32", "event_type": "object",
                                     "value": "float64"} for u in ("us", "ns")), rep["pandas_dtypes"]
    _, cli_rows = delta(seed_run["cli"] / "data" / "events")
    assert rep["collect_ids"] == sorted(json.loads(r)["event_id"] for r in cli_rows), \
        "collect() returned other events than the table holds"
    assert rep["spark_version"].startswith("3.5"), rep["spark_version"]


def test_query_lifecycle(seed_run):
    rep = seed_run["report"]
    ids = rep["ids"]
    assert len(set(ids.values())) == 4 and len(set(rep["run_ids"].values())) == 4, rep["ids"]
    # No queryName: Spark Connect 3.5's server answers Option(query.name).getOrElse("").
    assert all(n in ("", None) for n in rep["names"]), f"no queryName, yet names {rep['names']}"
    active = set(rep["active_ids"])
    assert {ids["agg"], ids["join"]} <= active and ids["raw"] not in active, \
        f"spark.streams.active {rep['active_ids']} while agg and join ran, raw had ended ({ids})"
    assert rep["active_after_stop"] == [], "spark.streams.active after every query ended"
    assert rep["agg_active_before"] is True
    assert rep["agg_wait_running"] is False, "awaitTermination(0.5) on a running query"
    assert rep["late_finished"] is None, "awaitTermination() returns None"
    assert rep["raw_wait_finished"] is True, "awaitTermination(5) on a finished query"
    assert rep["is_active_after"] == [False] * 4
    assert rep["exceptions"] == [None] * 4, rep["exceptions"]
    assert rep["exceptions_after_stop"] == [None] * 4, rep["exceptions_after_stop"]


def test_status(seed_run):
    rep = seed_run["report"]
    for key in ("status", "status_raw_finished", "status_agg_running", "status_agg_stopped"):
        s = rep[key]
        assert set(s) == {"message", "isDataAvailable", "isTriggerActive"}, (key, s)
        assert isinstance(s["message"], str) and s["message"], (key, s)
        assert s["message"] in SPARK_STATUS_MESSAGES or s["message"].startswith("Getting offsets"), \
            f"{key}: not one of Spark's status messages: {s}"
    for key in ("status_raw_finished", "status_agg_stopped"):
        assert rep[key] == {"message": "Stopped", "isDataAvailable": False,
                            "isTriggerActive": False}, (key, rep[key])
    assert rep["status"]["isDataAvailable"] is False, \
        f"after processAllAvailable() no data waits: {rep['status']}"


@pytest.mark.parametrize("handle", list(HANDLES))
def test_progress_has_sparks_fields_and_the_clis_batches(seed_run, handle):
    rep = seed_run["report"]
    progress = rep["progress"][handle]
    name = HANDLES[handle]
    assert progress, f"{handle}: recentProgress is empty"
    for p in progress:
        missing = [f for f in PROGRESS_FIELDS if f not in p]
        assert not missing, f"{handle}: a progress record lacks {missing}: {p}"
        assert p["id"] == rep["ids"][handle] and p["runId"] == rep["run_ids"][handle], p
        assert TS.match(p["timestamp"]), f"timestamp {p['timestamp']!r} is not Spark's form"
        assert "triggerExecution" in p["durationMs"], p["durationMs"]
        assert len(p["sources"]) == 1 and p["sources"][0]["description"].startswith(
            "FileStreamSource["), p["sources"]
        assert p["sink"]["description"].startswith("DeltaSink["), p["sink"]
        if name in WATERMARKED:
            assert "watermark" in p.get("eventTime", {}), \
                f"{handle}: a watermarked query's progress has eventTime.watermark: {p}"
            assert TS.match(p["eventTime"]["watermark"]), p["eventTime"]
            assert p["stateOperators"], f"{handle}: an aggregation has a state operator"
        else:
            assert "eventTime" not in p, \
                f"{handle}: Spark omits eventTime without a watermark: {p.get('eventTime')}"
            assert p["stateOperators"] == [], p["stateOperators"]
    # Spark also reports idle triggers (no batch ran: no addBatch); only batches are compared.
    ran = [p for p in progress if "addBatch" in p["durationMs"]]
    assert [p["batchId"] for p in ran] == list(range(len(ran))), [p["batchId"] for p in ran]
    assert sum(p["numInputRows"] for p in ran) == TOTAL, \
        f"{handle}: {sum(p['numInputRows'] for p in ran)} input rows in all, {TOTAL} events"
    got = [semantic(p) for p in ran]
    want = [semantic(p) for p in seed_run["cli_progress"][name]]
    assert len(got) == len(want), f"{handle}: {len(got)} batches through the server, " \
        f"{len(want)} from the CLI: {[g['numInputRows'] for g in got]} / {[w['numInputRows'] for w in want]}"
    for g, w in zip(got, want):
        assert g == w, f"{handle} batch {g['batchId']}:\n  server {g}\n  CLI    {w}"


@pytest.mark.parametrize("handle", list(HANDLES))
def test_progress_name_is_null_without_query_name(seed_run, handle):
    names = {p["name"] for p in seed_run["report"]["progress"][handle]}
    assert names == {None}, \
        f"{handle}: no queryName, so Spark's progress has \"name\": null, not {names}"


def test_last_progress(seed_run):
    rep = seed_run["report"]
    for handle in ("agg", "late"):
        last = rep["last_progress"][handle]
        assert last is not None, f"{handle}.lastProgress is None after batches ran"
        assert "watermark" in last.get("eventTime", {}), last
    assert rep["last_progress"]["join"] == rep["progress"]["join"][-1], \
        "lastProgress is the last of recentProgress"
    late_batches = [p for p in rep["progress"]["late"] if "addBatch" in p["durationMs"]]
    assert rep["last_progress"]["late"] == late_batches[-1]
    wm = rep["last_progress"]["late"]["eventTime"]["watermark"]
    assert dt.datetime.strptime(wm, "%Y-%m-%dT%H:%M:%S.%fZ").year > 1970, \
        f"the watermark moved after {BATCHES} batches: {wm}"


def test_a_query_killed_with_the_server_goes_on_exactly_once(tmp_path, serve):
    """Example 1 with a processing-time trigger; the server is killed (SIGKILL) once two batches
    landed, a new server starts, and the same query started again finishes: every event once."""
    root = tmp_path / "root"
    generate(root, BATCHES, EVENTS)
    client = tmp_path / "client"
    client.mkdir()
    script = HERE / "restart_passthrough.py"
    server = serve(root)
    run_client(script, server.url, "kill-after-2", server.proc.pid, cwd=client)
    server.proc.wait(timeout=30)
    server = serve(root)
    run_client(script, server.url, "finish", cwd=client)
    _, got = delta(root / "data" / "events")
    ids = [json.loads(r)["event_id"] for r in got]
    assert len(ids) == TOTAL, f"{len(ids)} rows for {TOTAL} events"
    assert len(set(ids)) == len(ids), "an event was written twice"


def test_run_again_with_more_input_continues_like_the_cli(tmp_path, serve):
    """The seed's file run twice on one root, with more files between, continues every query
    from its checkpoint as `run all` run twice does: the same tables, batch ids going on, and
    recentProgress of the second run is that run's only (Spark keeps it in memory per run)."""
    connect, cli, client = tmp_path / "connect", tmp_path / "cli", tmp_path / "client"
    generate(connect, 4, 300)
    copy_input(connect / "input", cli / "input")
    shutil.copytree(connect / "data" / "users", cli / "data" / "users")
    client.mkdir()
    flags = ["--trigger", "available-now", "--max-files-per-trigger", 1]
    reports = []
    for run in range(2):
        if run == 1:
            mb("generate", "--input", connect / "input", "--batches", 3, "--from-batch", 4,
               "--events-per-batch", 300, "--seed", 7)
            copy_input(connect / "input", cli / "input")
        server = serve(connect)
        try:
            out = run_client(HERE / "seed_examples.py", server.url, cwd=client)
        except AssertionError as e:
            raise AssertionError(f"run {run + 1}: {e}\n--- server log ---\n{server.tail()}") from None
        server.stop()
        reports.append(json.loads([l for l in out.splitlines() if l.startswith("REPORT ")][-1][7:]))
        mb("run", "all", *flags, cwd=cli)
    problems = []
    for table in TABLES.values():
        got, want = delta(connect / "data" / table), delta(cli / "data" / table)
        if got != want:
            problems.append(f"{table}: {len(got[1])} rows after two runs through the server, "
                            f"{len(want[1])} after two CLI runs (schemas equal: {got[0] == want[0]})")
    for handle in HANDLES:
        progress = reports[1]["progress"][handle]
        run_id = reports[1]["run_ids"][handle]
        older = sorted({p["batchId"] for p in progress if p["runId"] != run_id})
        if older:
            problems.append(f"{handle}: the second run's recentProgress holds batches {older} "
                            f"of an earlier run (runId other than {run_id})")
        ran = [p for p in progress if p["runId"] == run_id and "addBatch" in p["durationMs"]]
        if not ran or ran[0]["batchId"] == 0:
            problems.append(f"{handle}: the second run starts over at batch 0 or ran none: "
                            f"{[p['batchId'] for p in ran]}")
        elif sum(p["numInputRows"] for p in ran) != 3 * 300:
            problems.append(f"{handle}: the second run read "
                            f"{sum(p['numInputRows'] for p in ran)} rows, 900 are new")
    assert not problems, "\n".join(problems)
