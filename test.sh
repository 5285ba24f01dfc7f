#!/usr/bin/env bash
# Set everything up (first time only), then lint and run the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
.venv/bin/ruff check engine tui tests scripts
.venv/bin/ruff format --check engine tui tests scripts
.venv/bin/python -m mypy engine tui
.venv/bin/python -m pytest "$@"
