"""Every shipped protocol runs end to end on the test seats; loops, guards, votes, rankings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from council import Council
from council.base.errors import ConfigError, ProtocolError
from council.cli.main import main
from council.protocols import available_protocols, find_protocol, load_protocol_file
from council.seats import ModelRequest
from council.testing import FunctionModel, well_formed_reply

QUESTION = "How many parking spaces should the city centre keep?"
PAIR = ["popper", "kuhn"]
PANEL = ["popper", "kuhn", "meadows", "taleb"]


def panel_for(name: str) -> list[str]:
    protocol = find_protocol(name)
    return PAIR if protocol.spec.panel.max == 2 else PANEL


@pytest.mark.parametrize("name", sorted(available_protocols()))
def test_every_shipped_protocol_runs_end_to_end(name: str, tmp_path: Path) -> None:
    protocol = find_protocol(name)
    assert protocol.spec.origin, "every shipped protocol cites its origin"
    assert "Origin: " in protocol.path.read_text(), "and says so in a comment"
    council = Council(
        panel_for(name), protocol=name, model=FunctionModel(well_formed_reply), runs_dir=tmp_path
    )
    result = council.convene(QUESTION)
    assert result.status == "completed", result.error
    assert result.synthesis and all(turn.ok for turn in result.turns)
    spoken = {turn.stage for turn in result.turns}
    skipped = {reason.split(":")[0] for reason in result.skipped}
    assert spoken | skipped == {s.id for s in protocol.speaking_stages()}
    events = (Path(result.run_dir or "") / "events.jsonl").read_text()
    assert protocol.content_hash in events


def test_at_least_eight_protocols_ship() -> None:
    expected = {
        "quick",
        "council",
        "full-council",
        "peer-review",
        "duo",
        "debate",
        "mad",
        "mixture-of-agents",
        "delphi",
        "red-team",
    }
    assert expected <= set(available_protocols())


def run(name: str, fn, panel=None):  # type: ignore[no-untyped-def]
    return Council(
        panel or panel_for(name), protocol=name, model=FunctionModel(fn), runs_dir=None
    ).convene(QUESTION)


def test_peer_review_rankings_exclude_self_and_aggregate() -> None:
    answers = {"popper": "Falsify first.", "kuhn": "Paradigms shift.", "meadows": "Find leverage."}
    seen: dict[str, ModelRequest] = {}

    def reply(request: ModelRequest) -> str:
        if request.stage != "review":
            return answers.get(request.seat, "final answer")
        seen[request.seat] = request
        text = request.messages[-1]["content"]
        # Every reviewer puts the "Falsify first." answer first, whatever its label.
        labels = sorted(request.choices, key=lambda label: "Falsify" not in _answer(text, label))
        return "Thoughts.\nFINAL RANKING:\n" + "\n".join(
            f"{i}. {label}" for i, label in enumerate(labels, 1)
        )

    result = run("peer-review", reply, ["popper", "kuhn", "meadows"])
    tally = result.tallies[0]
    assert tally.kind == "ranking" and tally.winner == "popper" and tally.scores["popper"] == 1.0
    assert len(seen["kuhn"].choices) == 2  # kuhn's own answer is not on its ballot
    assert "Paradigms shift." not in seen["kuhn"].messages[-1]["content"]
    assert all(not r.problems for r in tally.rankings)


def _answer(text: str, label: str) -> str:
    return text.split(f"### {label}\n", 1)[1].split("\n", 1)[0]


def test_full_council_guard_fires_on_easy_agreement_and_not_on_real_dissent() -> None:
    agreeing = run("full-council", well_formed_reply)
    assert "dissent_check" in {t.stage for t in agreeing.turns} and agreeing.skipped == []
    vote = agreeing.tallies[0]
    assert (vote.rule, vote.winner, vote.consensus) == ("confidence_weighted", "yes", True)

    def voting(stances: dict[str, str]):  # type: ignore[no-untyped-def]
        def reply(request: ModelRequest) -> str:
            return (
                f"{stances[request.seat]} | 0.8 | none"
                if request.expects == "vote"
                else "an argument"
            )

        return reply

    five = [*PANEL, "hayek"]
    split = {"popper": "yes", "kuhn": "no", "meadows": "no", "taleb": "yes", "hayek": "yes"}
    divided = run("full-council", voting(split), five)
    assert "dissent_check" not in {t.stage for t in divided.turns}
    assert divided.skipped == ["dissent_check: agreement 48% and 2 dissenters: guard not needed"]
    tie = run("full-council", voting({**split, "hayek": "depends"}), five)
    assert tie.tallies[0].winner is None
    assert tie.skipped == ["dissent_check: 'vote' has no leading stance: the council is split"]
    lopsided = run("full-council", voting({**split, "kuhn": "yes"}), five)
    assert "dissent_check" in {t.stage for t in lopsided.turns}  # 80% agreement is too easy


def test_debate_stops_once_answers_are_stable() -> None:
    result = run(
        "debate", lambda r: "yes | 1 | none" if r.expects == "vote" else "The answer is 42."
    )
    assert [(loop.loop, loop.rounds) for loop in result.loops] == [("debate", 2)]
    assert "answers stable" in (result.loops[0].stopped_early or "")
    assert {t.round for t in result.turns if t.stage == "revise"} == {1, 2}


def test_mad_moderator_can_stop_early() -> None:
    def reply(request: ModelRequest) -> str:
        if request.expects == "decision":
            return "The negative side has it.\nDECISION: " + (
                "STOP" if request.round == 2 else "CONTINUE"
            )
        return f"{request.seat} argues in round {request.round}"

    result = run("mad", reply, PAIR)
    assert result.loops[0].rounds == 2 and "DECISION: STOP" in (result.loops[0].stopped_early or "")
    rebuttals = [t for t in result.turns if t.stage == "rebuttal"]
    assert [(t.round, t.seat) for t in rebuttals] == [
        (1, "popper"),
        (1, "kuhn"),
        (2, "popper"),
        (2, "kuhn"),
    ]


def test_a_loop_stage_sees_its_own_previous_round() -> None:
    seen: dict[tuple[str, int], str] = {}

    def reply(request: ModelRequest) -> str:
        seen[(request.seat, request.round)] = request.messages[-1]["content"]
        return f"{request.seat} said this in round {request.round}"

    run("duo", reply, PAIR)
    assert "in round 1" not in seen[("popper", 1)]
    assert "kuhn said this in round 1" in seen[("popper", 2)]


def test_delphi_feeds_back_statistics_and_converges() -> None:
    estimates = {
        "popper": [100, 120],
        "kuhn": [200, 125],
        "meadows": [150, 118],
        "taleb": [90, 122],
    }
    seen: dict[tuple[str, int], str] = {}

    def reply(request: ModelRequest) -> str:
        if request.stage == "estimate":
            seen[(request.seat, request.round)] = request.messages[-1]["content"]
            return f"My estimate.\n{estimates[request.seat][request.round - 1]} | 0.6 | none"
        return "report"

    result = run("delphi", reply)
    assert [t.round for t in result.tallies] == [1, 2]
    assert result.tallies[0].consensus is False and result.tallies[1].consensus is True
    assert "agreement 100%" in (result.loops[0].stopped_early or "")
    assert "Group estimate: median 125" in seen[("popper", 2)]
    assert "popper" not in seen[("kuhn", 2)].lower()  # anonymous rounds


def test_red_team_splits_the_panel_in_halves() -> None:
    result = run("red-team", well_formed_reply)
    by_stage = {}
    for turn in result.turns:
        by_stage.setdefault(turn.stage, []).append(turn.seat)
    assert by_stage["proposal"] == ["popper", "kuhn"] and by_stage["attack"] == ["meadows", "taleb"]


def test_panel_size_is_checked_before_anything_runs() -> None:
    with pytest.raises(
        ConfigError, match="protocol 'mad' seats exactly 2|seats 2 personas; 3 given"
    ):
        Council(["popper", "kuhn", "meadows"], protocol="mad", runs_dir=None)
    with pytest.raises(ConfigError, match="seats 3 to any personas; 2 given|3"):
        Council(["popper", "kuhn"], protocol="delphi", runs_dir=None)


BASE = """\
name: t
description: test
stages:
  - id: opening
    kind: statement
    prompt: Open.
  - id: ballot
    kind: vote
    sees: [opening]
    options: ["yes", "no"]
    prompt: Vote.
"""
END = """\
  - id: verdict
    kind: synthesis
    sees: [{sees}]
    prompt: Close.
"""


@pytest.mark.parametrize(
    ("middle", "sees", "message", "line"),
    [
        ("  - {id: check, kind: guard, checks: opening, agreement_above: 0.7, prompt: x, sees: [opening]}\n",
         "check", "'stage 'check'.checks': 'opening' collects no votes", 12),
        ("  - {id: loop1, kind: loop, rounds: 2, until: {vote: again, agreement: 0.8}, stages: [{id: again, kind: response, sees: [again], prompt: x}]}\n",
         "again", "'stage 'loop1'.until': 'again' collects no votes", 12),
        ("", "ballot", None, None),
    ],
)  # fmt: skip
def test_vote_rules_need_votes(write, middle, sees, message, line) -> None:
    path = write("t.yaml", BASE + middle + END.format(sees=sees))
    if message is None:
        assert load_protocol_file(path).name == "t"
        return
    with pytest.raises(ProtocolError) as err:
        load_protocol_file(path)
    assert message in str(err.value) and err.value.line == line


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    options: [\"yes\", \"no\"]", "    options: [\"yes\", \"no\"]\n    threshold: 1.5"), "'stage 'ballot'.threshold': Input should be less than or equal to 1"),
        (("    options: [\"yes\", \"no\"]", "    options: [yes, no]"), "quote them"),
        (("    options: [\"yes\", \"no\"]", "    options: [\"yes\"]"), "at least two distinct options"),
        (("    options: [\"yes\", \"no\"]", "    rule: borda"), "a borda vote needs 'options'"),
        (("    options: [\"yes\", \"no\"]", "    options: [\"yes\", \"no\"]\n    rule: unanimous"), "rule"),
    ],
)  # fmt: skip
def test_vote_settings_out_of_range(write, change, message) -> None:
    with pytest.raises(ProtocolError, match=message):
        load_protocol_file(write("t.yaml", (BASE + END.format(sees="ballot")).replace(*change)))


def test_loop_rules(write) -> None:
    loop = "  - {id: l, kind: loop, rounds: 2, stages: [{id: r, kind: response, sees: [l], prompt: x}]}\n"
    with pytest.raises(ProtocolError, match="cannot depend on its own loop 'l'"):
        load_protocol_file(write("a.yaml", BASE + loop + END.format(sees="r")))
    loop = "  - {id: l, kind: loop, rounds: 0, stages: [{id: r, kind: response, sees: [r], prompt: x}]}\n"
    with pytest.raises(
        ProtocolError, match="'stage 'l'.rounds': Input should be greater than or equal to 1"
    ):
        load_protocol_file(write("b.yaml", BASE + loop + END.format(sees="r")))
    loop = "  - {id: l, kind: loop, rounds: 2, stages: [{id: r, kind: synthesis, sees: [opening], prompt: x}]}\n"
    with pytest.raises(ProtocolError, match="stage 'r'.kind"):
        load_protocol_file(write("c.yaml", BASE + loop + END.format(sees="r")))
    ping_pong = (
        "  - {id: l, kind: loop, rounds: 2, stages: [{id: a, kind: response, sees: [b], prompt: x},"
        " {id: b, kind: response, sees: [a], prompt: x}]}\n"
    )
    with pytest.raises(ProtocolError, match="cycle"):
        load_protocol_file(write("d.yaml", BASE + ping_pong + END.format(sees="b")))


def test_protocols_show_and_validate(capsys, write) -> None:
    assert main(["protocols", "show", "mad"]) == 0
    out = capsys.readouterr().out
    assert (
        "flowchart TD" in out
        and "subgraph exchange" in out
        and "rebuttal -.->|next round| rebuttal" in out
    )
    assert "panel: exactly 2 personas" in out
    good = str(write("good.yaml", BASE + END.format(sees="ballot")))
    bad = str(write("bad.yaml", BASE + END.format(sees="nowhere")))
    assert main(["protocols", "validate", good, bad, "--json"]) == 2
    results = json.loads(capsys.readouterr().out)
    assert [r["valid"] for r in results] == [True, False]
    assert "undefined stage 'nowhere'" in results[1]["error"]
