"""``council personas list|show|render|new|lint|import|export`` through ``main``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from council.cli.main import main

CARD = """---
name: {name}
description: A cartographer who asks what every map leaves out.
role: Cartographer
traits: [meticulous, curious]
framework: ["Generalisation: every map simplifies, and the simplification is a choice"]
asks: ["What did this map leave out, and who decided?"]
blind_spots: ["Places nobody has surveyed"]
tags: [test]
---
{body}
"""


def card(directory: Path, name: str, body: str = "You are {{ role }}. {{ topic }}") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.md"
    path.write_text(CARD.format(name=name, body=body), encoding="utf-8")
    return path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("council: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_list_json_and_skip_invalid(tmp_path: Path, monkeypatch, capsys) -> None:
    card(tmp_path, "cartographer")
    assert main(["personas", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all({"name", "path", "description"} <= set(row) for row in rows)
    monkeypatch.setenv("COUNCIL_PERSONAS_PATH", str(tmp_path))
    bad = card(tmp_path / "sub", "broken").read_text(encoding="utf-8")
    bad = bad.replace("tags: [test]", "tags: [test]\nmood: sunny")
    (tmp_path / "sub" / "broken.md").write_text(bad, encoding="utf-8")
    assert main(["personas", "list"]) == 2
    assert "broken.md:10: field 'mood'" in one_line_error(capsys)
    assert main(["personas", "list", "--skip-invalid", "--json"]) == 0
    out, err = capsys.readouterr()
    names = {row["name"] for row in json.loads(out)}
    assert {"cartographer", "popper"} <= names and "broken" not in names
    assert err.startswith("council: skipped invalid card: ") and "broken.md:10" in err


def test_show_and_render(tmp_path: Path, capsys) -> None:
    assert main(["personas", "show", "popper"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("popper  (") and "popper.md)" in out
    assert "  figure: Karl Popper" in out and "  polarity pairs: kuhn" in out
    assert "    - What observation would show this is wrong?" in out
    assert main(["personas", "show", "kuhn", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "kuhn" and shown["path"].endswith("kuhn.md")
    assert main(["personas", "render", "popper", "--topic", "Is string theory science?"]) == 0
    assert "The council is deliberating: Is string theory science?" in capsys.readouterr().out
    path = card(tmp_path, "cartographer")
    assert main(["personas", "render", str(path), "--topic", "Maps?"]) == 0
    assert capsys.readouterr().out == "You are Cartographer. Maps?\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Line.\n{% if %}", r"cartographer.md:12: template syntax error"),
        ("{{ nickname }}", r"undefined variable"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", r"refused by the sandbox"),
    ],
)
def test_render_errors_are_one_line_and_print_nothing(
    tmp_path: Path, capsys, body: str, expected: str
) -> None:
    path = card(tmp_path, "cartographer", body=body)
    assert main(["personas", "render", str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.count("\n") == 1 and str(path) in out.err
    assert re.search(expected, out.err)


def test_user_mistakes_exit_2_with_one_line(tmp_path: Path, capsys) -> None:
    assert main(["personas", "show", "nobody"]) == 2
    assert "unknown persona 'nobody'" in one_line_error(capsys)
    bad = tmp_path / "bad.md"
    bad.write_text("---\nname: bad\ntraits: [x\n---\n", encoding="utf-8")
    assert main(["personas", "show", str(bad)]) == 2
    assert "invalid YAML" in one_line_error(capsys)
    assert main(["personas", "new", "Bad Name", "--dir", str(tmp_path)]) == 2
    assert "try 'bad-name'" in one_line_error(capsys)
    assert main(["personas", "lint", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in one_line_error(capsys)


def test_new_writes_a_scaffold_that_loads(tmp_path: Path, capsys) -> None:
    assert main(["personas", "new", "harbour-pilot", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "harbour-pilot.md"
    assert capsys.readouterr().out.strip() == str(path)
    assert main(["personas", "render", str(path), "--topic", "Dredge the channel?"]) == 0
    assert "Dredge the channel?" in capsys.readouterr().out
    assert main(["personas", "lint", "--lexical", str(path)]) == 1  # TODOs are errors
    assert f"{path}:4: error todo: 'role' still has a TODO" in capsys.readouterr().out
    assert main(["personas", "new", "harbour-pilot", "--dir", str(tmp_path)]) == 2
    assert "already exists" in one_line_error(capsys)
    assert main(["personas", "new", "harbour-pilot", "--dir", str(tmp_path), "--force"]) == 0


def test_lint_output_and_exit_codes(tmp_path: Path, capsys) -> None:
    good = card(tmp_path / "good", "cartographer")
    assert main(["personas", "lint", "--lexical", str(good)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "1 cards, 0 errors, 0 warnings (similarity: lexical)" in err
    broken = card(tmp_path / "bad", "surveyor", body="{{ nickname }}")
    assert main(["personas", "lint", "--lexical", str(broken)]) == 1
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{broken}:11: error undeclared-variable: ")
    assert main(["personas", "lint", "--lexical", "--json", str(broken)]) == 1
    findings = json.loads(capsys.readouterr().out)
    assert findings == [
        {
            "path": str(broken),
            "name": "surveyor",
            "severity": "error",
            "code": "undeclared-variable",
            "line": 11,
            "message": findings[0]["message"],
        },
    ]


def test_lint_whole_search_path_has_no_errors(capsys) -> None:
    assert main(["personas", "lint", "--lexical", "--json"]) == 0
    findings = json.loads(capsys.readouterr().out)
    assert not [f for f in findings if f["severity"] == "error"]


def test_import_and_export(tmp_path: Path, capsys) -> None:
    original = {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": {
            "name": "Old Sailor",
            "description": "{{char}} has seen every storm.",
            "personality": "weathered, wry",
            "first_mes": "Ahoy.",
            "tags": [],
            "extensions": {"world": "sea"},
        },
    }
    source = tmp_path / "sailor.json"
    source.write_text(json.dumps(original), encoding="utf-8")
    (tmp_path / "broken.json").write_text("{nope", encoding="utf-8")
    cards = tmp_path / "cards"
    assert main(["personas", "import", str(tmp_path), "--to", str(cards)]) == 2
    assert "broken.json:1: invalid JSON" in one_line_error(capsys)
    assert not cards.exists()
    assert main(["personas", "import", str(tmp_path), "--to", str(cards), "--skip-invalid"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{source} -> {cards / 'old-sailor.md'}"
    assert "skipped invalid card: " in err and "broken.json" in err
    exported = tmp_path / "out.json"
    assert main(["personas", "export", str(cards / "old-sailor.md"), "--out", str(exported)]) == 0
    assert capsys.readouterr().out.strip() == str(exported)
    data = json.loads(exported.read_text(encoding="utf-8"))["data"]
    for key, value in original["data"].items():
        if key != "extensions":
            assert data[key] == value
    assert data["extensions"]["world"] == "sea"
    assert main(["personas", "export", "kuhn"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["name"].startswith("Thomas")
