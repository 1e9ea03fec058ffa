"""The README's examples, the docs pages' Python examples and the shipped examples run as
written: on the loopback fake provider standing in for the bundled model (fast, in every run of
the suite), and on the bundled model itself (``local_model``)."""

from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import pytest

from council.cli.main import main

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
CONVENING = REPO / "docs" / "convening.md"


def python_blocks(page: Path) -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks, f"{page.name} has no Python example"
    return blocks


def python_block(page: Path, first_line: str) -> str:
    """The page's Python block whose code includes ``first_line``."""
    matches = [block for block in python_blocks(page) if first_line in block]
    assert len(matches) == 1, first_line
    return matches[0]


def section(page: Path, heading: str) -> str:
    text = page.read_text(encoding="utf-8")
    assert f"\n{heading}\n" in text, heading
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def shell_commands(text: str) -> list[list[str]]:
    """The commands of the first ``sh`` block in ``text``, comments and continuations read."""
    block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert block is not None
    lines = block.group(1).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip()]


def run_python(page: Path, code: str, scope: dict[str, object] | None = None) -> None:
    exec(compile(code, str(page), "exec"), {} if scope is None else scope)


def test_readme_opens_with_the_two_commands() -> None:
    commands = shell_commands(README.read_text(encoding="utf-8"))
    assert commands == [["make", "demo"], ["make", "test"]]
    assert "make test" in (REPO / ".ci" / "run").read_text()


def check_readme_example(runs_home: Path, out: str) -> None:
    run_dirs = [p for p in runs_home.iterdir() if p.is_dir() and p.name[0] != "."]
    assert (runs_home / "ledger.sqlite").is_file()
    assert len(run_dirs) == 1 and str(run_dirs[0]) in out
    assert "local/smollm2-135m-instruct" in out
    assert (run_dirs[0] / "transcript.md").is_file()


def test_readme_python_example_runs(local_model_on_fake_provider, _runs_home, capsys) -> None:
    run_python(README, python_blocks(README)[0])
    check_readme_example(_runs_home, capsys.readouterr().out)
    assert local_model_on_fake_provider.request_count > 0


@pytest.mark.local_model
def test_readme_example_runs_on_the_bundled_model(_runs_home, capsys) -> None:
    run_python(README, python_blocks(README)[0])
    check_readme_example(_runs_home, capsys.readouterr().out)


def test_readme_command_line_example_runs(local_model_on_fake_provider, _runs_home, capsys) -> None:
    commands = shell_commands(section(README, "## From the command line"))
    assert [command[:2] for command in commands] == [["council", "convene"], ["council", "runs"]]
    convene, listing = commands
    assert main(convene[1:]) == 0
    out = capsys.readouterr().out
    run_dirs = [p for p in _runs_home.iterdir() if p.is_dir() and p.name[0] != "."]
    assert len(run_dirs) == 1 and f"Run folder: {run_dirs[0]}" in out
    assert main(listing[1:]) == 0
    assert run_dirs[0].name in capsys.readouterr().out


def check_persona_in_code(out: str, scope: dict[str, object]) -> None:
    assert out.startswith("# Is remote work here to stay?")
    assert "| skeptic | skeptic | panel | `local/smollm2-135m-instruct` |" in out
    result = scope["result"]
    assert getattr(result, "status") == "completed"  # noqa: B009 - a name from exec'd code


def test_persona_in_code_example_runs(local_model_on_fake_provider, capsys) -> None:
    scope: dict[str, object] = {}
    run_python(CONVENING, python_block(CONVENING, "Persona("), scope)
    check_persona_in_code(capsys.readouterr().out, scope)


@pytest.mark.local_model
def test_persona_in_code_runs_on_the_bundled_model(capsys) -> None:
    scope: dict[str, object] = {}
    run_python(CONVENING, python_block(CONVENING, "Persona("), scope)
    check_persona_in_code(capsys.readouterr().out, scope)


def test_spec_example_runs(capsys) -> None:
    run_python(CONVENING, python_block(CONVENING, "CouncilSpec("))
    out = capsys.readouterr().out
    assert "('kuhn', 'anthropic/claude-3-5-haiku-20241022')" in out
    assert "('popper', 'openai/gpt-4o-mini')" in out


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
