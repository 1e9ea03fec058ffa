"""The verdict audit (issue 31): ``council audit RUN`` and the ``auditor`` stage. council's own
checks catch a misstated tally and a dropped dealbreaker with no model; an auditor of another
model family adds typed findings, read from JSON even when prose wraps it; the audit is an
event of the run, shown beside the verdict (transcript, ``runs show``, the web page, MCP,
``council.measure``). Runs go through ``FakeProvider`` (real litellm calls)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import council
from council import Council
from council.base.errors import ConfigError
from council.cli.audit_cmd import EXIT_AUDIT_ERRORS
from council.cli.main import main
from council.engine.audit import (
    FINDINGS_SCHEMA,
    AuditCase,
    choose_auditor,
    mechanical_findings,
    read_findings,
)
from council.mcp_server.convening import run_summary
from council.protocols import compile_protocol
from council.records.run import Ballot, RunResult, Tally
from council.store.ledger import Ledger
from council.store.loader import load_run
from council.testing import FakeProvider
from council.web.app import create_app
from council.web.settings import ServerSettings

PANEL = ["popper", "kuhn"]
PANEL_MODEL = "openai/gpt-4o-mini"  # the auditor: litellm holds it to a JSON schema
CHAIR_MODEL = "anthropic/claude-3-5-haiku-20241022"  # another family
QUESTION = "Monorepo or polyrepo?"

# The tally splits 1.0 to 1.0 (popper: monorepo; kuhn: polyrepo, with a dealbreaker).
PLANTED = (
    "### Consensus\nConsensus reached: monorepo carries, the council agreed.\n\n"
    "### Recommended Action\nAdopt the monorepo by June."
)
CLEAN = (
    "### Consensus\nSplit: no consensus reached; the vote split between monorepo (popper) "
    "and polyrepo (kuhn).\n\n### Minority Report\nkuhn holds a dealbreaker: polyrepo."
)
AUDITOR_PROSE = (
    "Here is my audit of the verdict.\n```json\n"
    + json.dumps(
        {
            "findings": [
                {
                    "kind": "outcome",
                    "severity": "error",
                    "quote": "Consensus reached",
                    "explanation": "The tally was split 1.0 to 1.0.",
                },
                {
                    "kind": "dealbreaker",
                    "severity": "error",
                    "quote": "",
                    "explanation": "Kuhn's dealbreaker is missing.",
                },
                {
                    "kind": "unsupported_claim",
                    "severity": "warning",
                    "quote": "by June",
                    "explanation": "No member named a date.",
                },
            ]
        }
    )
    + "\n```\nThat is all."
)


def scripted(verdict: str, audit: str) -> Callable[[dict[str, Any]], str]:
    """Popper votes monorepo, kuhn polyrepo with a dealbreaker; the chair writes ``verdict``;
    the auditor answers ``audit``."""

    def reply(body: dict[str, Any]) -> str:
        said = json.dumps(body)
        if "auditing the chair's verdict" in said:
            return audit
        if "You are the Chairman" in said:
            return verdict
        if "STANCE" in said or "stance" in said:
            popper = "You are Karl Popper" in said
            stance = "monorepo" if popper else "polyrepo"
            deal = "no" if popper else "yes"
            if "response_format" in body:
                return json.dumps(
                    {
                        "reason": "Argued.",
                        "stance": stance,
                        "confidence": "high",
                        "dealbreaker": deal,
                    }
                )
            return f"Argued.\nSTANCE: {stance} | CONFIDENCE: high | DEALBREAKER: {deal}"
        return "An argument long enough to be read as an argument."

    return reply


def convene(
    fake: FakeProvider, runs: Path | None, protocol: Any = "high-council-quick"
) -> RunResult:
    chair = CHAIR_MODEL
    return Council(
        PANEL,
        protocol=protocol,
        model=PANEL_MODEL,
        seats={"chair": chair},
        endpoints={PANEL_MODEL: fake.api_base, chair: fake.anthropic_base},
        runs_dir=runs,
        similarity="words",
    ).convene(QUESTION)


@pytest.fixture
def planted(tmp_path: Path) -> Iterator[tuple[FakeProvider, RunResult]]:
    with FakeProvider(scripted(PLANTED, AUDITOR_PROSE)) as fake:
        yield fake, convene(fake, tmp_path)


def case(verdict: str) -> AuditCase:
    ballots = [
        Ballot(seat="popper", valid=True, stance="monorepo"),
        Ballot(seat="kuhn", valid=True, stance="polyrepo", dealbreaker="yes"),
    ]
    tally = Tally(
        stage="final",
        kind="vote",
        rule="confidence_weighted",
        ballots=ballots,
        outcome="split",
        split=True,
        scores={"monorepo": 1.0, "polyrepo": 1.0},
        dealbreaker="harmful",
    )
    return AuditCase(QUESTION, verdict, [tally], {"popper": ["popper"], "kuhn": ["kuhn"]}, "")


# -- the mechanical checks: no model --------------------------------------------------------


def test_the_mechanical_checks_catch_a_misstated_tally_and_a_dropped_dealbreaker() -> None:
    found = mechanical_findings(case(PLANTED))
    kinds = {(f.kind, f.severity, f.source) for f in found}
    assert ("outcome", "error", "mechanical") in kinds
    assert ("dealbreaker", "error", "mechanical") in kinds
    outcome = next(f for f in found if f.kind == "outcome")
    assert "Consensus reached" in outcome.quote and "split" in outcome.explanation
    assert "kuhn" in next(f for f in found if f.kind == "dealbreaker").explanation
    # polyrepo, kuhn's position, is nowhere in the verdict: a warning, not an error.
    assert any(f.kind == "minority" and f.severity == "warning" for f in found)


def test_a_clean_verdict_gets_no_mechanical_findings() -> None:
    assert mechanical_findings(case(CLEAN)) == []


# -- reading the auditor's reply ------------------------------------------------------------


def test_findings_are_read_from_json_wrapped_in_prose() -> None:
    found = read_findings(AUDITOR_PROSE)
    assert found is not None
    assert [(f.kind, f.severity) for f in found] == [
        ("outcome", "error"),
        ("dealbreaker", "error"),
        ("unsupported_claim", "warning"),
    ]
    assert found[0].quote == "Consensus reached" and found[0].source == "auditor"


def test_findings_read_leniently_and_none_when_there_is_no_json() -> None:
    bare = 'Findings: [{"kind": "made up", "severity": "grave", "explanation": "Odd."}]'
    found = read_findings(bare)
    assert found is not None and (found[0].kind, found[0].severity) == ("other", "warning")
    assert read_findings('{"findings": []}') == []
    assert read_findings("The verdict looks fine to me.") is None
    assert FINDINGS_SCHEMA["required"] == ["findings"]


# -- the auditor's family -------------------------------------------------------------------


def test_the_auditor_sits_on_a_family_other_than_the_chairs() -> None:
    assert choose_auditor(CHAIR_MODEL, [CHAIR_MODEL, PANEL_MODEL]) == PANEL_MODEL
    assert choose_auditor(CHAIR_MODEL, [CHAIR_MODEL], model=PANEL_MODEL) == PANEL_MODEL


def test_only_the_chairs_family_is_refused_unless_same_family() -> None:
    with pytest.raises(ConfigError, match=r"chair's family \(openai\).*--same-family"):
        choose_auditor("openai/gpt-4o", ["openai/gpt-4o-mini"])
    with pytest.raises(ConfigError, match="auditor model openai/gpt-4o-mini is of the chair's"):
        choose_auditor("openai/gpt-4o", [], model="openai/gpt-4o-mini")
    chosen = choose_auditor("openai/gpt-4o", ["openai/gpt-4o-mini"], same_family=True)
    assert chosen == "openai/gpt-4o-mini"


def test_council_audit_refuses_in_one_line_when_only_the_chairs_family_sits(
    tmp_path: Path, capsys
) -> None:
    with FakeProvider(scripted(CLEAN, '{"findings": []}')) as fake:
        Council(
            PANEL,
            protocol="high-council-quick",
            model=PANEL_MODEL,
            endpoints={PANEL_MODEL: fake.api_base},
            runs_dir=tmp_path,
            similarity="words",
        ).convene(QUESTION)
        capsys.readouterr()
        assert main(["audit", "latest", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "chair's family (openai)" in err
        before = fake.request_count
        assert main(["audit", "latest", "--out", str(tmp_path), "--same-family"]) == 0
        assert fake.request_count == before + 1


# -- council audit RUN ----------------------------------------------------------------------


def test_council_audit_catches_the_planted_errors_and_appends_the_audit(
    planted: tuple[FakeProvider, RunResult], tmp_path: Path, capsys
) -> None:
    fake, run = planted
    before = fake.request_count
    capsys.readouterr()
    code = main(["audit", run.run_id, "--out", str(tmp_path), "--json"])
    assert code == EXIT_AUDIT_ERRORS
    audit = json.loads(capsys.readouterr().out)
    assert audit["new"] and audit["auditor_model"] == PANEL_MODEL
    assert (audit["auditor_family"], audit["chair_family"]) == ("openai", "anthropic")
    by = {(f["source"], f["kind"]) for f in audit["findings"] if f["severity"] == "error"}
    assert {("mechanical", "outcome"), ("mechanical", "dealbreaker")} <= by
    assert {("auditor", "outcome"), ("auditor", "dealbreaker")} <= by
    # One call, held to the findings schema (litellm's response_format), after the record.
    assert fake.request_count == before + 1
    body = fake.requests[-1]
    assert body["response_format"]["json_schema"]["name"] == "verdict_audit"
    prompt = body["messages"][-1]["content"]
    assert "Argued." in prompt and PLANTED in prompt and "Council's own checks" in prompt
    # Asked again with the same auditor: the audit the run holds, and no call.
    assert main(["audit", run.run_id, "--out", str(tmp_path)]) == EXIT_AUDIT_ERRORS
    assert fake.request_count == before + 1
    assert "recorded earlier" in capsys.readouterr().out
    ledger = Ledger.existing(tmp_path)
    try:
        kinds = [e.type for e in ledger.events(run.run_id)]
    finally:
        ledger.close()
    assert kinds.count("verdict_audited") == 1 and kinds[-1] == "verdict_audited"


def test_the_audit_is_shown_beside_the_verdict(
    planted: tuple[FakeProvider, RunResult], tmp_path: Path, capsys
) -> None:
    _, run = planted
    main(["audit", run.run_id, "--out", str(tmp_path)])
    result = load_run(run.run_id, tmp_path)
    assert [a.auditor_model for a in result.audits] == [PANEL_MODEL]
    transcript = result.transcript()
    verdict_at = transcript.index(PLANTED.splitlines()[1])
    audit_at = transcript.index(f"> **Audit by {PANEL_MODEL}")
    assert verdict_at < audit_at and "[error] outcome (mechanical)" in transcript
    # The run folder's transcript was written again with it.
    assert "Audit by" in (Path(str(run.run_dir)) / "transcript.md").read_text()
    capsys.readouterr()
    assert main(["runs", "show", run.run_id, "--out", str(tmp_path)]) == 0
    assert f"Audit by {PANEL_MODEL} (openai; chair anthropic)" in capsys.readouterr().out
    assert main(["runs", "show", run.run_id, "--out", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["audits"][0]["findings"][0]["kind"] == "outcome"
    assert run_summary(result)["audits"][0]["auditor_model"] == PANEL_MODEL  # MCP's get_run
    report = council.measure(run.run_id, runs_dir=tmp_path, embedder="fake")
    assert report.audits[0].errors >= 4 and report.to_json()["audits"]


def test_the_web_run_page_shows_the_findings(
    planted: tuple[FakeProvider, RunResult], tmp_path: Path
) -> None:
    _, run = planted
    main(["audit", run.run_id, "--out", str(tmp_path)])
    settings = ServerSettings(runs_dir=tmp_path)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        page = client.get(f"/runs/{run.run_id}").text
    assert "<div id='audits' class='audits'><div class='audit'>" in page
    assert "finding error" in page and "Kuhn&#x27;s dealbreaker is missing." in page


def test_a_clean_verdict_gets_no_error_findings(tmp_path: Path, capsys) -> None:
    with FakeProvider(scripted(CLEAN, 'Audit done: {"findings": []}')) as fake:
        run = convene(fake, tmp_path)
        assert main(["audit", run.run_id, "--out", str(tmp_path), "--json"]) == 0
    audit = json.loads(capsys.readouterr().out)
    assert audit["findings"] == [] and audit["error"] is None


# -- the auditor stage ----------------------------------------------------------------------

AUDITOR_STAGE = """
  - id: audit
    kind: auditor
    sees: [final, verdict]
    max_tokens: 600
    prompt: |
      The question before the council: {{ question }}
"""


def with_auditor(tmp_path: Path) -> Any:
    text = Path("protocols/high-council-quick.yaml").read_text(encoding="utf-8")
    path = tmp_path / "audited.yaml"
    path.write_text(
        text.replace("name: high-council-quick", "name: audited") + AUDITOR_STAGE, "utf-8"
    )
    return str(path)


def test_the_auditor_stage_audits_the_verdict_inside_the_run(tmp_path: Path) -> None:
    with FakeProvider(scripted(PLANTED, AUDITOR_PROSE)) as fake:
        result = convene(fake, tmp_path / "runs", protocol=with_auditor(tmp_path))
    assert result.status == "completed", result.error
    [audit] = result.audits
    assert audit.stage == "audit" and audit.auditor_model == PANEL_MODEL
    kinds = {(f.source, f.kind) for f in audit.findings if f.severity == "error"}
    assert {("mechanical", "outcome"), ("mechanical", "dealbreaker")} <= kinds
    assert {("auditor", "outcome"), ("auditor", "dealbreaker")} <= kinds
    [turn] = result.turns_in("audit")
    assert turn.seat in PANEL and turn.request is not None
    assert turn.request.response_schema == FINDINGS_SCHEMA
    assert PLANTED.splitlines()[1] in turn.request.messages[-1]["content"]
    assert "Audit by" in result.transcript()


def test_the_auditor_stage_is_skipped_when_only_the_chairs_family_sits(tmp_path: Path) -> None:
    with FakeProvider(scripted(CLEAN, '{"findings": []}')) as fake:
        result = Council(
            PANEL,
            protocol=with_auditor(tmp_path),
            model=PANEL_MODEL,
            endpoints={PANEL_MODEL: fake.api_base},
            runs_dir=None,
            similarity="words",
        ).convene(QUESTION)
    assert result.status == "completed" and not result.audits
    assert any(s.startswith("audit: no seat on a model family other") for s in result.skipped)


def test_an_auditor_stage_must_see_the_synthesis_and_alone_may_follow_it(tmp_path: Path) -> None:
    path = Path(with_auditor(tmp_path))
    compile_protocol(path.read_text(encoding="utf-8"), path)  # compiles
    blind = path.read_text(encoding="utf-8").replace("sees: [final, verdict]", "sees: [final]")
    with pytest.raises(Exception, match="it must see the synthesis"):
        compile_protocol(blind, path)


# -- the bundled model ----------------------------------------------------------------------


@pytest.mark.local_model
def test_council_audit_on_the_bundled_model(tmp_path: Path, capsys) -> None:
    from council.seats.local import DEFAULT_LOCAL_MODEL

    with FakeProvider(scripted(PLANTED, "")) as fake:
        run = convene(fake, tmp_path)
    capsys.readouterr()
    argv = ["audit", run.run_id, "--out", str(tmp_path), "--model", DEFAULT_LOCAL_MODEL]
    code = main([*argv, "--same-family", "--max-tokens", "200", "--json"])
    audit = json.loads(capsys.readouterr().out)
    # The planted errors are caught whatever the 135M model says.
    assert code == EXIT_AUDIT_ERRORS and audit["auditor_model"] == DEFAULT_LOCAL_MODEL
    mechanical = {f["kind"] for f in audit["findings"] if f["source"] == "mechanical"}
    assert {"outcome", "dealbreaker"} <= mechanical
