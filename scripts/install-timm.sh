#!/usr/bin/env bash
# timm (the `timm` extra: timm repositories on the Hub, tests/test_timm.py) in .venv, without touching torch.
# Idempotent: a second run only checks that `import timm` works. Usage: bash scripts/install-timm.sh [PYTHON]
# (default .venv/bin/python; scripts/setup.sh must have run).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
TORCHVISION=0.28.0  # the torchvision release built against torch 2.13 (0.29 needs torch 2.14)

if "$PY" -c "import timm" 2>/dev/null; then
  exit 0
fi

# `import timm` needs torchvision (timm/layers/create_norm.py imports torchvision.ops.misc). The installed torch
# is pinned on the same command line so that no dependency's requirement replaces it (any other torch spec pulls
# a multi-GB CUDA build instead of the CPU wheel on this machine's disk).
TORCH=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
"$PY" -m pip install -q "timm>=1.0.23" "torchvision==$TORCHVISION" "torch==$TORCH"

# The PyPI torchvision 0.28.0 wheel's compiled ops (_C.so) link CUDA libraries that a CPU torch build lacks, so
# `import torchvision` fails ("operator torchvision::nms does not exist"): its op registrations run against ops
# that were never loaded. timm needs none of those ops (nms, roi_align, deform_conv: detection only), only the
# pure-Python parts, which import once _C.so is gone and the two registration modules are empty. Applied only
# when the import fails in exactly that way, so a working torchvision (a CUDA machine, a CPU wheel) is left as is.
ERR=$("$PY" -c "import torchvision" 2>&1 >/dev/null || true)
if printf '%s' "$ERR" | grep -q "operator torchvision::.* does not exist"; then
  TV=$("$PY" -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('torchvision').origin))")
  rm -f "$TV"/_C*.so
  for f in _meta_registrations.py _autograd_registrations.py; do
    if [ -f "$TV/$f" ]; then
      printf '%s\n' "# Emptied by in9-bench scripts/install-timm.sh: registrations for the compiled ops (_C.so)," \
        "# removed because that build links CUDA libraries the CPU torch lacks." > "$TV/$f"
    fi
  done
fi

if ! "$PY" -c "import timm" 2>/dev/null; then
  echo "error: timm still does not import after installing it:" >&2
  "$PY" -c "import timm" 2>&1 | tail -n 1 >&2
  exit 1
fi
"$PY" -c "import torch, timm, torchvision; print(f'timm {timm.__version__}, torchvision {torchvision.__version__}, torch {torch.__version__}')"
