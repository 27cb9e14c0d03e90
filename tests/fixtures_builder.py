"""Session fixtures for the builder tests."""
