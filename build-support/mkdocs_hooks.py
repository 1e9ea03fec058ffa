"""MkDocs hooks for the documentation site (mkdocs.yml names this file).

- The README is the site's front page: it is served as ``index.md`` with its links into
  ``docs/`` made relative to the site, so one file is both GitHub's front page and the site's.
- A stale command-line reference fails the build: docs/cli.md must be what
  build-support/cli_reference.py renders from the parser today; so does a stale import graph
  in docs/architecture.md (build-support/import_graph.py).
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


def _script(name: str) -> Any:
    """A build-support script, loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "build-support" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_pre_build(config: Any) -> None:
    sys.path.insert(0, str(ROOT))  # this checkout's council, whatever the environment installed
    module = _script("cli_reference")
    if module.PAGE.read_text(encoding="utf-8") != module.render():
        raise PluginError(
            "docs/cli.md differs from `council --help`: run build-support/cli_reference.py"
        )
    graph = _script("import_graph")
    if graph.PAGE.read_text(encoding="utf-8") != graph.rendered_page():
        raise PluginError(
            "docs/architecture.md's import graph is stale: run build-support/import_graph.py"
        )


def on_files(files: Files, config: Any) -> Files:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "index.md", content=front_page(readme)))
    return files
