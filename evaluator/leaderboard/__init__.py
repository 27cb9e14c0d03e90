"""The leaderboard: which submissions count, and the page that shows them.

- :mod:`~evaluator.leaderboard.registry`: the canonical fingerprints a submission's data must match (the
  packaged, read-only registry plus the user registry that ``in9-leaderboard register`` fills);
- :mod:`~evaluator.leaderboard.validate`: every check of one submission, as small rules over its files;
- :mod:`~evaluator.leaderboard.site`: the rows of the page, duplicates resolved, and ``build_site``;
- :mod:`~evaluator.leaderboard.table`: one row per results.json under a folder (unvalidated), CSV or md;
- :mod:`~evaluator.leaderboard.plots`: the figures of those rows (matplotlib, optional), one per data edition.

The CLI is :mod:`evaluator.cli.leaderboard` (``in9-leaderboard``). Nothing here runs a model: this package
imports :mod:`evaluator.results` and :mod:`evaluator.metrics`, never the model-running code or torch.
"""
