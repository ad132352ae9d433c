#!/usr/bin/env bash
# The PySpark suite: the real pyspark[connect]==3.5.9 client against `microbatch serve`.
#
#   bash tests/pyspark/run.sh [pytest args, e.g. -k seed]
#
#   MICROBATCH_PYSPARK_VENV  the client's virtualenv (default ~/.cache/microbatch-pyspark-venv);
#                            made once and kept; pip runs only when a requirement is not met
#   MICROBATCH_BIN           the binary to test (default: the release build in
#                            ${CARGO_TARGET_DIR:-~/.cache/microbatch-target}, brought up to date
#                            with `cargo build --release`, which builds it when missing)
#   PYTHON                   the interpreter for the virtualenv (default: python3.11 … 3.8)
#
# It needs Python 3.8–3.11 (PySpark 3.5's range) and, the first time, PyPI. Without them it
# fails with the reason; it never skips.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${MICROBATCH_PYSPARK_VENV:-$HOME/.cache/microbatch-pyspark-venv}"
REQS=("pyspark[connect]==3.5.9" "pandas<3" "numpy<2" "pyarrow<17" "deltalake==1.6.6" "pytest")
fail() { echo "tests/pyspark: $*" >&2; exit 1; }

# --- the interpreter ------------------------------------------------------------------------
py_ok() { "$1" -c 'import sys; sys.exit(not ((3, 8) <= sys.version_info[:2] <= (3, 11)))' 2>/dev/null; }
if [ -n "${PYTHON:-}" ]; then
  py_ok "$PYTHON" || fail "PYTHON=$PYTHON is not Python 3.8–3.11 (PySpark 3.5 needs one)"
  PY="$PYTHON"
else
  PY=""
  for c in python3.11 python3.10 python3.9 python3.8 python3; do
    if command -v "$c" >/dev/null && py_ok "$c"; then PY="$c"; break; fi
  done
  [ -n "$PY" ] || fail "no Python 3.8–3.11 found (PySpark 3.5 needs one; set PYTHON=…)"
fi

# --- the virtualenv, cached -----------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ] || ! py_ok "$VENV/bin/python"; then
  echo "tests/pyspark: making the client's virtualenv $VENV" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" || fail "could not make a virtualenv with $PY (is python3-venv installed?)"
fi
# Are the requirements (and those of their extras, recursively) installed? Exit 0 if so.
satisfied() {
  "$VENV/bin/python" - "${REQS[@]}" <<'PYEOF'
import sys
import importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

def ok(req, seen):
    r = Requirement(req)
    try:
        version = md.version(r.name)
    except md.PackageNotFoundError:
        return False
    if not r.specifier.contains(version, prereleases=True):
        return False
    for extra in r.extras:
        for dep in md.requires(r.name) or []:
            d = Requirement(dep)
            if d.marker is not None and d.marker.evaluate({"extra": extra}) and dep not in seen:
                seen.add(dep)
                if not ok(str(d).split(";")[0], seen):
                    return False
    return True

sys.exit(0 if all(ok(r, set()) for r in sys.argv[1:]) else 1)
PYEOF
}
if ! satisfied; then
  echo "tests/pyspark: installing ${REQS[*]} into $VENV" >&2
  "$VENV/bin/python" -m pip install --quiet "${REQS[@]}" \
    || fail "pip could not install ${REQS[*]} (is PyPI reachable?); the suite cannot run"
  satisfied || fail "installed, yet the requirements are not met: ${REQS[*]}"
fi

# --- the binary -------------------------------------------------------------------------------
if [ -z "${MICROBATCH_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/microbatch-target}"
  MICROBATCH_BIN="$CARGO_TARGET_DIR/release/microbatch"
  if command -v cargo >/dev/null; then
    # Also when the binary exists: a stale one would test old code (a no-op when fresh).
    (cd "$REPO" && cargo build --release --quiet) || fail "cargo build --release failed"
  elif [ ! -x "$MICROBATCH_BIN" ]; then
    fail "no binary at $MICROBATCH_BIN and no cargo to build it (or set MICROBATCH_BIN)"
  fi
fi
[ -x "$MICROBATCH_BIN" ] || fail "MICROBATCH_BIN=$MICROBATCH_BIN is not an executable"
"$MICROBATCH_BIN" serve --help >/dev/null 2>&1 || fail "$MICROBATCH_BIN has no \`serve\` command"
export MICROBATCH_BIN

# --- the suite ----------------------------------------------------------------------------------
cd "$HERE"
export PYTHONDONTWRITEBYTECODE=1
# faulthandler_timeout: a test stuck that long prints every thread's stack (then goes on waiting).
exec "$VENV/bin/python" -m pytest -q -ra -p no:cacheprovider -o faulthandler_timeout=300 \
  -W ignore::DeprecationWarning "$@" "$HERE"
