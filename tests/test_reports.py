"""Diversity reports: the text tables, the self-contained HTML page (well formed, escaped, no
NaN, nothing external), and the page as a real headless browser renders it."""

from __future__ import annotations

import copy
import html
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from council import Council
from council.meter.analysis import analyse_run
from council.meter.embedders import FakeEmbedder
from council.meter.experiment_report import ExperimentSummary
from council.meter.run_report import RunDiversity
from council.reports import html as pages
from council.reports import table as tables
from council.reports.svg import nice_scale
from council.reports.values import clean_json, fmt, fmt_p, stage_label
from council.seats import ModelRequest
from council.store.loader import load_run
from council.testing import FunctionModel


# The views take the typed report; these read the JSON a report is stored as into it first.
def run_table(data: dict[str, Any]) -> str:
    return tables.run_table(RunDiversity.model_validate(data))


def run_report_html(data: dict[str, Any]) -> str:
    return pages.run_report_html(RunDiversity.model_validate(data))


def write_run_report(data: dict[str, Any], path: Path) -> Path:
    return pages.write_run_report(RunDiversity.model_validate(data), path)


def experiment_table(data: dict[str, Any]) -> str:
    return tables.experiment_table(ExperimentSummary.model_validate(data))


def experiment_report_html(data: dict[str, Any]) -> str:
    return pages.experiment_report_html(ExperimentSummary.model_validate(data))


def write_experiment_report(data: dict[str, Any], path: Path) -> Path:
    return pages.write_experiment_report(ExperimentSummary.model_validate(data), path)


HOSTILE = "<script>document.title='pwned'</script>"
NAN = re.compile(r"\bnan\b", re.IGNORECASE)


def run_report() -> dict[str, Any]:
    """A report as ``RunDiversity.to_json()`` makes it, with hostile text in every string."""
    seats = ["popper", "kuhn", f"meadows{HOSTILE}"]
    similarity = [[1.0, 0.62, 0.31], [0.62, 1.0, 0.4], [0.31, 0.4, 1.0]]
    points = [
        {
            "seat": "popper",
            "model": "m",
            "distance_to_centroid": 0.1,
            "outlier": False,
            "tokens": 80,
            "characters": 400,
        },
        {
            "seat": "kuhn",
            "model": "m",
            "distance_to_centroid": 0.12,
            "outlier": False,
            "tokens": 75,
            "characters": 380,
        },
        {
            "seat": seats[2],
            "model": "m",
            "distance_to_centroid": 0.4,
            "outlier": True,
            "tokens": 14,
            "characters": 60,
        },
    ]
    return {
        "run_id": "20261125-120000-abcd-cars",
        "question": f'Should cities ban cars? {HOSTILE} & "quotes"',
        "protocol": "mad",
        "embedder": "fake-64",
        "dimension": 64,
        "stages": [
            {
                "stage": "affirmative",
                "round": 0,
                "seats": 1,
                "mean_pairwise_distance": None,
                "vendi_score": None,
                "note": "one seat spoke: diversity needs at least two voices",
                "labels": ["popper"],
                "similarity": [],
                "points": [],
            },
            {
                "stage": "rebuttal",
                "round": 1,
                "seats": 3,
                "mean_pairwise_distance": 0.5567,
                "vendi_score": 2.31,
                "note": None,
                "labels": seats,
                "similarity": similarity,
                "points": points,
            },
            {
                "stage": "rebuttal",
                "round": 2,
                "seats": 3,
                "mean_pairwise_distance": 0.3211,
                "vendi_score": float("nan"),
                "note": None,
                "labels": seats,
                "similarity": similarity,
                "points": points,
            },
        ],
        "stance_flips": [
            {
                "stage": "vote",
                "seat": "kuhn",
                "from_round": 1,
                "to_round": 2,
                "from_stance": "ban",
                "to_stance": f"keep {HOSTILE}",
            },
        ],
        "drift": [
            {
                "seat": "popper",
                "stage": "affirmative",
                "round": 0,
                "position": 0.2,
                "persona_similarity": 0.5,
                "assistant_similarity": 0.3,
            },
            {
                "seat": "popper",
                "stage": "rebuttal",
                "round": 1,
                "position": 0.45,
                "persona_similarity": 0.4,
                "assistant_similarity": 0.4,
            },
            {
                "seat": "kuhn",
                "stage": "rebuttal",
                "round": 1,
                "position": 1.2,
                "persona_similarity": 0.1,
                "assistant_similarity": 0.6,
            },
            {
                "seat": "kuhn",
                "stage": "rebuttal",
                "round": 2,
                "position": float("nan"),
                "persona_similarity": 0.1,
                "assistant_similarity": 0.6,
            },
        ],
        "drift_note": "no assistant baseline for other/model",
        "failed_turns_skipped": 2,
        "empty_turns_skipped": 1,
        "seats": [
            {
                "seat": "popper",
                "persona": "popper",
                "role": "panel",
                "model": "m/one",
                "provider": "m",
            },
            {"seat": "kuhn", "persona": "kuhn", "role": "panel", "model": "m/two", "provider": "m"},
            {
                "seat": seats[2],
                "persona": "meadows",
                "role": "panel",
                "model": "m/one",
                "provider": "m",
            },
            {
                "seat": "chair",
                "persona": "chair",
                "role": "chair",
                "model": "m/one",
                "provider": "m",
            },
        ],
        "vote_tallies": 2,
        "no_persona_baseline": [
            {
                "model": "m/one",
                "mean_pairwise_distance": 0.18,
                "samples": 3,
                "short_answers_skipped": 1,
                "note": "fewer than 8 answers: a noisy baseline",
            }
        ],
        "short_turns_skipped": 2,
    }


def experiment_summary() -> dict[str, Any]:
    def metric(mean: float, lo: float, hi: float, n: int = 12) -> dict[str, Any]:
        return {"mean": mean, "ci95": [lo, hi], "n": n}

    return {
        "experiment": "diversity",
        "title": f"Single model against cross-provider seating {HOSTILE}",
        "questions": 4,
        "samples": 3,
        "embedder": "all-MiniLM-L6-v2",
        "arms": [
            {
                "name": "single",
                "models": ["local/smollm2-135m-instruct"],
                "personas": ["popper", "kuhn"],
                "units": 12,
                "metrics": {
                    "blind_mean_pairwise_distance": metric(0.21, 0.18, 0.24),
                    "blind_vendi_score": metric(1.8, 1.6, 2.0),
                    "drift": metric(0.4, 0.3, 0.5),
                },
            },
            {
                "name": f"cross{HOSTILE}",
                "models": ["openai/gpt-4o-mini", "anthropic/claude"],
                "personas": ["popper", "kuhn"],
                "units": 12,
                "metrics": {
                    "blind_mean_pairwise_distance": metric(0.33, 0.29, 0.37),
                    "blind_vendi_score": metric(2.2, 2.0, 2.4),
                    "drift": {"mean": float("nan"), "ci95": [float("nan"), 1.0], "n": 0},
                },
            },
            {"name": "empty", "models": ["x/y"], "personas": [], "units": 0, "metrics": {}},
        ],
        "metric_descriptions": {
            "blind_mean_pairwise_distance": "How different the blind-round answers were.",
            "blind_vendi_score": f"Effective number of distinct answers {HOSTILE}.",
        },
        "comparisons": [
            {
                "metric": "blind_mean_pairwise_distance",
                "a": "single",
                "b": f"cross{HOSTILE}",
                "difference": 0.12,
                "ci95": [0.07, 0.17],
                "p_value": 0.0001,
            },
            {
                "metric": "blind_vendi_score",
                "a": "single",
                "b": f"cross{HOSTILE}",
                "difference": 0.4,
                "ci95": [0.1, 0.7],
                "p_value": 0.0213,
            },
        ],
        "tests": [
            {
                "metric": "above_placebo_floor",
                "a": "placebo",
                "b": "single",
                "difference": 0.06,
                "ci95": [0.02, 0.1],
                "p_value": 0.012,
                "role": "primary",
                "adjusted_p": None,
            },
            {
                "metric": "blind_mean_pairwise_distance",
                "a": "single",
                "b": f"cross{HOSTILE}",
                "difference": 0.12,
                "ci95": [0.07, 0.17],
                "p_value": 0.0001,
                "role": "secondary",
                "adjusted_p": 0.0003,
            },
            {
                "metric": "blind_vendi_score",
                "a": "single",
                "b": f"cross{HOSTILE}",
                "difference": 0.4,
                "ci95": [0.1, 0.7],
                "p_value": 0.0213,
                "role": "secondary",
                "adjusted_p": 0.0426,
            },
        ],
        "placebo_floor": {
            "single": metric(0.15, 0.12, 0.18, 9),
            f"cross{HOSTILE}": metric(0.09, 0.07, 0.11, 9),
        },
        "power": [
            {
                "metric": "above_placebo_floor",
                "a": "placebo",
                "b": "single",
                "effect": 0.03,
                "questions": 4,
                "power": 0.21,
                "questions_for_80": 19,
            }
        ],
        "underpowered": True,
        "decomposition": {"persona": 0.42, "family": 0.21, "residual": 0.37},
        "curves": {
            "single": [
                {"stage": "opening", "round": 0, "mean": 0.21, "ci95": [0.18, 0.24], "n": 12},
                {
                    "stage": "cross_examination",
                    "round": 0,
                    "mean": 0.17,
                    "ci95": [0.15, 0.2],
                    "n": 12,
                },
            ],
            f"cross{HOSTILE}": [
                {"stage": "opening", "round": 0, "mean": 0.33, "ci95": [0.29, 0.37], "n": 12},
                {
                    "stage": "cross_examination",
                    "round": 0,
                    "mean": float("nan"),
                    "ci95": None,
                    "n": 0,
                },
            ],
        },
    }


EMPTY_SUMMARY: dict[str, Any] = {
    "experiment": "variants", "title": "Nothing yet", "questions": 0, "samples": 0,
    "embedder": "fake-64", "arms": [], "metric_descriptions": {}, "comparisons": [],
    "tests": [], "placebo_floor": {}, "power": [], "decomposition": None, "curves": {},
}  # fmt: skip


class Structure(HTMLParser):
    """Checks that every element is closed in order, and collects what a page is made of."""

    VOID = frozenset(("meta", "br", "hr", "img", "input", "link", "col", "wbr", "area", "base"))

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Structure:
    parser = Structure()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.stack == [], (parser.problems, parser.stack)
    return parser


def check_page(page: str) -> Structure:
    """Well formed, self-contained, every chart accessible, no script, no NaN."""
    assert page.startswith("<!DOCTYPE html>")
    structure = parse(page)
    names = [tag for tag, _ in structure.tags]
    assert names.count("html") == 1 and names.count("style") == 1
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(names)
    for tag, attrs in structure.tags:
        assert not any(a.startswith("on") for a in attrs), (tag, attrs)  # no event handlers
        assert "src" not in attrs and "href" not in attrs
    urls = re.findall(r"https?://[^\s\"'<>)]+", page)
    assert set(urls) <= {"http://www.w3.org/2000/svg"}, urls
    assert "url(" not in page and "@import" not in page
    svgs = [attrs for tag, attrs in structure.tags if tag == "svg"]
    assert svgs, "no charts"
    for attrs in svgs:
        assert attrs.get("role") == "img" and attrs.get("aria-label")
    assert page.count("<svg") == page.count("<svg xmlns") == len(svgs)
    for chart in re.findall(r"<svg.*?</svg>", page, re.S):
        assert re.match(r"<svg[^>]*><title>[^<]+</title>", chart), chart[:200]
    text = " ".join(structure.text)
    assert not NAN.search(text) and not NAN.search(page.replace("\n", " "))
    assert HOSTILE not in page
    return structure


# --- tables -------------------------------------------------------------------------------------


def test_run_table_rows_flips_drift_and_skips() -> None:
    table = run_table(run_report())
    lines = table.splitlines()
    assert lines[0].startswith("Diversity of run 20261125-120000-abcd-cars (protocol mad")
    header = next(line for line in lines if line.startswith("stage"))
    for column in ("round", "seats", "mean pairwise distance", "Vendi score", "outliers", "note"):
        assert column in header
    one_seat = next(line for line in lines if line.startswith("affirmative"))
    assert re.search(r"affirmative\s+0\s+1\s+-\s+-\s+-\s+one seat spoke", one_seat)
    r1 = next(line for line in lines if line.startswith("rebuttal") and " 1 " in line)
    assert "0.557" in r1 and "2.31" in r1 and f"meadows{HOSTILE} (14 tokens)" in r1
    assert re.search(r"kuhn\s+kuhn\s+panel\s+m/two\s+m", table)  # the seat -> model map
    assert re.search(r"m/one\s+0\.180\s+3", table)  # the no-persona baseline
    r2 = next(line for line in lines if line.startswith("rebuttal") and " 2 " in line)
    assert "0.321" in r2 and re.search(r"0\.321\s+-\s", r2)  # NaN Vendi shows as a dash
    assert "kuhn  1 -> 2" in table and f"ban -> keep {HOSTILE}" in table
    drift_header = next(
        line for line in lines if line.startswith("seat ") and "persona" not in line
    )
    assert drift_header.split() == ["seat", "affirmative", "rebuttal", "r1"]
    assert re.search(r"popper\s+0\.20\s+0\.45", table) and re.search(r"kuhn\s+-\s+1\.20", table)
    assert "rebuttal r2" not in drift_header  # kuhn's only r2 position is NaN: no column
    assert "Note: no assistant baseline for other/model" in table
    assert "Skipped: 2 failed turns, 1 empty turns" in table
    assert not NAN.search(table)
    # Columns line up: the stage table's cells start where its header's do.
    dashes = lines[lines.index(header) + 1]
    assert len(dashes.split("  ")) == 7 and all(set(cell) == {"-"} for cell in dashes.split("  "))


def test_run_table_without_drift_or_stages() -> None:
    report = run_report()
    report.update(drift=[], drift_note="no assistant baseline: run ...", stages=[], stance_flips=[])
    table = run_table(report)
    assert "No panel turns to measure." in table
    assert "Stance flips\nNo seat changed its vote between rounds." in table
    report.update(vote_tallies=0)  # a protocol without a vote: no vote section at all
    assert "Stance flips" not in run_table(report) and "vote" not in run_table(report)
    assert "not measured\nNote: no assistant baseline" in table


def test_experiment_table() -> None:
    table = experiment_table(experiment_summary())
    assert table.startswith("Single model against cross-provider seating")
    assert "(diversity experiment: 4 questions x 3 samples, embedder all-MiniLM-L6-v2)" in table
    assert re.search(
        r"single\s+blind_mean_pairwise_distance\s+0\.210\s+\[0\.180, 0\.240\]\s+12", table
    )
    assert re.search(r"blind_vendi_score\s+2\.200\s+\[2\.000, 2\.400\]", table)
    assert re.search(r"cross.*\s+drift\s+-\s+-\s+0", table)  # NaN mean and interval
    assert re.search(r"empty\s+-\s+-\s+-\s+0\s+no results", table)
    assert "blind_mean_pairwise_distance: How different the blind-round answers were." in table
    assert re.search(
        r"blind_mean_pairwise_distance\s+single\s+cross.*0\.120\s+\[0\.070, 0\.170\]\s+<0\.001"
        r"\s+<0\.001\s+secondary",
        table,
    )
    assert re.search(
        r"blind_vendi_score\s+single.*0\.400\s+\[0\.100, 0\.700\]\s+0\.021\s+0\.043", table
    )
    assert re.search(r"above_placebo_floor\s+placebo\s+single.*0\.012\s+-\s+primary", table)
    assert table.splitlines()[1].startswith("UNDERPOWERED")
    assert "power 0.21 to detect 0.030 with 4 questions; 80% needs 19 questions" in table
    assert re.search(r"\nsingle\s+0\.150\s+\[0\.120, 0\.180\]\s+9", table)
    assert re.search(r"persona\s+0\.420\nfamily\s+0\.210\nresidual\s+0\.370", table)
    assert re.search(r"single\s+cross_examination\s+0\.170", table)
    assert not NAN.search(table)


def test_experiment_table_when_empty() -> None:
    table = experiment_table(EMPTY_SUMMARY)
    assert "No arms." in table and "arm against its floor)\nnone" in table
    assert "not measured" in table and "not available" in table


def test_formatting_helpers() -> None:
    assert fmt(float("nan")) == fmt(None) == fmt("0.3") == fmt(True) == "-"
    assert fmt(0.12345) == "0.123" and fmt(3, 1) == "3.0"
    assert fmt_p(0.0004) == "<0.001" and fmt_p(0.05) == "0.050" and fmt_p(float("inf")) == "-"
    assert stage_label("opening", 0) == "opening" and stage_label("rebuttal", 2) == "rebuttal r2"
    assert clean_json({"a": [float("nan"), 1.5, {"b": float("-inf")}]}) == {
        "a": [None, 1.5, {"b": None}]
    }
    assert nice_scale(0.13, 0.87) == (0.0, 1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    lo, hi, ticks = nice_scale(0.5, 0.5)
    assert lo <= 0.5 <= hi and len(ticks) >= 2


# --- HTML ---------------------------------------------------------------------------------------


def test_run_page_is_well_formed_escaped_and_self_contained(tmp_path: Path) -> None:
    path = write_run_report(run_report(), tmp_path / "report.html")
    page = path.read_text(encoding="utf-8")
    structure = check_page(page)
    text = " ".join(structure.text)
    # Hostile text arrives as text, escaped, wherever it is shown (question, seat, stance).
    assert "Should cities ban cars? &lt;script&gt;document.title=&#x27;pwned&#x27;" in page
    assert page.count("meadows&lt;script&gt;") >= 4  # tables, heatmap labels and tooltips
    assert "keep <script>" in text  # what a reader sees
    assert "Content-Security-Policy\" content=\"default-src 'none';" in page
    charts = re.findall(r'aria-label="([^"]+)"', page)
    assert charts == [
        "Mean pairwise distance by stage and round",
        "Cosine similarity: rebuttal r1",
        "Cosine similarity: rebuttal r2",
        "Drift per seat",
    ]
    heatmap = re.search(r"<svg[^>]*Cosine similarity: rebuttal r1.*?</svg>", page, re.S)
    assert heatmap is not None
    assert heatmap[0].count("<rect") >= 9 and ">0.62<" in heatmap[0]
    assert "<title>popper and kuhn: cosine similarity 0.620</title>" in heatmap[0]
    assert heatmap[0].count(">seat</text>") == 2  # both axes labelled
    assert "affirmative: one seat spoke: diversity needs at least two voices" in text
    assert "Not measured (fewer than two seats): affirmative." in text
    assert "persona voice (0)" in text and "assistant voice (1)" in text
    assert "no assistant baseline for other/model" in text
    assert "rebuttal r1: outliers meadows<script>" in text


def test_run_page_edge_cases() -> None:
    report = run_report()
    report.update(stages=[report["stages"][0]], drift=[], stance_flips=[])
    report["drift_note"] = "no assistant baseline: run 'council diversity RUN_DIR --baseline K'"
    page = run_report_html(report)
    structure = check_page(
        page.replace(
            "</main>",
            '<svg xmlns="http://www.w3.org/2000/svg" '
            'role="img" aria-label="x"><title>x</title></svg></main>',
        )
    )
    text = " ".join(structure.text)
    assert "<svg" not in page  # nothing to plot: notes instead of empty charts
    assert "No stage or round had two seats to compare." in text
    assert "run &#x27;council diversity RUN_DIR --baseline K&#x27;" in page
    assert "No seat changed its vote between rounds." in text


def test_experiment_page(tmp_path: Path) -> None:
    page = write_experiment_report(experiment_summary(), tmp_path / "r.html").read_text()
    structure = check_page(page)
    text = " ".join(structure.text)
    labels = re.findall(r'aria-label="([^"]+)"', page)
    assert labels == [
        "blind_mean_pairwise_distance by arm",
        "blind_vendi_score by arm",
        "drift by arm",
        "Where the variance comes from",
        "Mean pairwise distance by stage and round, per arm",
    ]
    distance = re.search(r"<svg[^>]*blind_mean_pairwise_distance by arm.*?</svg>", page, re.S)
    assert distance is not None
    chart = distance[0]
    assert chart.count("<circle") == 2 and "empty (no data)" in chart  # dots for two arms
    assert chart.count("stroke-dasharray") == 4  # two placebo floors, and their legend swatches
    assert "floor: single" in chart
    assert "single at single: 0.210 (95% CI 0.180 to 0.240)" in chart
    vendi = re.search(r"<svg[^>]*blind_vendi_score by arm.*?</svg>", page, re.S)
    assert vendi is not None and "noise floor" not in vendi[0]  # a floor only where it applies
    bar = re.search(r"<svg[^>]*Where the variance comes from.*?</svg>", page, re.S)
    assert bar is not None and bar[0].count("<rect") >= 3 and "persona: 42.0%" in bar[0]
    assert "cross&lt;script&gt;" in page and "No results yet for: empty." in text
    assert "<0.001" in text and "paired by question" in text and "UNDERPOWERED" in text


def test_empty_experiment_page() -> None:
    page = experiment_report_html(EMPTY_SUMMARY)
    structure = parse(page)
    text = " ".join(structure.text)
    assert "<svg" not in page and not NAN.search(text)
    for expected in (
        "This experiment has no arms.",
        "No metrics were measured.",
        "No tests: one arm, or too few questions.",
        "Not measured: this experiment ran without placebo arms.",
        "No variance decomposition",
        "No per-round curves.",
    ):
        assert expected in text


def test_page_from_a_real_run(tmp_path: Path) -> None:
    def reply(request: ModelRequest) -> str:
        return f"{request.seat} argues about {request.stage}: cars, streets, {request.seat}."

    result = Council(
        ["popper", "kuhn", "meadows"],
        protocol="council",
        model=FunctionModel(reply),
        runs_dir=tmp_path,
    ).convene("Should cities ban private cars?")
    voices = {"test/function": ["As an AI assistant, I can list pros and cons of car bans."]}
    report = analyse_run(load_run(result.run_dir or ""), FakeEmbedder(), assistant_voice=voices)
    data = report.to_json()
    table = run_table(data)
    assert "opening" in table and "cross_examination" in table and "not measured" not in table
    page = run_report_html(copy.deepcopy(data))
    check_page(page)
    assert page.count("<svg") == 4  # curve, two heatmaps, drift


# --- a real browser -----------------------------------------------------------------------------


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = "the headless browser test needs chromium: apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def browse(page: Path, profile: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Chromium, headless, on a file:// URL only, with every background fetch turned off."""
    command = [
        chromium(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *options,
        page.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_pages_in_a_headless_browser(tmp_path: Path) -> None:
    run_page = write_run_report(run_report(), tmp_path / "run" / "report.html")
    experiment_page = write_experiment_report(experiment_summary(), tmp_path / "report.html")

    dom = browse(run_page, tmp_path / "profile", "--dump-dom").stdout
    assert dom.count("<svg") == 4 and "<script" not in dom.lower()
    for label in (
        "Mean pairwise distance by stage and round",
        "Cosine similarity: rebuttal r1",
        "Drift per seat",
        "stage and round, in order",
        "mean pairwise distance",
        "persona voice (0)",
        "one seat spoke: diversity needs at least two voices",
    ):
        assert label in dom, label
    assert "<title>Diversity: Should cities ban cars? &lt;script&gt;" in dom  # not 'pwned'
    assert "meadows&lt;script&gt;" in dom

    dom = browse(experiment_page, tmp_path / "profile", "--dump-dom").stdout
    assert dom.count("<svg") == 5
    for label in (
        "blind_vendi_score by arm",
        "floor: single",
        "Where the variance comes from",
        "share of the total variance",
        "per arm",
    ):
        assert label in dom, label

    for page in (run_page, experiment_page):
        shot = page.with_suffix(".png")
        browse(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2000")
        png = shot.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", png[16:24]) == (1200, 2000)
        assert len(png) > 40_000, "the screenshot looks blank (a blank page is about 11 kB)"


# --- statistics shown honestly --------------------------------------------------------------


def legend(chart: str) -> list[tuple[str, str]]:
    """(name, colour) of a chart's series keys, in the order it lists them."""
    return re.findall(r'<g class="legend-series" data-name="([^"]*)" data-colour="([^"]*)"', chart)


def charts(page: str) -> dict[str, str]:
    return {m[1]: m[0] for m in re.finditer(r'<svg[^>]*aria-label="([^"]+)".*?</svg>', page, re.S)}


def test_seats_keep_one_order_and_one_colour_in_every_chart() -> None:
    report = run_report()
    seats = ["popper", "kuhn", f"meadows{HOSTILE}"]
    # The second heatmap's turns arrived in another order: the page still lists seating order.
    report["stages"][2]["labels"] = [seats[2], seats[0], seats[1]]
    report["drift"].insert(
        0,
        {
            "seat": seats[2],
            "stage": "rebuttal",
            "round": 1,
            "position": 0.3,
            "persona_similarity": 0.4,
            "assistant_similarity": 0.3,
        },
    )
    page = run_report_html(report)
    found = charts(page)
    r1 = legend(found["Cosine similarity: rebuttal r1"])
    assert [name for name, _ in r1] == [html.escape(seat) for seat in seats]
    drift = legend(found["Drift per seat"])
    assert drift == r1  # same seats, same order, same colours
    assert len({colour for _, colour in r1}) == 3
    references = re.findall(
        r'class="legend-reference" data-name="[^"]*" data-colour="([^"]*)"', found["Drift per seat"]
    )
    assert len(references) == 2 and not set(references) & {c for _, c in r1}
    assert not set(references) & set(svg_colours())


def svg_colours() -> tuple[str, ...]:
    from council.reports.svg import COLOURS

    return COLOURS


def test_the_no_persona_baseline_is_a_reference_line_on_the_convergence_chart() -> None:
    page = run_report_html(run_report())
    curve = charts(page)["Mean pairwise distance by stage and round"]
    assert 'class="legend-reference" data-name="no-persona baseline: one"' in curve
    assert "no-persona baseline: one: 0.180" in curve  # the line's tooltip
    assert "1 under 40 characters left out; fewer than 8 answers: a noisy baseline" in page
    assert "2 panel replies under 40 characters" in page
    report = run_report()
    report["no_persona_baseline"] = []
    assert "No no-persona baseline: measure one" in run_report_html(report)
    # A report made before the baseline had its name still draws it.
    report["noise_floor"] = run_report()["no_persona_baseline"]
    assert 'data-name="no-persona baseline: one"' in run_report_html(report)


def test_a_protocol_without_votes_has_no_vote_section() -> None:
    report = run_report()
    report.update(stance_flips=[], vote_tallies=0)
    page = run_report_html(report)
    assert "Stance flips" not in page and "changed its vote" not in page
    report["vote_tallies"] = 1
    assert "One vote round: no seat could change its vote." in run_report_html(report)


def test_outliers_show_their_reply_length() -> None:
    page = run_report_html(run_report())
    assert f"rebuttal r1: outliers {html.escape(f'meadows{HOSTILE}')} (14 tokens)" in page
    report = run_report()
    for point in report["stages"][1]["points"]:
        point["tokens"] = None  # the provider counted none: characters instead
    assert "(60 characters)" in run_table(report)


def test_every_y_axis_starts_at_zero() -> None:
    page = experiment_report_html(experiment_summary())
    for title, chart in charts(page).items():
        if "by arm" in title or "per arm" in title:
            ticks = [float(t) for t in re.findall(r'text-anchor="end">(-?[\d.]+)</text>', chart)]
            assert min(ticks) <= 0.0, (title, ticks)
            assert "not 0" not in chart


def test_a_variance_split_that_does_not_add_up_is_undefined_not_rescaled() -> None:
    summary = experiment_summary()
    note_text = "undefined: the answers have near-zero variance (they are all but identical)"
    summary["decomposition"] = {
        "persona": None,
        "family": None,
        "residual": None,
        "note": note_text,
    }
    page = experiment_report_html(summary)
    assert "Where the variance comes from" not in page and note_text in page
    assert "undefined" in experiment_table(summary)
    summary["decomposition"] = {
        "persona": 1.057,
        "family": 0.492,
        "residual": None,
        "note": "residual undefined: confounded",
    }
    page = experiment_report_html(summary)
    assert "Where the variance comes from" not in page  # no bar: it would have to rescale
    assert "1.057" in page and "0.492" in page and "68%" not in page and "32%" not in page
    table = experiment_table(summary)
    assert re.search(r"residual\s+undefined", table) and "Note: residual undefined" in table
