"""A model as the evaluator scores it: loaded with its preprocessing (``preprocess``) and its label space
(``labels``) by ``loading``."""
