#!/usr/bin/env bash
# Shared set-up for ./app.sh and ./test.sh: a virtual environment in .venv with the
# project installed (editable, with the dev extra), and Fashion-MNIST where it can be had.
# Idempotent: a second run only checks stamps and returns in about a second.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      python="$candidate"
      break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "fmnist-tui needs Python 3.10 or newer; none found on PATH" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $python" >&2
  "$python" -m venv .venv
fi

# Reinstall only when the dependency list changed.
stamp=.venv/.fmnist-tui-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing fmnist-tui and its dependencies into .venv (first time: about a minute)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING' >&2 || true
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v '^WARNING' >&2 || true
  .venv/bin/python -c 'import engine, tui, torch, textual' || { echo "installation failed" >&2; exit 1; }
  echo "$want" >"$stamp"
fi

# The full Fashion-MNIST from Debian, where we may install packages; otherwise the app
# finds it elsewhere (FMNIST_DATA, the cache, a download) or falls back to the sample.
data=/usr/share/datasets/fashion-mnist
if [ ! -f "$data/train-images-idx3-ubyte.gz" ] && [ -z "${FMNIST_DATA:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing dataset-fashion-mnist with apt-get" >&2
    if ! apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1; then
      apt-get update -qq >/dev/null 2>&1 || true
      apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 ||
        echo "could not install dataset-fashion-mnist; using another source" >&2
    fi
  else
    echo "note: for the full offline dataset run: sudo apt-get install dataset-fashion-mnist" >&2
  fi
fi
