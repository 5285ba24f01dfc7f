#!/usr/bin/env bash
# Set everything up (first time only), then lint and run the whole test suite, next to a
# throwaway PostgreSQL server when PostgreSQL is installed (scripts/postgres.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
# The extras the tests exercise: [postgres] (the driver for `search --storage
# postgresql://...`), [export] (ONNX export and onnxruntime) and [tensorboard]; and
# [dev] again where an older .venv lacks a test dependency added since (scikit-learn).
if ! .venv/bin/python -c 'import psycopg2, onnx, onnxscript, onnxruntime, tensorboard, sklearn' 2>/dev/null; then
  echo "installing the [postgres], [export] and [tensorboard] extras into .venv" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e '.[dev,postgres,export,tensorboard]' 2>&1 | grep -v '^WARNING' >&2 || true
fi
.venv/bin/ruff check engine tui tests scripts
.venv/bin/ruff format --check engine tui tests scripts
.venv/bin/python -m mypy engine tui
bash scripts/postgres.sh .venv/bin/python -m pytest "$@"
