"""The page around a report: one self-contained HTML document with inline CSS, no scripts and
nothing fetched (a Content-Security-Policy forbids it); every string from the data is escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1d1d1f; background: #f4f4f4; line-height: 1.45; }
main { max-width: 1060px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .2rem; }
.question { font-size: 1.1rem; font-style: italic; margin: .2rem 0 1rem; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; }
dt { font-weight: 600; color: #555; } dd { margin: 0; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .3rem .6rem; text-align: left;
  vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.note { color: #6b3a00; background: #fff7e6; border-left: 3px solid #e69f00;
  padding: .4rem .7rem; max-width: 760px; }
.figures { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: flex-start; }
figure { margin: .6rem 0; }
figcaption { font-size: .85rem; color: #555; max-width: 740px; }
svg.chart { max-width: 100%; height: auto; }
code { font-size: .9em; background: #f3f3f3; padding: 0 .25em; }
.explain { color: #444; font-size: .92rem; max-width: 780px; }
footer { margin-top: 2.5rem; color: #777; font-size: .8rem; }
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}<footer>Written by council diversity.</footer></main></body></html>\n"
    )


def body_of(document: str) -> str:
    """What ``page`` put inside a document's ``<main>``, its footer left out: the report as a
    fragment, for a page of its own around it (the web app's). Every string from the data was
    escaped, so the first ``<main>`` and the last ``<footer>`` are the page's own."""
    start = document.find("<main>")
    end = document.rfind("<footer>")
    if start < 0 or end < start:
        return document  # not a page() document: shown as it is, still the report's own HTML
    return document[start + len("<main>") : end]


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()
) -> str:
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(c)}</td>' if i in numeric else f"<td>{esc(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def meta(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<dl class="meta">'
        + "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
        + "</dl>"
    )


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


def figure(chart: str, caption: str) -> str:
    return f"<figure>{chart}<figcaption>{esc(caption)}</figcaption></figure>"


def write(path: Path | str, text: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target
