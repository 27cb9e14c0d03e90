"""The adversarial-backgrounds challenge: the search (``search``), its resumable state (``state``), the run
over a model and a dataset (``run``), and the optional per-background analysis (``analysis``, ``figures``)."""
