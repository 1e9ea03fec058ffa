"""Importing litellm, once a process, quietly and offline."""

from __future__ import annotations

import functools
import os
from typing import Any


@functools.cache
def import_litellm() -> Any:
    """Import litellm quietly and offline: its price map is the bundled copy, not a download.
    Once a process: every call asks for it.

    What litellm does on each call that council does not use (its Logging object, the logging
    payload its success handler builds, its own pricing of the response) has no switch in
    litellm 1.110 (counted in Python calls per call): ``no-log`` and ``disable_streaming_logging``
    (read by synchronous streams only) change nothing, and ``turn_off_message_logging`` adds a
    copy of the messages to redact. Council keeps out of it instead: it registers no
    callbacks, streams only for a listener (a stream is more than twice a plain call's work),
    and prices a call once (the cost litellm stamped on a plain response, else
    ``completion_cost`` on the assembled stream)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    from council.seats.command_provider import register

    register(litellm)  # command seats (``cli/...``): local programs, called through litellm
    return litellm
