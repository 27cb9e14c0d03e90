#!/usr/bin/env bash
# Set-up (if needed) and the offline demo: the paper's main finding in miniature.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
in9-demo "$@"
