"""Experiments: the same cards over a question set, arm by arm, measured and compared."""
