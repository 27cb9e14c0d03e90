#!/usr/bin/env bash
# All set-up on a fresh machine with only Python 3.11: a virtual environment in .venv with the package and its
# dev/toolkit extras, and timm (scripts/install-timm.sh). Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import in9_builder, evaluator, torch, datasets, transformers, accelerate, cv2" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.in9-installed ]; then
  python -m pip install -q -U pip
  # Exactly this spec: the CPU wheel on this machine's disk. Any other spec pulls a multi-GB CUDA build.
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[dev,toolkit]" "torch==2.13.0"
  touch .venv/.in9-installed
fi
# timm (its tests run in CI too) with the CPU torch kept; idempotent.
bash scripts/install-timm.sh
