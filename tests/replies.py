"""Reply functions for the loopback fake provider, shared by the test modules."""

from __future__ import annotations

import hashlib
import json
from typing import Any

WORDS = ["cars", "city", "transit", "rules", "freedom", "cost", "safety", "data", "trust", "market"]


def varied(body: dict[str, Any]) -> str:
    """Different words for different prompts, models and seeds (the same request always gets
    the same answer); a vote line when one is asked for."""
    digest = hashlib.sha256(
        json.dumps([body["model"], body["messages"], body.get("seed")]).encode()
    ).digest()
    text = " ".join(WORDS[b % len(WORDS)] for b in digest[:8])
    return text + ("\nyes | 0.7 | none" if "STANCE" in body["messages"][-1]["content"] else "")
