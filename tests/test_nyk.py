"""nyk's Council of High Intelligence, as its users have it: 18 subagent cards in a folder
written here in nyk's format (every field nyk uses, some with no use in council), imported,
linted, rendered and seated; Markdown persona write-ups; seat-slot files with keyed endpoints;
panels chosen by name, by the question, and duos; the project file's precedence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council.cli.main import main
from council.personas.card import load_card
from council.personas.prompt import system_prompt
from council.testing import FakeProvider

NYK = Path(__file__).parent / "fixtures" / "nyk" / "agents"
POOL = "openai/gpt-4o-mini,anthropic/claude-3-5-haiku-20241022,gemini/gemini-2.0-flash"


def test_all_eighteen_import_lint_clean_and_render(imported: Path, capsys) -> None:
    cards = sorted(imported.glob("*.md"))
    assert len(cards) == 18
    assert main(["personas", "lint", str(imported), "--lexical"]) == 0
    assert "18 cards, 0 errors" in capsys.readouterr().err
    ada = load_card(imported / "council-ada.md")
    fields = ada.fields
    assert fields.polarity_pairs == ["council-machiavelli", "council-karpathy", "council-rams"]
    assert fields.reasoning_method == "formal abstraction" and fields.tier == "high"
    assert fields.domain == "Formal systems & abstraction" and fields.polarity == "Formal purity"
    assert "architecture" in fields.triads and "execution-lean" in fields.profiles
    assert not fields.description.startswith("Council member")
    assert fields.blind_spots and fields.framework and fields.asks
    assert fields.extensions["claude_code"]["tools"] == ["Read", "Grep", "Glob", "WebSearch"]
    for path in cards:
        prompt = system_prompt(load_card(path), "Should we rewrite the billing system?")
        assert "Your reasoning method:" in prompt and "{member name}" in prompt


def test_pairs_never_bind_to_shipped_namesakes(tmp_path: Path, capsys) -> None:
    one = tmp_path / "in"
    one.mkdir()
    (one / "council-meadows.md").write_text((NYK / "council-meadows.md").read_text())
    assert main(["personas", "import", str(one), "--to", str(tmp_path / "out")]) == 0
    assert "set aside under extensions.unresolved_pairs" in capsys.readouterr().out
    card = load_card(tmp_path / "out" / "council-meadows.md")
    assert card.fields.polarity_pairs == []  # torvalds is not here: no shipped card stands in
    assert card.fields.extensions["unresolved_pairs"] == ["torvalds"]


def seat_map(argv: list[str], capsys) -> list[dict]:  # type: ignore[type-arg, no-untyped-def]
    assert main(["convene", "Q?", "--dry-route", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_panel_architecture_seats_nyks_triad(imported: Path, capsys) -> None:
    rows = seat_map(["--panel", "architecture", "--models", POOL], capsys)
    panel = [r["seat"] for r in rows if r["role"] == "panel"]
    assert sorted(panel) == ["council-ada", "council-aristotle", "council-feynman"]
    families = {r["seat"]: r["family"] for r in rows}
    assert sorted(families[s] for s in panel) == ["anthropic", "google", "openai"]  # spread
    # A fourth family in the pool leaves the chair one the panel is not on: fresh eyes.
    rows = seat_map(
        ["--panel", "architecture", "--models", POOL + ",mistral/mistral-small"], capsys
    )
    families = {r["seat"]: r["family"] for r in rows}
    assert families["chair"] == "mistral"


FAMILIES = [*POOL.split(","), "mistral/mistral-small"]


@pytest.mark.parametrize(("families", "spread"), [(2, [9, 9]), (3, [6, 6, 6]), (4, [5, 5, 4, 4])])
def test_eighteen_members_spread_evenly_and_split_every_pair(
    imported: Path, capsys, families: int, spread: list[int]
) -> None:
    """nyk's hard spread: 18 seats on N families is floor or ceil of 18/N on each, and every
    polarity pair still sits on two families."""
    rows = seat_map(["--panel", "classic", "--models", ",".join(FAMILIES[:families])], capsys)
    family = {r["seat"]: r["family"] for r in rows if r["role"] == "panel"}
    assert len(family) == 18
    for path in imported.glob("*.md"):
        card = load_card(path)
        for other in card.fields.polarity_pairs:
            assert family[card.name] != family[other], (card.name, other)
    counts = sorted((list(family.values()).count(f) for f in set(family.values())), reverse=True)
    assert counts == spread


def test_panel_auto_says_what_it_chose_and_why(capsys) -> None:
    assert (
        main(
            [
                "convene",
                "Who should manage the shared fishing grounds of the bay?",
                "--panel",
                "auto",
                "--dry-route",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "panel 'commons'" in err and "embedding cosine" in err


def test_duo_seats_the_pair_whose_keywords_match(imported: Path, capsys) -> None:
    argv = [
        "convene",
        "Do we release now, or wait for better timing?",
        "--protocol",
        "duo",
        "--dry-route",
        "--json",
    ]
    assert main(argv) == 0
    out = capsys.readouterr()
    panel = [r["seat"] for r in json.loads(out.out) if r["role"] == "panel"]
    assert sorted(panel) == ["council-musashi", "council-torvalds"]
    assert "duo council-torvalds vs council-musashi" in out.err


def test_a_seat_slot_file_reaches_a_keyed_endpoint(
    imported: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    key = "sk-slot-0123456789"
    monkeypatch.setenv("SLOT_KEY", key)
    with FakeProvider("Fine.", api_key=key) as keyed, FakeProvider("Open.") as keyless:
        slots = tmp_path / "slots.yaml"
        slots.write_text(
            "profile: exploration-orthogonal\nstrategy: {provider_spread_first: true}\nseats:\n"
            f"  aristotle: {{provider: meta_model_api, model: muse, base_url: '{keyed.api_base}',"
            " api_key_env: SLOT_KEY, reasoning_mode: formal}\n"
            f"  ada: {{provider: local, model: open, base_url: '{keyless.api_base}'}}\n"
            f"  feynman: {{provider: local, model: open, base_url: '{keyless.api_base}'}}\n"
            f"chairman: {{provider: local, model: open, base_url: '{keyless.api_base}'}}\n"
        )
        argv = [
            "convene",
            "Q?",
            "--panel",
            "architecture",
            "--protocol",
            "quick",
            "--models",
            str(slots),
            "--out",
            str(tmp_path / "runs"),
            "--json",
            "--quiet",
        ]
        assert main(argv) == 0, capsys.readouterr().err
        run = json.loads(capsys.readouterr().out)
        assert keyed.request_count == 1 and keyed.outcome_log == ["ok"]  # the bearer matched
        assert {t["seat"]: t["model"] for t in run["turns"]}["council-aristotle"] == "openai/muse"
    ledger = (tmp_path / "runs" / "ledger.sqlite").read_bytes()
    assert key.encode() not in ledger and b"SLOT_KEY" in ledger  # the name, never the value


def test_a_slot_key_that_is_not_set_fails_that_seat_in_one_line(
    imported: Path, tmp_path: Path, capsys
) -> None:
    with FakeProvider("Fine.", api_key="k") as keyed:
        slots = tmp_path / "slots.yaml"
        slots.write_text(
            "seats:\n  aristotle: {provider: x, model: m, base_url: "
            f"'{keyed.api_base}', api_key_env: NOT_SET_ANYWHERE}}\n"
        )
        argv = [
            "convene",
            "Q?",
            "--panel",
            "architecture",
            "--protocol",
            "quick",
            "--models",
            str(slots),
            "--out",
            str(tmp_path / "runs"),
            "--json",
            "--quiet",
        ]
        # The pre-flight finds it before any call: the run stops, one line for the seat.
        assert main(argv) == 78
        err = capsys.readouterr().err
        assert "seat council-aristotle" in err and "NOT_SET_ANYWHERE" in err
        assert keyed.request_count == 0
        # Allowed to, the council convenes without it: recorded absent, never called.
        main([*argv, "--allow-absent"])
        run = json.loads(capsys.readouterr().out)
        assert keyed.request_count == 0
    assert "council-aristotle" not in {t["seat"] for t in run["turns"]}
    assert any("council-aristotle" in line and "NOT_SET_ANYWHERE" in line for line in run["absent"])


def test_markdown_persona_write_ups_import(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "writeups"
    folder.mkdir()
    (folder / "anthropologist.md").write_text(
        "# Maya, the Anthropologist\n\n"
        "An ethnographer of workplaces who watches what people do, not what they say.\n\n"
        "**Core orientation:** Bourdieu's forms of capital; Lave & Wenger's communities of "
        "practice\n"
        "**Asks:** Who holds which capital here? Who is on the periphery, and how do they "
        "move in?\n"
        "**Blind spots:** Quantitative effect sizes; individual psychology\n"
        "**Traits:** patient; observant; sceptical of self-report\n"
    )
    (folder / "learning.md").write_text(
        "# Learning Scientist\n\n## Frameworks\n- Knowles' andragogy\n- Mezirow's "
        "transformative learning\n- Schön's reflective practice\n\n## Questions\n"
        "- What does the learner already bring?\n- Where is the reflection happening?\n"
    )
    out = tmp_path / "cards"
    assert main(["personas", "import", str(folder), "--to", str(out)]) == 0
    maya = load_card(out / "maya-the-anthropologist.md").fields
    assert maya.figure == "Maya" and maya.role == "The Anthropologist"
    assert maya.framework == [
        "Bourdieu's forms of capital",
        "Lave & Wenger's communities of practice",
    ]
    assert maya.asks == [
        "Who holds which capital here?",
        "Who is on the periphery, and how do they move in?",
    ]
    assert maya.blind_spots == ["Quantitative effect sizes", "individual psychology"]
    assert maya.description.startswith("An ethnographer of workplaces")
    learner = load_card(out / "learning-scientist.md").fields
    assert learner.framework[0] == "Knowles' andragogy" and len(learner.asks) == 2
    assert main(["personas", "lint", str(out), "--lexical"]) == 0


def test_project_file_defaults_and_flags_win(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "council.toml").write_text(
        'protocol = "quick"\ntemperature = 0.3\npersonas = ["popper", "kuhn"]\n'
        'out = "my-runs"\n[endpoints]\n"openai/mine" = "http://127.0.0.1:9/v1"\n'
    )
    assert main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["protocol"] == {"value": "quick", "from": "council.toml"}
    assert shown["timeout"] == {"value": 120.0, "from": "default"}
    assert shown["endpoints"]["value"] == {"openai/mine": "http://127.0.0.1:9/v1"}
    with FakeProvider("Fine.") as fake:
        argv = [
            "convene",
            "Q?",
            "--temperature",
            "0.9",
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={fake.api_base}",
            "--json",
            "--quiet",
        ]
        assert main(argv) == 0
        run = json.loads(capsys.readouterr().out)
        assert {body["temperature"] for body in fake.requests} == {0.9}  # the flag won
    assert run["protocol"] == "quick" and [s["seat"] for s in run["seats"]][:2] == [
        "popper",
        "kuhn",
    ]
    assert Path(run["run_dir"]).parent.name == "my-runs"
    (tmp_path / "council.toml").write_text("temprature = 0.3\n")
    assert main(["config", "show"]) == 2
    assert "council.toml: key 'temprature': unknown key" in capsys.readouterr().err


def test_detection_finds_keys_and_a_loopback_server_and_tiers_pick_models() -> None:
    from urllib.parse import urlsplit

    from council import Council
    from council.seats.detect import detect, tier_models

    with FakeProvider("Fine.") as server:
        port = urlsplit(server.api_base).port
        assert port is not None
        found = detect(
            {"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "y"},
            servers=(("llama.cpp", port, "/v1/models"),),
        )
    assert found.models == ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "openai/fake"]
    assert found.endpoints == {"openai/fake": f"http://127.0.0.1:{port}/v1"}
    assert detect({}, servers=()).models == []  # nothing: the caller seats the bundled model
    council = Council(
        ["popper", "kuhn"],
        protocol="quick",
        runs_dir=None,
        tiers=tier_models(),
        models=["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"],
    )
    assert {row.seat: row.model for row in council.seat_map()}["popper"] in {
        "openai/gpt-4o-mini",
        "anthropic/claude-sonnet-4-5",
    }  # popper's card sets no tier


def test_a_tier_hint_takes_the_providers_model_of_that_strength(imported: Path) -> None:
    from council import Council
    from council.seats.detect import tier_models

    council = Council(
        ["council-ada", "council-machiavelli"],
        protocol="duo",
        runs_dir=None,
        tiers=tier_models(),
        models=["openai/gpt-4o-mini", "gemini/gemini-2.5-flash"],
    )
    rows = {row.seat: row for row in council.seat_map()}
    assert {rows["council-ada"].model, rows["council-machiavelli"].model} == {
        "openai/gpt-4o",
        "gemini/gemini-2.5-pro",
    }  # both cards are opus: each provider's high
    assert "high tier model" in rows["council-ada"].reason


def test_model_auto_with_nothing_found_is_the_bundled_model(monkeypatch, capsys) -> None:
    for variable in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "MISTRAL_API_KEY",
        "XAI_API_KEY",
        "DEEPSEEK_API_KEY",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr("council.seats.detect.LOOPBACK_SERVERS", ())
    assert main(["convene", "Q?", "--model", "auto", "--dry-route", "--json"]) == 0
    out = capsys.readouterr()
    assert "no provider key or local server found" in out.err
    assert {row["model"] for row in json.loads(out.out)} == {"local/smollm2-135m-instruct"}


def test_the_routing_table_shows_member_provider_model_and_method(imported: Path, capsys) -> None:
    rows = seat_map(["--panel", "architecture", "--models", POOL], capsys)
    methods = {r["seat"]: r["method"] for r in rows if r["role"] == "panel"}
    for seat, method in methods.items():
        assert method == load_card(imported / f"{seat}.md").fields.reasoning_method, seat
    assert len(set(methods.values())) == 3  # one method per seat
    argv = ["convene", "Q?", "--dry-route", "--panel", "architecture", "--models", POOL]
    assert main(argv) == 0
    table = capsys.readouterr().out
    aristotle = next(line for line in table.splitlines() if line.startswith("council-aristotle"))
    assert methods["council-aristotle"] in aristotle  # the printed row carries it too
