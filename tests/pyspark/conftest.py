"""Shared by the suite: the microbatch binary, a server on a free port per test, folders."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def binary() -> str:
    b = os.environ.get("MICROBATCH_BIN")
    if b:
        return b
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/microbatch-target"))
    return str(Path(target) / "release" / "microbatch")


def mb(*args, cwd=None, check=True):
    """Runs the CLI; its output, or a failure with its stderr."""
    r = subprocess.run([binary(), *args], cwd=cwd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"microbatch {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r


class Server:
    """`microbatch serve` on a free port, serving `root`."""

    def __init__(self, root: Path, *extra: str, env=None):
        self.root = root
        self.proc = subprocess.Popen(
            [binary(), "serve", "--port", "0", "--root", str(root), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stderr.readline()
        if "listening on " not in line:
            self.proc.kill()
            raise AssertionError(f"the server did not start: {line}{self.proc.stderr.read()}")
        self.addr = line.split("listening on ")[1].split()[0]
        self.port = int(self.addr.rsplit(":", 1)[1])
        self.url = f"sc://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None


@pytest.fixture
def serve():
    servers = []

    def start(root: Path, *extra: str, env=None) -> Server:
        s = Server(root, *extra, env=env)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.stop()


def copy_input(src: Path, dst: Path):
    """Copies input files keeping their mtimes: the file source takes files in mtime order."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file():
            shutil.copy2(f, dst / f.name)


def run_client(script: Path, *args: str, cwd: Path, env=None):
    """Runs a client script with this interpreter; its stdout, or a failure with its output."""
    r = subprocess.run([sys.executable, str(script), *args], cwd=cwd, capture_output=True,
                       text=True, env=env, timeout=600)
    if r.returncode != 0:
        raise AssertionError(f"{script.name} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout
