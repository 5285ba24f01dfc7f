#!/usr/bin/env bash
# Set everything up (first time only) and open the fmnist-tui app. Arguments go to the app.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$root/scripts/setup.sh"
exec "$root/.venv/bin/fmnist-tui" "$@"
