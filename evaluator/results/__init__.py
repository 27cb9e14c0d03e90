"""A result and its files, without the code that made it.

- :mod:`~evaluator.results.schema`: ``results.json`` (``Results``, ``check_document``, ``from_predictions``)
  and the schemas of ``predictions.parquet`` and ``challenge.parquet``;
- :mod:`~evaluator.results.report`: the console table and ``summary.md``;
- :mod:`~evaluator.results.submission`: the Hub forms of a result (``.eval_results/in9.yaml``, model-index).

This package never imports the model-running code (models, preprocessing, prediction, the challenge search,
torch): the leaderboard reads results with it on a machine that has no model.
"""
