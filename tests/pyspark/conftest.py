"""Shared by the suite: the microbatch binary, one server per test on a free port (killed at the
end, also when the test fails), the input, and client scripts run as processes of their own."""
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCHEMA_DDL = "event_id string, timestamp timestamp, user_id int, event_type string, value double"


def binary() -> str:
    b = os.environ.get("MICROBATCH_BIN")
    if not b:
        target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/microbatch-target"))
        b = str(Path(target) / "release" / "microbatch")
    if not os.access(b, os.X_OK):
        raise AssertionError(f"no microbatch binary at {b} (set MICROBATCH_BIN, or run run.sh)")
    return b


def mb(*args, cwd=None, check=True) -> subprocess.CompletedProcess:
    """Runs the CLI; its result, or a failure quoting its stderr."""
    r = subprocess.run([binary(), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                       timeout=600)
    if check and r.returncode != 0:
        raise AssertionError(f"microbatch {' '.join(map(str, args))} failed "
                             f"(exit {r.returncode}):\n{r.stderr}")
    return r


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`microbatch serve --root ROOT --port <free port>`. Its stderr goes to a file (a pipe that
    nobody reads would fill up and stall the server); `log()` shows it in failure messages."""

    def __init__(self, root: Path, *extra: str, log: Path):
        self.root = Path(root)
        self.log_path = log
        self.port = free_port()
        self._fh = open(log, "w")
        self.proc = subprocess.Popen(
            [binary(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--root", str(self.root), *extra],
            stdout=self._fh, stderr=self._fh, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not re.search(r"listening on \S+", self.log()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"`microbatch serve` did not start "
                                     f"(exit {self.proc.returncode}):\n{self.log()}")
            time.sleep(0.05)
        self.url = f"sc://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n=40) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._fh.close()


@pytest.fixture
def serve(tmp_path_factory):
    """`serve(root, *flags)` starts a server; every server a test started is killed after it."""
    servers = []
    logs = tmp_path_factory.mktemp("logs")

    def start(root: Path, *extra: str) -> Server:
        s = Server(root, *extra, log=logs / f"server{len(servers)}.log")
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


# PySpark 3.5.9's client deadlocks when a SparkSession is garbage-collected on one of its
# release threads: `__del__` -> `client.close()` -> joins the release ThreadPool from inside it,
# and every later ExecutePlan waits for that pool's lock. Sessions made by the tests are kept
# here until the process ends, so none is collected mid-run (a client bug, not the server's).
_SESSIONS = []


@pytest.fixture
def session():
    """`session(url)`: a new Spark Connect session (`builder.remote(url).create()`), stopped
    after the test (else it would stay the default, pointing at a server that is gone)."""
    from pyspark.sql import SparkSession
    made = []

    def make(url):
        s = SparkSession.builder.remote(url).create()
        made.append(s)
        _SESSIONS.append(s)
        return s

    yield make
    for s in made:
        try:
            s.stop()
        except Exception:  # the server may be gone already
            pass


def generate(root: Path, batches: int, events: int, seed: int = 7):
    """The seed's working folder: input/batch_N.json and the users table data/users."""
    root.mkdir(parents=True, exist_ok=True)
    mb("generate", "--input", root / "input", "--batches", batches, "--events-per-batch", events,
       "--seed", seed, "--users", root / "data")


def copy_input(src: Path, dst: Path):
    """Copies the input files with their mtimes: the file source takes files in mtime order."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            shutil.copy2(f, dst / f.name)


def run_client(script: Path, *args: str, cwd: Path, env=None, timeout=600) -> str:
    """Runs a client script with this interpreter; its stdout, or a failure with its output."""
    r = subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, env=env, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"{script.name} failed (exit {r.returncode}):\n"
                             f"--- stdout ---\n{r.stdout[-4000:]}\n--- stderr ---\n{r.stderr[-8000:]}")
    return r.stdout
