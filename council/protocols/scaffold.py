"""``council protocols new NAME``: a protocol file that validates and convenes as written.

It is a working three-stage council (blind answers, replies, the chair's verdict) to change,
not a form to fill in: no placeholder ever reaches a model. Its comments list the variables
each prompt may use, from the same table the engine is held to (council/protocols/variables.py),
so the file written never names a variable the engine does not give.
"""

from __future__ import annotations

import re
from pathlib import Path

from council.base.errors import ConfigError
from council.protocols.spec import ProtocolSpec
from council.protocols.variables import EVERY_STAGE, SYNTHESIS, TemplateVariable
from council.text.sourcefile import write_scaffold_file

SCAFFOLD = """\
# {name}: a protocol to change. Check it, then convene with it:
#   council protocols validate {path}
#   council convene "your question" --protocol {path}
# Every field is explained in examples/protocol.yaml; the kinds of stage and the variables
# each kind's prompt may use are in docs/protocols.md and docs/template-variables.md.
name: {name}
description: Each member answers blind, then replies to the others; the chair writes the verdict.
max_tokens: 256  # each reply's token cap, unless a stage sets its own
stages:
  # Variables every stage's prompt may use:
{every}
  - id: opening
    kind: statement  # blind: each seat sees only the question
    title: Blind round
    prompt: |
      The question before the council: {{{{ question }}}}

      Answer as {{{{ card.role }}}}, from your own method: your position and the two reasons
      that carry it.

  - id: replies
    kind: response  # seats read the stages in `sees` first
    title: Replies
    sees: [opening]
    anonymize: true  # the others show as Member A, B, ...
    prompt: |
      The question before the council: {{{{ question }}}}

      Above are the other members' answers. Name the argument you most disagree with and
      say why; then keep or change your position.

  # The synthesis (exactly one, last; the chair's) may also use:
{synthesis}
  - id: verdict
    kind: synthesis
    title: Chair's verdict
    sees: [opening, replies]
    prompt: |
      The question before the council: {{{{ question }}}}

      Write the council's answer: the verdict in two sentences, where the members
      ({{{{ member_names | join(", ") }}}}) agreed, and who dissented and why.
"""


def _listed(variables: tuple[TemplateVariable, ...]) -> str:
    return "\n".join(
        f"  #   {v.name}: {v.means.removesuffix(' (card.* below)')}" for v in variables
    )


def scaffold_text(name: str, path: Path | str) -> str:
    pattern = ProtocolSpec.model_fields["name"].metadata[0].pattern
    if not re.match(pattern, name):
        suggestion = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "my-protocol"
        raise ConfigError(
            f"protocol name '{name}' must be lowercase letters, digits and hyphens; "
            f"try '{suggestion}'"
        )
    return SCAFFOLD.format(
        name=name, path=path, every=_listed(EVERY_STAGE), synthesis=_listed(SYNTHESIS)
    )


def write_scaffold(name: str, directory: Path, *, force: bool = False) -> Path:
    """Write ``DIRECTORY/NAME.yaml``; an existing file is never overwritten without ``force``."""
    path = directory / f"{name}.yaml"
    return write_scaffold_file(path, scaffold_text(name, path), force=force)
