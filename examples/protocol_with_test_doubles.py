"""Develop a protocol without any model: seat the panel on a FunctionModel and look at
exactly what each seat is shown in each stage (blind, anonymized, named for the chair)."""

from pathlib import Path
from tempfile import TemporaryDirectory

from council import Council
from council.protocols import load_protocol_file
from council.seats import ModelRequest
from council.testing import FunctionModel, ScriptedModel

PROTOCOL = """\
name: two-rounds
description: A blind round, one anonymized rebuttal round, and the chair's verdict.
stages:
  - id: opening
    kind: statement
    prompt: "{{ question }} Give your position."
  - id: rebuttal
    kind: response
    sees: [opening]
    anonymize: true
    prompt: Rebut the weakest answer above.
  - id: verdict
    kind: synthesis
    sees: [opening, rebuttal]
    prompt: Write the verdict and name the dissent.
"""


def answer(request: ModelRequest) -> str:
    shown = request.messages[-1]["content"]
    print(f"--- {request.stage} / {request.seat} is shown:\n{shown}\n")
    return f"As {request.seat}, my {request.stage} answer."


with TemporaryDirectory() as folder:
    path = Path(folder) / "two-rounds.yaml"
    path.write_text(PROTOCOL)
    council = Council(
        ["hayek", "keynes"],
        protocol=load_protocol_file(path),
        model=FunctionModel(answer),
        seats={"chair": ScriptedModel(["The council splits: hayek against keynes."])},
        runs_dir=None,
    )
    result = council.convene("Should the central bank target nominal GDP?")
    print("Synthesis:", result.synthesis)
