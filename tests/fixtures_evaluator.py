"""Session fixtures for the evaluator tests."""
