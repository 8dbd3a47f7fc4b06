#!/usr/bin/env bash
# Set up tagsight on a fresh Debian machine: system packages, PyTorch from the local wheels,
# the package with its extras, and WordNet for nltk. Idempotent; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"

APT=()
[[ -f /usr/share/wordnet/data.noun && -f /usr/share/wordnet/index.sense ]] || APT+=(wordnet-base wordnet-sense-index)
command -v chromium >/dev/null || APT+=(chromium)   # the review page's browser tests
command -v wrk >/dev/null || APT+=(wrk)             # the load generator of the multi-app serving benchmark's test
if (( ${#APT[@]} )); then
  echo "== installing Debian packages: ${APT[*]}"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${APT[@]}"
fi

PY=${PYTHON:-python3}
echo "== installing PyTorch 2.14.1 / torchvision 0.29.1"
$PY -m pip install -q torch==2.14.1 torchvision==0.29.1
echo "== installing tagsight with its extras"
$PY -m pip install -q -e ".[all]"
# The PP-OCR text detector without its opencv-python requirement (see pyproject.toml, extra "curate").
$PY -m pip install -q --no-deps "rapidocr-onnxruntime==1.4.4"
# MTCNN with its weights in the wheel, for counting people in alt text; its pins are stale, hence --no-deps
# (it needs only torch, torchvision, numpy and Pillow, installed above).
$PY -m pip install -q --no-deps "facenet-pytorch==2.6.0"
# lightly's SwAV and DINO: the reference implementations tests/bench/test_ssl.py checks ours against step for step
# (extra "bench"; only this package of it, img2dataset's pins are not wanted in every install).
$PY -m pip install -q "lightly==1.6.0"
echo "== installing WordNet for nltk"
$PY -m tagsight.cli setup wordnet
echo "== setup done"
