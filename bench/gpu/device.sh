#!/usr/bin/env bash
# The accelerator check on the GPU machine, from the repository root: the carried wheels (.whl/: what the
# machine's own python3 lacks), tagsight itself without dependencies, then bench/gpu/run.py on the carried
# data (.gpu/data from bench/gpu/prepare.py). Results and logs go to $OUT (default /tmp/gpu-out).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$OUT/nvidia-smi.csv" 2>&1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
TAGSIGHT=/tmp/tagsight
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --target /tmp/tagsight . \
  || { echo "tagsight could not be installed; running it from src/"; TAGSIGHT=$PWD/src; }
export PYTHONPATH=$TAGSIGHT:/tmp/site PYTHONUNBUFFERED=1
python3 bench/gpu/run.py --data .gpu/data --out "$OUT" --budget "${BUDGET:-400}" "$@" 2>&1 | tee "$OUT/log.txt"
