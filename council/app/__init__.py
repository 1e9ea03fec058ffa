"""The application: a Council convenes runs; resume, replay, baselines and experiments are
built on it."""

# Registers follow-ups on ``RunResult`` (``result.follow_up``), which the records layer
# cannot import; light: the council it convenes is imported when one is convened.
from council.app import follow_up as _follow_up  # noqa: F401
