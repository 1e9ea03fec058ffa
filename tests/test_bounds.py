"""Hostile input: every attack of the bounds issue ends with one line, in bounded time and
memory, and the ledger stays consistent. Nothing here asserts on wall time: the render budget
(RENDER_SECONDS) is what bounds each case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from council import Budget, Council
from council.base.errors import CardError, ProtocolError
from council.cli.main import main
from council.personas.card import load_card
from council.personas.prompt import system_prompt
from council.seats import ModelRequest
from council.testing import FakeProvider, FunctionModel, well_formed_reply

ROOT = Path(__file__).parent.parent
PANEL = ["popper", "kuhn", "meadows"]

TEMPLATE_ATTACKS = {
    "nested loops": "{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}"
    "{% endfor %}",
    "string doubling": "{% set s = 'abcdefghijklmnop' %}" + "{% set s = s ~ s %}" * 30 + "{{ s }}",
    "percent width": "{{ '%999999999s' % 'x' }}",
    "format width": "{{ '{:>999999999}'.format('x') }}",
    "list growth": "{% set l = [1] %}" + "{% set l = l + l %}" * 40 + "{{ l|length }}",
}


def card_text(body: str, name: str = "attacker", extra: str = "") -> str:
    return f"---\nname: {name}\ndescription: d\nrole: r\n{extra}---\n{body}\n"


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.count("\n") == 0, err
    return err


@pytest.mark.parametrize("body", list(TEMPLATE_ATTACKS.values()), ids=list(TEMPLATE_ATTACKS))
def test_a_hostile_card_body_is_refused_within_the_budget(body: str, tmp_path: Path) -> None:
    path = tmp_path / "attacker.md"
    path.write_text(card_text(body))
    with pytest.raises(CardError) as refused:
        system_prompt(load_card(path), "a question")
    message = str(refused.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert any(word in message for word in ("longer than", "memory", "too large", "characters"))


def test_the_host_stays_small_while_a_template_bombs(tmp_path: Path) -> None:
    """The render worker takes the hit: this process's peak memory barely moves."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    path = tmp_path / "attacker.md"
    path.write_text(card_text(TEMPLATE_ATTACKS["string doubling"]))
    with pytest.raises(CardError):
        system_prompt(load_card(path), "a question")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 50


def test_lint_reports_a_hanging_card_as_one_finding(tmp_path: Path, capsys) -> None:
    (tmp_path / "attacker.md").write_text(card_text(TEMPLATE_ATTACKS["nested loops"]))
    assert main(["personas", "lint", str(tmp_path), "--lexical"]) != 0
    out = capsys.readouterr().out
    assert "render-failed" in out and ("longer than" in out or "memory" in out)


def test_a_billion_laughs_card_is_refused_at_load(tmp_path: Path, capsys) -> None:
    levels = ['    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        levels.append(f"    {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    bomb = card_text("Hello.", extra="extensions:\n" + "\n".join(levels) + "\n")
    (tmp_path / "attacker.md").write_text(bomb)
    with pytest.raises(CardError, match="expands to more than"):
        load_card(tmp_path / "attacker.md")
    assert main(["personas", "lint", str(tmp_path), "--lexical"]) != 0
    assert "expands to more than" in capsys.readouterr().out


def test_an_oversized_card_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "attacker.md"
    with path.open("w") as handle:
        handle.write(card_text("x"))
        handle.write("padding " * 7_000_000)  # 56 MB
    with pytest.raises(CardError, match="larger than 1024 KB"):
        load_card(path)


def protocol_text(prompt: str, loop: bool = True) -> str:
    inner = (
        "  - kind: loop\n    id: rounds\n    rounds: 3\n    stages:\n"
        f"      - kind: response\n        id: debate\n        sees: [debate]\n"
        f'        prompt: "{prompt}"\n'
    )
    return (
        "name: attack\ndescription: d\nstages:\n"
        "  - kind: statement\n    id: opening\n    prompt: Answer {{ question }}.\n"
        + inner
        + "  - kind: synthesis\n    id: verdict\n    sees: [opening, debate]\n    prompt: Decide.\n"
    )


def test_validate_refuses_a_prompt_that_fails_only_in_round_two(tmp_path: Path, capsys) -> None:
    path = tmp_path / "attack.yaml"
    path.write_text(protocol_text("Round {{ 1 // (round - 2) }}."))
    assert main(["protocols", "validate", str(path)]) == 2
    err = one_line(capsys)
    assert "round 2" in err and "division" in err and "attack.yaml:" in err


def test_validate_refuses_a_prompt_that_would_hang(tmp_path: Path, capsys) -> None:
    path = tmp_path / "attack.yaml"
    path.write_text(protocol_text(TEMPLATE_ATTACKS["nested loops"].replace('"', "'")))
    assert main(["protocols", "validate", str(path)]) == 2
    err = one_line(capsys)
    assert "longer than" in err or "memory" in err


def test_convene_refuses_a_late_failing_prompt_before_any_call(tmp_path: Path) -> None:
    path = tmp_path / "attack.yaml"
    path.write_text(protocol_text("Round {{ 1 // (round - 2) }}."))
    model = FunctionModel(well_formed_reply)
    with pytest.raises(ProtocolError, match="round 2"):
        Council(PANEL, protocol=str(path), model=model, runs_dir=tmp_path).convene("Q?")
    assert model.requests == []


def many_stages(count: int) -> str:
    stages = "".join(
        f"  - kind: statement\n    id: s{i}\n    prompt: Say {i}.\n" for i in range(count)
    )
    sees = ", ".join(f"s{i}" for i in range(count))
    return (
        f"name: wide\ndescription: d\nstages:\n{stages}"
        f"  - kind: synthesis\n    id: verdict\n    sees: [{sees}]\n    prompt: Decide.\n"
    )


def test_a_tiny_budget_fires_no_request_however_wide_the_protocol(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text(many_stages(1000))
    model = FunctionModel(well_formed_reply)
    result = Council(
        PANEL, protocol=str(path), model=model, runs_dir=tmp_path, budget=Budget(max_tokens=1)
    ).convene("Q?")
    assert result.status == "stopped" and model.requests == []


def test_calls_in_flight_are_capped(tmp_path: Path) -> None:
    import asyncio

    from council.records import CallSettings

    in_flight, most = 0, 0

    async def slow(request: ModelRequest) -> str:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return well_formed_reply(request)

    path = tmp_path / "wide.yaml"
    path.write_text(many_stages(40))
    calls = CallSettings(max_in_flight=16, max_in_flight_per_provider=6)
    result = Council(
        PANEL, protocol=str(path), model=FunctionModel(slow), runs_dir=None, calls=calls
    ).convene("Q?")
    assert result.status == "completed" and len(result.turns) == 121
    assert most == 6  # the provider's share of the run's slots, fully used


def scan(folder: Path, *texts: str) -> str:
    """Everything a run left behind, as text: what was printed and every file in the folder."""
    found = "".join(texts)
    for path in folder.rglob("*"):
        if path.is_file():
            found += path.read_bytes().decode("utf-8", "replace")
    return found


def test_a_key_a_provider_echoes_back_reaches_no_artifact(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    key = "sk-planted-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", key)

    def echo_key(body: dict) -> str:  # type: ignore[type-arg]
        return f"Here is what I was given: {key}. And again: Bearer {key}"

    with FakeProvider(echo_key) as provider:
        argv = [
            "convene",
            "Q?",
            "--personas",
            ",".join(PANEL),
            "--protocol",
            "quick",
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={provider.api_base}",
            "--out",
            str(tmp_path),
            "--json",
            "--quiet",
            "--attempts",
            "1",
        ]
        assert main(argv) == 0
        out = capsys.readouterr()
    assert main(["runs", "show", "latest", "--out", str(tmp_path), "--json"]) == 0
    shown = capsys.readouterr().out
    assert json.loads(shown)["turns"][0]["content"].startswith("Here is what I was given")
    assert key not in scan(tmp_path, out.out, out.err, shown)
    assert "[redacted]" in shown


def test_credentials_in_an_endpoint_url_reach_no_artifact(tmp_path: Path, capsys) -> None:
    """A URL's credentials are sent as the key (Authorization: Bearer), never stored."""
    secret = "urlsecret-9876543210"
    with FakeProvider("Fine.", api_key=secret) as provider:
        url = provider.api_base.replace("http://", f"http://user:{secret}@")
        argv = [
            "convene",
            "Q?",
            "--personas",
            ",".join(PANEL),
            "--protocol",
            "quick",
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={url}",
            "--out",
            str(tmp_path),
            "--json",
            "--quiet",
            "--attempts",
            "1",
        ]
        provider.fail_next(500, 500, 500)  # every opening fails: a run left to resume
        assert main(argv) != 0
        out = capsys.readouterr()
        assert main(["runs", "show", "latest", "--out", str(tmp_path), "--json"]) == 0
        shown = capsys.readouterr().out
        assert secret not in scan(tmp_path, out.out, out.err, shown)
        assert json.loads(shown)["config"]["spec"]["endpoints"]["openai/fake"].startswith(
            "http://[redacted]@"
        )
        # Resume cannot use what was never stored: it asks, in one line, and takes it again.
        assert main(["resume", "latest", "--out", str(tmp_path), "--quiet"]) == 2
        assert "had credentials, which are never stored" in one_line(capsys)
        again = [
            "resume",
            "latest",
            "--out",
            str(tmp_path),
            "--quiet",
            "--endpoint",
            f"openai/fake={url}",
        ]
        assert main(again) == 0
        assert provider.outcome_log.count("ok") == 4  # three openings and the verdict
        sent = {h.get("Authorization") or h.get("authorization") for h in provider.headers}
        assert sent == {f"Bearer {secret}"}  # the URL's password, as the key; not in the URL
    assert secret not in scan(tmp_path)


# -- small things a user hits ------------------------------------------------------------------


def test_import_never_writes_through_a_dangling_symlink(tmp_path: Path, capsys) -> None:
    source = tmp_path / "in" / "bard.md"
    source.parent.mkdir()
    source.write_text("---\nname: bard\ndescription: A poet.\n---\nYou are a poet.\n")
    target = tmp_path / "out"
    target.mkdir()
    outside = tmp_path / "outside.md"
    (target / "bard.md").symlink_to(outside)  # dangling
    assert main(["personas", "import", str(source), "--to", str(target)]) != 0
    assert "symbolic link" in one_line(capsys)
    assert not outside.exists()


def test_a_json_card_with_a_huge_number_is_skipped_not_fatal(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "huge.json").write_text('{"name": "x", "age": ' + "9" * 5000 + "}")
    (folder / "bard.md").write_text("---\nname: bard\ndescription: A poet.\n---\nYou are a poet.\n")
    code = main(
        ["personas", "import", str(folder), "--to", str(tmp_path / "out"), "--skip-invalid"]
    )
    assert code == 0 and (tmp_path / "out" / "bard.md").is_file()
    assert "huge.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [
        ["--timeout", "nan"], ["--attempts", "0"], ["--max-tokens", "-5"],
        ["--budget-tokens", "0"], ["--budget-seconds", "inf"], ["--temperature", "-1"],
        ["--personas", ",,,"], ["--endpoint", "openai/x=not-a-url"],
    ],
)  # fmt: skip
def test_nonsense_numbers_and_urls_are_one_line_usage_errors(extra, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert exit_code(["convene", "Q?", "--out", str(tmp_path), *extra]) == 2
    assert one_line(capsys).startswith("council: error:")


def exit_code(argv: list[str]) -> int:
    """``main``'s status, whether it returns one or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exited:
        return int(exited.code or 0)


def test_out_naming_a_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    assert exit_code(["convene", "Q?", "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in one_line(capsys)


def test_a_question_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "council",
            "convene",
            b"caf\xe9?",
            "--out",
            str(tmp_path),
            "--dry-route",
        ],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert done.returncode == 2
    err = done.stderr.decode().strip()
    assert err == "council: error: the question is not valid UTF-8 text"
    assert json.dumps(err)  # one clean line


def test_a_thousand_refusals_are_reported_in_one_short_line(tmp_path: Path) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text(many_stages(200))
    result = Council(
        PANEL,
        protocol=str(path),
        model=FunctionModel(well_formed_reply),
        runs_dir=None,
        budget=Budget(max_tokens=1),
    ).convene("Q?")
    assert result.error is not None and len(result.error) < 300
    assert result.error.endswith("(and 199 more like it)")
