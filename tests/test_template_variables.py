"""Writing a protocol: the example in examples/, ``council protocols new``, the README's file, the
template variables each stage kind offers (the table the engine is held to, and the page
generated from it), and a first draft told every missing field at once."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import council
from council.base.errors import ProtocolError
from council.cli.main import main
from council.engine import prompts
from council.protocols import compile_protocol, load_protocol_file
from council.protocols.rehearse import rehearse
from council.protocols.variables import EVERY_STAGE
from council.testing import FakeProvider

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "protocol.yaml"
MODEL = "openai/fake"


def ballot_reply(body: dict[str, Any]) -> str:
    """A reply that reads as a vote wherever one is asked for, and as prose elsewhere."""
    reason = "Yes: the evidence on air quality carries it, and buses can take the load."
    return f"{reason}\n\nyes | 0.9 | none"


def convene(protocol: str, runs: Path, fake: FakeProvider) -> council.RunResult:
    panel = council.Council(
        ["popper", "kuhn", "meadows"],
        protocol=protocol,
        model=MODEL,
        runs_dir=runs,
        endpoints={MODEL: fake.api_base},
    )
    return panel.convene("Should cities ban private cars from their centres?")


def test_the_example_validates_and_convenes_with_every_kinds_variables(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    assert main(["protocols", "validate", str(EXAMPLE)]) == 0
    assert "ok (example-vote)" in capsys.readouterr().out
    # What the engine hands each stage's template, by kind: exactly what the table says.
    given: dict[str, set[str]] = {}
    render = prompts.render_template

    def capture(source: str, variables: dict[str, Any], **where: Any) -> str:
        stage_id = where["field"].split("'")[1]  # "stage 'opening'.prompt"
        given.setdefault(stage_id, set()).update(variables)
        return render(source, variables, **where)

    monkeypatch.setattr(prompts, "render_template", capture)
    with FakeProvider(ballot_reply) as fake:
        result = convene(str(EXAMPLE), tmp_path / "runs", fake)
    assert result.status == "completed"
    stages = [t.stage for t in result.turns]
    assert {"opening", "replies", "vote", "challenge", "verdict"} <= set(stages)
    protocol = load_protocol_file(EXAMPLE)
    assert set(given) == {"opening", "replies", "vote", "challenge", "verdict"}
    for stage_id, names in given.items():
        declared = {v.name for v in protocol.stage(stage_id).prompt_variables}  # type: ignore[union-attr]
        assert names == declared, stage_id
    challenge = next(t for t in result.turns if t.stage == "challenge")
    assert challenge.request is not None
    assert 'The council agreed 100% on "yes"' in challenge.request.messages[-1]["content"]
    verdict = next(t for t in result.turns if t.stage == "verdict")
    assert verdict.request is not None
    assert "The members: popper, kuhn, meadows." in verdict.request.messages[-1]["content"]


def test_protocols_new_writes_one_that_validates_and_convenes(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["protocols", "new", "my-council"]) == 0
    path = tmp_path / "protocols" / "my-council.yaml"
    assert capsys.readouterr().out.strip() == str(Path("protocols") / "my-council.yaml")
    assert main(["protocols", "validate", str(path)]) == 0
    text = path.read_text()
    for variable in EVERY_STAGE:  # its comments list what a prompt may use
        assert f"#   {variable.name}: " in text
    assert "TODO" not in text  # nothing a model would be sent as it stands
    with FakeProvider(ballot_reply) as fake:
        result = convene("my-council", tmp_path / "runs", fake)  # found by name in ./protocols
    assert result.status == "completed" and result.protocol == "my-council"
    assert [t.stage for t in result.turns].count("opening") == 3
    # Never over a file without --force; a bad name is one line with a suggestion.
    assert main(["protocols", "new", "my-council"]) == 2
    assert "already exists; use --force" in capsys.readouterr().err
    assert main(["protocols", "new", "my-council", "--force"]) == 0
    capsys.readouterr()
    assert main(["protocols", "new", "My Council"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "try 'my-council'" in err


def test_the_readmes_protocol_validates() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    assert blocks, "the README shows no protocol file"
    for block in blocks:
        rehearse(compile_protocol(block, Path("README.md")))


def test_a_first_draft_is_told_every_missing_field_at_once(tmp_path: Path, capsys) -> None:
    draft = tmp_path / "draft.yaml"
    draft.write_text(
        "name: draft\ndescription: A first try.\nstages:\n"
        "  - kind: statement\n  - kind: synthesis\n    sees: [opening]\n"
    )
    assert main(["protocols", "validate", str(draft)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err == (
        f"{draft}:4: field 'stage #1.id': Field required; also missing: stage #1.prompt "
        "(line 4), stage #2.id (line 5), stage #2.prompt (line 5)"
    )


def test_a_variable_a_kind_does_not_offer_fails_validate_with_the_known_ones(
    tmp_path: Path,
) -> None:
    """A guard's variables are a guard's: a statement naming one fails before any run, as it
    would at run time, and the error lists what the stage does have."""
    text = EXAMPLE.read_text().replace("Answer as {{ card.role }}", "Answer ({{ agreement }})")
    with pytest.raises(ProtocolError, match=r"'agreement' is undefined.*known: card, members"):
        rehearse(compile_protocol(text, tmp_path / "p.yaml"))


def test_every_shipped_protocol_renders_with_its_kinds_variables() -> None:
    """high-council's verdict names member_names and routing: validate knows them now."""
    for path in sorted((REPO / "protocols").glob("*.yaml")):
        assert rehearse(load_protocol_file(path)) > 0, path.name


def page_generator() -> ModuleType:
    script = REPO / "build-support" / "template_variables.py"
    spec = importlib.util.spec_from_file_location("template_variables", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_template_variables_page_is_what_the_table_renders() -> None:
    generator = page_generator()
    assert generator.PAGE.read_text(encoding="utf-8") == generator.render(), (
        "docs/template-variables.md is out of date: run python build-support/template_variables.py"
    )
    page = generator.PAGE.read_text(encoding="utf-8")
    for kind in ("guard", "synthesis"):
        assert f"## `{kind}` stages: also" in page
    assert "| `member_names` |" in page and "| `card.asks` |" in page
