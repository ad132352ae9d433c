#!/usr/bin/env bash
# The PySpark suite: the real pyspark[connect]==3.5.9 client against `microbatch serve`.
#   MICROBATCH_PYSPARK_VENV  the client's virtualenv (default ~/.cache/microbatch-pyspark-venv,
#                            kept between runs; made when missing or not as pinned)
#   MICROBATCH_BIN           the binary (default: the release build in $CARGO_TARGET_DIR, built
#                            when missing)
# Needs Python 3.8–3.11 and PyPI; without them it fails, it does not skip.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${MICROBATCH_PYSPARK_VENV:-$HOME/.cache/microbatch-pyspark-venv}"
PY="${PYTHON:-python3}"
REQS=(pyspark==3.5.9 grpcio==1.85.3 grpcio-status==1.85.3 googleapis-common-protos==1.76.0 protobuf==7.36.2
      pandas==2.3.3 numpy==1.26.4 pyarrow==16.1.0 deltalake==1.6.6 pytest==9.2.0)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" - "${REQS[@]}" <<'PYEOF'
import sys, importlib.metadata as md
for req in sys.argv[1:]:
    name, ver = req.split("==")
    try:
        if md.version(name) != ver:
            sys.exit(1)
    except md.PackageNotFoundError:
        sys.exit(1)
PYEOF
then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "${REQS[@]}"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/microbatch-target}"
if [ -z "${MICROBATCH_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --quiet)
  export MICROBATCH_BIN="$CARGO_TARGET_DIR/release/microbatch"
fi
cd "$HERE"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning "$@" "$HERE"
