"""The README's Python example and the shipped examples run as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def readme_python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert blocks, "the README has no Python example"
    return blocks[0]


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", text, re.DOTALL)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    assert "make test" in (REPO / ".ci" / "run").read_text()


@pytest.mark.local_model
def test_readme_example_runs_on_the_bundled_model(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_python_example(), "README.md", "exec"), {})
    out = capsys.readouterr().out
    run_dirs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and p.name[0] != "."]
    assert (tmp_path / "runs" / "ledger.sqlite").is_file()
    assert len(run_dirs) == 1 and str(run_dirs[0]) in out
    assert "local/smollm2-135m-instruct" in out
    assert (run_dirs[0] / "transcript.md").is_file()


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
