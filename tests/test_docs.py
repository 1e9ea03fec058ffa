"""The documentation site: its command-line reference is what ``--help`` prints, every page is in
its navigation and linked from the README (the site's front page). ``make docs`` builds the
site itself with warnings as errors (CI runs it)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from council.cli.main import main

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"


def cli_reference() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cli_reference", REPO / "build-support" / "cli_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_what_the_parser_renders() -> None:
    reference = cli_reference()
    assert reference.PAGE.read_text(encoding="utf-8") == reference.render(), (
        "docs/cli.md is out of date: run python build-support/cli_reference.py"
    )


def test_the_cli_reference_holds_every_commands_help(monkeypatch, capsys) -> None:
    """Each command's ``council ... --help``, run as a user runs it, is on the page verbatim."""
    reference = cli_reference()
    monkeypatch.setenv("COLUMNS", str(reference.WIDTH + 2))
    page = reference.PAGE.read_text(encoding="utf-8")
    from council.cli.main import build_parser

    paths = [path for path, _ in reference.commands(build_parser())]
    assert ("convene",) in paths and ("personas", "import") in paths and len(paths) > 30
    for path in paths:
        with pytest.raises(SystemExit) as done:
            main([*path, "--help"])
        assert done.value.code == 0
        shown = capsys.readouterr().out
        assert f"council {' '.join(path)}".strip() in page
        assert f"```text\n{shown}```" in page, path


def nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in nav_pages(value)]
    assert isinstance(nav, list)
    return [page for item in nav for page in nav_pages(item)]


def site_pages() -> set[str]:
    """The pages under docs/ the site is built from (templates are sources, not pages)."""
    return {p.name for p in DOCS.glob("*.md") if not p.name.endswith(".template.md")}


def test_every_page_is_in_the_navigation() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = nav_pages(config["nav"])
    assert pages[0] == "index.md"  # the README, served by build-support/mkdocs_hooks.py
    assert sorted(pages[1:]) == sorted(site_pages())


def test_the_readme_links_every_page_and_only_pages_that_exist() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(docs/([^)#]+)", readme))
    assert linked == site_pages()
    assert not re.findall(r"\]\((?!docs/|https?://)([^)]+)\)", readme), "a link the site lacks"
