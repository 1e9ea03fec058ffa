"""``council personas new``: a card that loads and renders at once, with TODOs to fill in.

The TODO markers are lint errors (``todo``), so ``council personas lint`` shows what is left
and a council refuses the card until every TODO is replaced; then it lints clean.
"""

from __future__ import annotations

import re
from pathlib import Path

from council.base.errors import ConfigError
from council.personas.card import NAME_PATTERN, slugify
from council.text.sourcefile import write_scaffold_file

SCAFFOLD = """\
---
name: {name}
description: "TODO: one sentence: who this persona is and what they test in a proposal"
role: "TODO: their role, e.g. Historian of public health"
figure: null  # optional: a named thinker, e.g. "Elinor Ostrom (1933–2012)"
traits: ["TODO: a trait", "TODO: another trait"]
framework:
  - "TODO: Framework name: what it claims, in one line"
asks:
  - "TODO: a question this persona always asks"
blind_spots:
  - "TODO: something this persona tends to miss"
polarity_pairs: []  # personas who argue the other side; they should list this one too
model: null  # optional model hint in litellm form, e.g. openai/gpt-4o-mini
provider_affinity: []
tags: []
extensions: {{}}
---
## Identity

You are {{{{ figure or role }}}}. Your role: {{{{ role }}}}. You are {{{{ traits | join(', ') }}}}.

The council is deliberating: {{{{ topic }}}}

## Method

Reason with your frameworks:
{{% for f in framework %}}- {{{{ f }}}}
{{% endfor %}}
Keep asking:
{{% for q in asks %}}- {{{{ q }}}}
{{% endfor %}}
## What you tend to miss

{{% for b in blind_spots %}}- {{{{ b }}}}
{{% endfor %}}
Admit these when they bear on the question. Do not yield to the majority without a reason.

## Output format

Plain prose, at most about 200 words: your position, your key reasons, one question for the
council.
"""


def scaffold_text(name: str) -> str:
    if not re.match(NAME_PATTERN, name):
        raise ConfigError(
            f"persona name '{name}' must be lowercase letters, digits and hyphens; "
            f"try '{slugify(name)}'"
        )
    return SCAFFOLD.format(name=name)


def write_scaffold(name: str, directory: Path, *, force: bool = False) -> Path:
    """Write ``DIRECTORY/NAME.md``; an existing card is never overwritten without ``force``."""
    path = directory / f"{name}.md"
    return write_scaffold_file(path, scaffold_text(name), force=force)
