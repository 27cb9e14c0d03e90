"""The offline demo (``run``) and the tiny classifiers it trains (``train_tiny``)."""
