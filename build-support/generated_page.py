"""Writing or checking a page generated from the code (the CLI reference, the template
variables, the architecture page's import graph): one way for every generator.

    python build-support/<generator>.py          # rewrite the page
    python build-support/<generator>.py --check  # exit 1 when the committed page is stale
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_or_check(page: Path, text: str, argv: list[str], generator: str) -> int:
    """Write ``text`` to ``page``, or with ``--check`` in ``argv`` only say (exit 1) whether
    the committed page differs from it; ``generator`` is the script to run to rewrite it."""
    if "--check" in argv:
        if page.read_text(encoding="utf-8") != text:
            print(f"{page.relative_to(ROOT)} is out of date: run build-support/{generator}")
            return 1
        return 0
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page.relative_to(ROOT)}")
    return 0
