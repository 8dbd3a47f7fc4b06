#!/usr/bin/env bash
# Set up tagsight on a fresh Debian machine: system packages, PyTorch from the local wheels,
# the package with its extras, and WordNet for nltk. Idempotent; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"

if [[ ! -f /usr/share/wordnet/data.noun || ! -f /usr/share/wordnet/index.sense ]]; then
  echo "== installing Debian packages (WordNet 3.0)"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q wordnet-base wordnet-sense-index
fi

PY=${PYTHON:-python3}
echo "== installing PyTorch 2.14.1 / torchvision 0.29.1"
$PY -m pip install -q torch==2.14.1 torchvision==0.29.1
echo "== installing tagsight with its extras"
$PY -m pip install -q -e ".[all]"
echo "== installing WordNet for nltk"
$PY -m tagsight.cli setup wordnet
echo "== setup done"
