#!/usr/bin/env bash
# Creates .venv and installs Forenscope with every extra and the test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'
# invisible-watermark's metadata asks for torch (several GB) although its DWT-DCT decoder only
# needs numpy, PyWavelets and OpenCV, which the [watermark] extra installs: skip its dependencies.
.venv/bin/python -m pip install --quiet --no-deps 'invisible-watermark==0.2.0'
echo "forenscope installed in $(pwd)/.venv" >&2
