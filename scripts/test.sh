#!/usr/bin/env bash
# Set-up (if needed: the venv, and Debian's chromium for the browser test) and the whole test suite, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install-chromium.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
python -m pytest tests "$@"
