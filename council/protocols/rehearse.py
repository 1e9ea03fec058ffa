"""Rendering every stage prompt before a run needs it, with representative values.

``protocols validate`` calls this so a prompt that fails or blows the render budget only in a
later loop round, or only for a guard, is refused with its file, line and stage before any run.
The engine does the same with the run's real values when a council is convened.
"""

from __future__ import annotations

from council.base.errors import ProtocolError
from council.protocols.graph import Protocol
from council.protocols.spec import LoopStage
from council.protocols.variables import examples
from council.text.templates import render_template

QUESTION = "Should a city ban private cars from its centre?"


def rehearse(protocol: Protocol) -> int:
    """Render each speaking stage's prompt for every round it can run; returns how many
    renders it made. Raises ``ProtocolError`` naming the stage and line of the first failure."""
    renders = 0
    for stage in protocol.speaking_stages():
        loop_id = protocol.loop_of.get(stage.id)
        loop = protocol.stage(loop_id) if loop_id else None
        rounds = loop.rounds if isinstance(loop, LoopStage) else 1
        for round_number in range(1, rounds + 1):
            # Each stage with the variables its kind offers (council/protocols/variables.py).
            variables = {
                **examples(stage.prompt_variables, QUESTION),
                "question": QUESTION,
                "stage": stage.id,
                "round": round_number,
                "rounds": rounds,
            }
            render_template(
                stage.prompt,
                variables,
                path=protocol.path,
                first_line=protocol.prompt_line(stage.id),
                error=ProtocolError,
                field=f"stage '{stage.id}'.prompt (round {round_number})",
            )
            renders += 1
    return renders
