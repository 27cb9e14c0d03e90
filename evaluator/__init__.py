"""The IN-9 evaluator: ``evaluator.evaluate(model, data="in9", variants=None, config=None, ...) -> Results``
(with ``EvalConfig``), ``evaluator.evaluate_many(models, data, ...)`` for sweeps, and ``in9-eval``.

Imports are lazy so that ``import evaluator`` (and the leaderboard, which never runs models) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evaluator.api import evaluate
    from evaluator.config import EvalConfig
    from evaluator.data import open_data
    from evaluator.model.loading import load_model, wrap_module
    from evaluator.results.schema import Results
    from evaluator.sweep import ModelSpec, evaluate_many

__all__ = [
    "EvalConfig",
    "evaluate",
    "evaluate_many",
    "ModelSpec",
    "open_data",
    "load_model",
    "wrap_module",
    "Results",
]

_HOMES = {
    "evaluate": "evaluator.api",
    "EvalConfig": "evaluator.config",
    "open_data": "evaluator.data",
    "load_model": "evaluator.model.loading",
    "wrap_module": "evaluator.model.loading",
    "Results": "evaluator.results.schema",
    "evaluate_many": "evaluator.sweep",
    "ModelSpec": "evaluator.sweep",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'evaluator' has no attribute {name!r}")
