"""Seat a polarity pair on two different model providers and preview the seat map.

By default this only prints the seat map (no call is made). With --run it convenes: the hosted
seats then need their keys (OPENAI_API_KEY, ANTHROPIC_API_KEY) in the environment.
"""

import sys

from council import Council

council = Council(
    ["popper", "kuhn"],
    protocol="council",
    seats={
        "popper": "openai/gpt-4o-mini",
        "kuhn": "anthropic/claude-3-5-haiku-20241022",
        "chair": "local/smollm2-135m-instruct",
    },
)
for seat in council.seat_map():
    print(f"{seat.seat:<8} {seat.role:<6} {seat.provider:<10} {seat.model}")

if "--run" in sys.argv:
    print(council.convene("Is peer review a paradigm or a method?").synthesis)
