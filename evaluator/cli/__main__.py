"""``python -m evaluator.cli`` is ``in9-eval`` (what ``torchrun ... -m evaluator.cli`` runs)."""

import sys

from evaluator.cli.eval import main

sys.exit(main())
