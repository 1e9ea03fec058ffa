"""Every number in docs/findings.md and in the findings summary on docs/measuring.md, from the shipped
experiments' summary.json files: nothing is typed by hand.

    python docs/experiments/regenerate.py            # render findings.md and the summary
    python docs/experiments/regenerate.py --measure  # first re-measure every shipped folder

``--measure`` re-summarises each experiment folder with the current meter (summary.json and
report.html; the embeddings are cached in the folder), re-summarises the capping folders from
their replies, and keeps the new diversity experiment's variance components as the pilot
that ``council experiment ... --plan`` reads. ``tests/test_findings.py`` holds the Markdown
to the JSON: a figure edited by hand, or a summary changed without rendering, fails it.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = ROOT / "docs" / "experiments"
TEMPLATE = ROOT / "docs" / "findings.template.md"
SUMMARY_TEMPLATE = ROOT / "docs" / "findings-summary.template.md"
FINDINGS = ROOT / "docs" / "findings.md"
SUMMARY_PAGE = ROOT / "docs" / "measuring.md"
SUMMARY_START, SUMMARY_END = "<!-- findings:start -->", "<!-- findings:end -->"
FOLDERS = {  # what each experiment folder is called in the template
    "div": "diversity",
    "old": "diversity-2026-11-25",
    "var": "variants",
}
CAPPING = {"cap": "capping-heldout-p50", "cap50": "capping-p50", "cap90": "capping-p90"}
AXIS = "axis-smollm2-135m-instruct.json"


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def f(value: Any, digits: int = 3, sign: bool = False) -> str:
    """A figure as the findings print it; a dash where there is none."""
    if value is None:
        return "–"
    text = f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
    return text.replace("-", "−")


def ci(pair: Any, digits: int = 3) -> str:
    return "[–]" if not pair else f"[{f(pair[0], digits)}, {f(pair[1], digits)}]"


def p(value: Any) -> str:
    if value is None:
        return "–"
    return "< 0.001" if value < 0.001 else f"{value:.3f}".rstrip("0").rstrip(".")


def pct(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def test(summary: Mapping[str, Any] | None, metric: str, a: str, b: str) -> dict[str, Any]:
    """A test of a summary by what it compares; an empty dict where the summary has none."""
    for entry in (summary or {}).get("tests") or []:
        if (entry["metric"], entry["a"], entry["b"]) == (metric, a, b):
            return dict(entry)
    return {}


def ident(summary: Mapping[str, Any] | None, arm: str, of: str = "persona") -> dict[str, Any]:
    """An arm's (or placebo arm's) identifiability result of a kind."""
    arms = [*((summary or {}).get("arms") or []), *((summary or {}).get("placebo_arms") or [])]
    for entry in arms:
        if entry["name"] == arm:
            return next((r for r in entry.get("identifiability") or [] if r["of"] == of), {})
    return {}


def metric(summary: Mapping[str, Any] | None, arm: str, name: str) -> dict[str, Any]:
    for entry in (summary or {}).get("arms") or []:
        if entry["name"] == arm:
            return dict((entry.get("metrics") or {}).get(name) or {})
    return {}


def excludes_zero(pair: Any) -> str:
    """The words for whether an interval excludes zero."""
    if not pair:
        return "has no interval"
    return "excludes zero" if pair[0] > 0 or pair[1] < 0 else "includes zero"


def context() -> dict[str, Any]:
    """The template's variables: the summaries as they are, and the helpers that print them."""
    data: dict[str, Any] = {
        name: _load(EXPERIMENTS / folder / "summary.json") for name, folder in FOLDERS.items()
    }
    data |= {
        f"{name}_published": _load(EXPERIMENTS / folder / "summary.old-methods.json")
        for name, folder in {**FOLDERS, **CAPPING}.items()
    }
    data |= {name: _load(EXPERIMENTS / folder / "summary.json") for name, folder in CAPPING.items()}
    data["axis"] = _load(EXPERIMENTS / AXIS)
    data["axis_published"] = _load(EXPERIMENTS / "axis.old-methods.json")
    helpers: dict[str, Callable[..., Any]] = {
        "f": f, "ci": ci, "p": p, "pct": pct, "test": test, "ident": ident, "metric": metric,
        "excludes_zero": excludes_zero,
    }  # fmt: skip
    return data | helpers


def render(template: str) -> str:
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template).render(**context())


def rendered() -> tuple[str, str]:
    """The findings page and the measuring page's findings summary (markers included), as they
    must read."""
    page = render(TEMPLATE.read_text(encoding="utf-8"))
    block = render(SUMMARY_TEMPLATE.read_text(encoding="utf-8")).strip()
    return page, f"{SUMMARY_START}\n{block}\n{SUMMARY_END}"


def summary_page_with(block: str) -> str:
    text = SUMMARY_PAGE.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(SUMMARY_START) + ".*?" + re.escape(SUMMARY_END), re.S)
    return pattern.sub(lambda _: block, text, count=1)


def measure() -> None:
    """Re-summarise every shipped folder with the current meter."""
    from council.app.experiments.capping_summary import resummarise_capping
    from council.app.experiments.folder import experiment_embedder
    from council.app.experiments.planning import write_pilot
    from council.app.experiments.summary import summarise, write_summary
    from council.app.measure import REPORT_FILE
    from council.reports.objects import ExperimentReport

    titles = {
        "diversity": "Single model against cross-provider seating, with placebo floors",
        "diversity-2026-11-25": "Single model against cross-provider seating (2026-11-25 data)",
        "variants": "Topic-labelled against framework-grounded personas",
    }
    for folder, title in titles.items():
        out = EXPERIMENTS / folder
        if not (out / "plan.json").is_file():
            continue
        summary = summarise(out, experiment_embedder(None, out), title=title)
        write_summary(out, summary)
        ExperimentReport(summary).write_html(out / REPORT_FILE)
        print(f"measured {folder}")
    for folder in CAPPING.values():
        resummarise_capping(EXPERIMENTS / folder)
        print(f"measured {folder}")
    shipped = _load(EXPERIMENTS / "diversity" / "summary.json")
    if shipped:
        write_pilot(shipped, "the shipped diversity experiment (docs/experiments/diversity)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="re-measure every folder first")
    args = parser.parse_args()
    if args.measure:
        measure()
    page, block = rendered()
    FINDINGS.write_text(page, encoding="utf-8")
    SUMMARY_PAGE.write_text(summary_page_with(block), encoding="utf-8")
    print(f"wrote {FINDINGS.relative_to(ROOT)} and the findings summary of {SUMMARY_PAGE.name}")


if __name__ == "__main__":
    main()
