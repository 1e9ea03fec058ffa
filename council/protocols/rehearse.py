"""Rendering every stage prompt before a run needs it, with representative values.

``protocols validate`` calls this so a prompt that fails or blows the render budget only in a
later loop round, or only for a guard, is refused with its file, line and stage before any run.
The engine does the same with the run's real values when a council is convened.
"""

from __future__ import annotations

from council.base.errors import ProtocolError
from council.protocols.graph import Protocol
from council.protocols.spec import LoopStage
from council.text.templates import render_template

# Every variable a stage prompt may use, with a value of the kind the engine passes.
REPRESENTATIVE: dict[str, object] = {
    "question": "Should a city ban private cars from its centre?",
    "seat": "popper",
    "persona": "popper",
    "members": 3,
    "agreement": "72%",  # guard stages: the checked vote's tally
    "leading": "yes",
    "dissenters": 1,
    "diversity": "0.142",  # guard stages that watch a stage: what the meter measured
    "diversity_floor": "0.205",
    "diversity_p": "0.412",  # its p against the no-persona baseline
    "drifting": "popper (0.91)",
    "reasked": "What do we mean by a centre?",  # a hemlock guard: the question asked again
    "questioner": False,  # whether the seat is the protocol's questioner (nyk's Socrates)
    # The seat's card, as its body sees it (``council.personas.prompt.template_variables``).
    "card": {
        "name": "popper",
        "description": "A philosopher of science who tests bold conjectures.",
        "role": "critic",
        "figure": "Karl Popper",
        "traits": ["critical"],
        "framework": ["falsification"],
        "asks": ["What would show this is false?"],
        "blind_spots": ["tacit knowledge"],
        "polarity_pairs": ["kuhn"],
        "reasoning_method": "conjecture and refutation",
        "domain": "science",
        "polarity": "falsify first",
        "tags": ["science"],
        "topic": "a city's car ban",
    },
}


def rehearse(protocol: Protocol) -> int:
    """Render each speaking stage's prompt for every round it can run; returns how many
    renders it made. Raises ``ProtocolError`` naming the stage and line of the first failure."""
    renders = 0
    for stage in protocol.speaking_stages():
        loop_id = protocol.loop_of.get(stage.id)
        loop = protocol.stage(loop_id) if loop_id else None
        rounds = loop.rounds if isinstance(loop, LoopStage) else 1
        for round_number in range(1, rounds + 1):
            variables = {
                **REPRESENTATIVE,
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
