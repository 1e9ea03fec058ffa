"""The application: a Council convenes runs; resume, replay, baselines and experiments are
built on it."""
