"""The card linter: one test per rule, the shipped library, the scaffold, both similarity paths."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from council.meter import FakeEmbedder, embedder_available
from council.meter.embedders import default_embedder
from council.personas import find_persona
from council.personas.library import persona_dirs
from council.personas.lint import LEXICAL_THRESHOLD, TENSIONS, lexical_similarity, lint_paths
from council.personas.scaffold import scaffold_text

GOOD: dict[str, Any] = {
    "description": "A glaciologist who reads every plan against the slow physics of ice.",
    "role": "Glaciologist",
    "figure": "Ines Moraga (glaciologist, 2031)",
    "traits": ["patient", "exacting about measurement"],
    "framework": ["Mass balance: what accumulates must be weighed against what melts"],
    "asks": ["What is the time constant of the system we are disturbing?"],
    "blind_spots": ["Fast social change that outruns physical time scales"],
    "polarity_pairs": [],
    "tags": ["test"],
}


def write_card(
    directory: Path, name: str, body: str = "You are {{ role }}. Topic: {{ topic }}", **fields: Any
) -> Path:
    data = {"name": name, **GOOD, **fields}
    front = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    path = directory / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")
    return path


def line_of(path: Path, start: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.startswith(start))


def codes(paths: list[Path], **kwargs: Any) -> set[tuple[str, str]]:
    return {(f.code, f.severity) for f in lint_paths(paths, **kwargs).findings}


def test_a_good_card_is_clean(tmp_path: Path) -> None:
    report = lint_paths([write_card(tmp_path, "glaciologist")])
    assert report.findings == [] and report.exit_code == 0 and report.cards == 1


def test_shipped_library_has_no_errors() -> None:
    report = lint_paths(persona_dirs())
    assert report.cards >= 7
    assert report.errors == [], "\n".join(map(str, report.errors))
    assert not [f for f in report.findings if f.code == "similar-card"]


def test_invalid_card_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = write_card(tmp_path, "broken", mood="sunny")
    write_card(tmp_path, "fine")
    report = lint_paths([tmp_path])
    [finding] = report.errors
    line = line_of(path, "mood:")
    assert (finding.code, finding.name, finding.line) == ("invalid-card", "broken", line)
    assert "field 'mood'" in finding.message
    assert str(finding) == f"{path}:{line}: error invalid-card: {finding.message}"
    assert report.exit_code == 1


def test_template_errors(tmp_path: Path) -> None:
    undeclared = write_card(tmp_path, "a", body="Hi.\n{{ nickname }} on {{ topic }}")
    [finding] = lint_paths([undeclared]).errors
    assert (finding.code, finding.line) == ("undeclared-variable", line_of(undeclared, "{{ nick"))
    assert "'nickname'" in finding.message
    loops = write_card(
        tmp_path, "b", body="{% for f in framework %}{{ f }}{% endfor %}{{ range(2) }}"
    )
    assert lint_paths([loops]).errors == []  # loop variables and globals are fine
    declared = write_card(tmp_path, "c", body="{{ nickname }}", variables={"nickname": "Ice"})
    assert lint_paths([declared]).errors == []
    syntax = write_card(tmp_path, "d", body="one\n{% if %}")
    [finding] = lint_paths([syntax]).errors
    assert (finding.code, finding.line) == ("template-syntax", line_of(syntax, "{% if"))
    hostile = write_card(tmp_path, "e", body="{{ ''.__class__.__mro__[1].__subclasses__() }}")
    [finding] = lint_paths([hostile]).errors
    assert finding.code == "render-failed" and "sandbox" in finding.message


def test_polarity_pairs(tmp_path: Path) -> None:
    unknown = write_card(tmp_path, "a", polarity_pairs=["nobody-at-all"])
    [finding] = lint_paths([unknown]).errors
    assert (finding.code, finding.line) == ("unknown-pair", line_of(unknown, "polarity_pairs"))
    assert codes([write_card(tmp_path, "b", polarity_pairs=["popper"])]) == {
        ("one-sided-pair", "warning")  # popper lists kuhn, not b
    }
    assert codes([write_card(tmp_path, "c", polarity_pairs=["c"])]) == {("self-pair", "warning")}
    mutual = tmp_path / "mutual"
    write_card(mutual, "left", polarity_pairs=["right"])
    write_card(
        mutual,
        "right",
        polarity_pairs=["left"],
        description="A tidal engineer.",
        framework=["Harmonic analysis of tides"],
        asks=["When is slack water?"],
    )
    assert codes([mutual]) == set()


def test_topic_label_and_blind_spots(tmp_path: Path) -> None:
    label = write_card(tmp_path, "a", framework=[], asks=[])
    assert codes([label]) == {("topic-label", "warning")}
    assert codes([write_card(tmp_path, "b", framework=[])]) == set()  # questions suffice
    assert codes([write_card(tmp_path, "c", blind_spots=[])]) == {("no-blind-spots", "warning")}


@pytest.mark.parametrize(
    ("traits", "flagged"),
    [
        (["empathetic listener", "blunt in meetings"], True),
        (["cautious", "reckless with money"], True),
        (["humble", "arrogant"], True),
        (["patient", "impulsive"], True),
        (["sceptical", "credulous"], True),
        (["patient", "never impulsive"], False),
        (["open-minded", "anti-dogmatic"], False),
        (["careful with words", "patient"], False),
    ],
)
def test_trait_tensions(tmp_path: Path, traits: list[str], flagged: bool) -> None:
    found = codes([write_card(tmp_path, "a", traits=traits)])
    assert (("trait-tension", "warning") in found) is flagged


def test_tension_list_is_documented_pairs() -> None:
    assert all(left and right and not left & right for left, right in TENSIONS)
    assert any("empathetic" in left and "blunt" in right for left, right in TENSIONS)


def test_near_copy_is_flagged_lexically(tmp_path: Path) -> None:
    popper = find_persona("popper")
    copy = popper.path.read_text(encoding="utf-8").replace("name: popper", "name: popper-two")
    copy = copy.replace("Karl Popper, the critical", "Karl R. Popper, the critical")
    path = tmp_path / "popper-two.md"
    path.write_text(copy, encoding="utf-8")
    findings = [f for f in lint_paths([path]).findings if f.code == "similar-card"]
    assert len(findings) == 1 and "'popper'" in findings[0].message
    assert findings[0].severity == "warning"


def test_lexical_similarity_measure() -> None:
    texts = ["mass balance of glaciers and ice", "mass balance of glaciers and ice", "tides"]
    matrix = lexical_similarity(texts)
    assert matrix[0][1] == pytest.approx(1.0) and matrix[0][2] == pytest.approx(0.0)
    assert 0 < LEXICAL_THRESHOLD < 1


def test_fake_embedder_path(tmp_path: Path) -> None:
    write_card(tmp_path, "one")
    write_card(tmp_path, "two")  # identical profile: cosine 1.0
    report = lint_paths([tmp_path], embedder=FakeEmbedder())
    assert report.similarity == "embedding (fake-64)"
    assert [f.code for f in report.findings] == ["similar-card"]


def test_duplicates_todo_and_placeholders(tmp_path: Path) -> None:
    write_card(tmp_path / "a", "same")
    write_card(tmp_path / "b", "same")
    assert ("duplicate-name", "warning") in codes([tmp_path])
    todo = write_card(tmp_path, "todo", role="TODO: a role", body="TODO {{ topic }}")
    messages = [f.message for f in lint_paths([todo]).findings]
    assert messages == [
        "'role' still has a TODO (an unresolved scaffold placeholder)",
        "the body still has a TODO (an unresolved scaffold placeholder)",
    ]
    held = write_card(tmp_path, "held", body="{{ city }}", variables={"city": "<city>"})
    assert codes([held]) == {("placeholder-variable", "warning")}


def test_scaffold_loads_and_lints_clean_once_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "harbour-pilot.md"
    path.write_text(scaffold_text("harbour-pilot"), encoding="utf-8")
    report = lint_paths([path])
    # Unresolved scaffold placeholders are errors (issue 32): one per field, with its line.
    assert report.errors and {f.code for f in report.findings} == {"todo"}
    assert {(f.severity, f.line) for f in report.findings if "'role'" in f.message} == {
        ("error", 4)
    }
    filled = path.read_text(encoding="utf-8")
    for todo, value in {
        "TODO: one sentence: who this persona is and what they test in a proposal": "A harbour pilot who asks how a plan behaves in fog, at night and at spring tide.",
        "TODO: their role, e.g. Historian of public health": "Harbour pilot",
        "TODO: a trait": "unhurried",
        "TODO: another trait": "exact about soundings",
        "TODO: Framework name: what it claims, in one line": "Under-keel clearance: every passage is judged by the water left beneath the hull",
        "TODO: a question this persona always asks": "What happens at low water with a squall?",
        "TODO: something this persona tends to miss": "Costs that fall far from the quay",
    }.items():
        filled = filled.replace(todo, value)
    path.write_text(filled, encoding="utf-8")
    assert lint_paths([path]).findings == []


@pytest.mark.skipif(not embedder_available(), reason="sentence-transformers model not installed")
def test_real_embedder_flags_near_copies_not_the_library(tmp_path: Path) -> None:
    write_card(tmp_path, "glaciologist")
    near = "A glaciologist who reads each plan against the slow physics of ice."
    write_card(tmp_path, "ice-reader", description=near, traits=["patient", "exact about ice"])
    write_card(
        tmp_path,
        "bookseller",
        description="A rare-book dealer who prices provenance.",
        role="Antiquarian bookseller",
        traits=["genial", "shrewd"],
        framework=["Provenance: a book's history is part of its value"],
        asks=["Who owned this before, and can we prove it?"],
        blind_spots=["Books nobody collects"],
    )
    report = lint_paths([tmp_path], embedder=default_embedder())
    assert report.similarity == "embedding (all-MiniLM-L6-v2)"
    similar = [f for f in report.findings if f.code == "similar-card"]
    assert [(f.name, "'ice-reader'" in f.message) for f in similar] == [("glaciologist", True)]
    library = lint_paths(persona_dirs(), embedder=default_embedder())
    assert library.errors == [] and not [f for f in library.findings if f.code == "similar-card"]


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    from council.base.errors import ConfigError

    with pytest.raises(ConfigError, match="no such file or folder"):
        lint_paths([tmp_path / "nope"])


def test_lint_recurses_into_subfolders(tmp_path: Path) -> None:
    shutil.copy(find_persona("kuhn").path, tmp_path / "kuhn.md")
    write_card(tmp_path / "deep" / "er", "deep-card")
    report = lint_paths([tmp_path])
    assert report.cards == 2
