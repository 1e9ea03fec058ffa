"""The README's Python example and the shipped examples run as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def readme_python_blocks() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert blocks, "the README has no Python example"
    return blocks


def readme_python_example() -> str:
    return readme_python_blocks()[0]


def readme_block(first_line: str) -> str:
    """The README's Python block whose code includes ``first_line``."""
    matches = [block for block in readme_python_blocks() if first_line in block]
    assert len(matches) == 1, first_line
    return matches[0]


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.local_model
def test_readme_example_runs_on_the_bundled_model(_runs_home, capsys) -> None:
    exec(compile(readme_python_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    run_dirs = [p for p in _runs_home.iterdir() if p.is_dir() and p.name[0] != "."]
    assert (_runs_home / "ledger.sqlite").is_file()
    assert len(run_dirs) == 1 and str(run_dirs[0]) in out
    assert "local/smollm2-135m-instruct" in out
    assert (run_dirs[0] / "transcript.md").is_file()


@pytest.mark.local_model
def test_readme_persona_in_code_runs_on_the_bundled_model(_runs_home, capsys) -> None:
    scope: dict[str, object] = {}
    exec(compile(readme_block("Persona("), "README.md", "exec"), scope)
    out = capsys.readouterr().out
    assert out.startswith("# Is remote work here to stay?")
    assert "| skeptic | skeptic | panel | `local/smollm2-135m-instruct` |" in out
    result = scope["result"]
    assert getattr(result, "status") == "completed"  # noqa: B009 - a name from exec'd code


def test_example_with_test_doubles(capsys) -> None:
    runpy.run_path(str(REPO / "examples" / "protocol_with_test_doubles.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "Synthesis: The council splits" in out
    assert "--- rebuttal / hayek is shown:" in out and "Member" in out


def test_example_seat_map_makes_no_call(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.argv", ["mixed_providers.py"])
    runpy.run_path(str(REPO / "examples" / "mixed_providers.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "popper   panel  openai" in out and "chair    chair  local" in out
