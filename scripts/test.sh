#!/usr/bin/env bash
# Set-up (if needed: the venv, and Debian's chromium for the browser test), lint, formatting and the layers,
# then the whole test suite, offline. Extra arguments go to pytest (the quick loop: -m "not slow").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-chromium.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
ruff check .
ruff format --check .
lint-imports
python -m pytest tests "$@"
