"""MkDocs hooks for the documentation site (mkdocs.yml names this file).

- The README is the site's front page: it is served as ``index.md`` with its links into
  ``docs/`` made relative to the site, so one file is both GitHub's front page and the site's.
- A stale command-line reference fails the build: docs/cli.md must be what
  build-support/cli_reference.py renders from the parser today.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent


def front_page(readme: str) -> str:
    """The README with its ``docs/...`` links pointing at the site's pages."""
    return re.sub(r"\]\(docs/", "](", readme)


def on_pre_build(config: Any) -> None:
    sys.path.insert(0, str(ROOT))  # this checkout's council, whatever the environment installed
    script = ROOT / "build-support" / "cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if module.PAGE.read_text(encoding="utf-8") != module.render():
        raise PluginError(
            "docs/cli.md differs from `council --help`: run build-support/cli_reference.py"
        )


def on_files(files: Files, config: Any) -> Files:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=front_page(readme)))
    return files
