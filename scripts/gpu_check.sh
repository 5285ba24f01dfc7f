#!/usr/bin/env bash
# The CUDA check: run it on a machine with an NVIDIA GPU, from anywhere.
#
#   scripts/gpu_check.sh              # the check on cuda, JSON per part in $OUT
#   scripts/gpu_check.sh --dry-run    # the same parts on the CPU, small (DRY_RUN=1 too)
#
# It runs `python3 -m tui.cli ...` from this tree (PYTHONPATH, no install) with that
# machine's torch; textual, optuna and plotext are not needed. Data: $FMNIST_DATA, else
# the tree's .gpu-data/ folder (the four Fashion-MNIST .gz files), else the usual places.
# Results: one JSON file per part under $OUT (default ./gpu-check-out), written as each
# part ends; a part whose file exists is not run again. The whole check stops itself
# within GPU_CHECK_SECONDS (default 280) and is killed by `timeout` soon after.
# Environment: PYTHON (default python3), OUT, FMNIST_DATA, DRY_RUN, GPU_CHECK_SECONDS.
# Options after the script name go to scripts/gpu_check.py (--parts env,mlp,...).
set -euo pipefail

tree="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
seconds="${GPU_CHECK_SECONDS:-280}"

if [[ -z "${FMNIST_DATA:-}" && -d "$tree/.gpu-data" ]]; then
    export FMNIST_DATA="$tree/.gpu-data"
fi
export OUT="${OUT:-$PWD/gpu-check-out}"
export PYTHONPATH="$tree${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

exec timeout --kill-after=10 "$((${seconds%.*} + 15))" \
    "$python" "$tree/scripts/gpu_check.py" --seconds "$seconds" "$@"
