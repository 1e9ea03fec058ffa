"""The run report and the experiment report as headless Chromium renders them: every chart
lists the seats (or arms) in one order with one colour each, reference lines never take a
seat's colour, and the screenshot shows those colours in that order."""

from __future__ import annotations

import html
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
from test_reports import (
    browse,
    experiment_summary,
    run_report,
    write_experiment_report,
    write_run_report,
)

from council.reports.svg import COLOURS, colour

Image = npt.NDArray[np.uint8]
SEATS = ["popper", "kuhn", "meadows<script>document.title='pwned'</script>"]


def decode_png(data: bytes) -> Image:
    """An 8-bit RGB or RGBA PNG (what Chromium writes) as an (height, width, 3) array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0
    channels = 4 if colour_type == 6 else 3
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, -1)
    rows = np.zeros((height, width * channels), dtype=np.int32)
    previous = np.zeros(width * channels, dtype=np.int32)
    for y in range(height):
        kind, line = int(raw[y, 0]), raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 2:
            row = (line + previous) % 256
        else:  # Sub, Average, Paeth depend on the pixel to the left: one pixel at a time
            row = _unfilter(kind, line, previous, channels)
        rows[y] = previous = row
    return rows.reshape(height, width, channels)[:, :, :3].astype(np.uint8)


def _unfilter(kind: int, line: Image, above: Image, bpp: int) -> Image:
    out = np.zeros_like(line)
    for start in range(0, line.size, bpp):
        for i in range(start, start + bpp):
            a = int(out[i - bpp]) if i >= bpp else 0
            b, c = int(above[i]), int(above[i - bpp]) if i >= bpp else 0
            if kind == 1:
                predictor = a
            elif kind == 3:
                predictor = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[i] = (int(line[i]) + predictor) % 256
    return out


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def solid_squares(image: Image, hex_colour: str, side: int = 7) -> list[tuple[int, int]]:
    """Top-left corners of ``side`` x ``side`` blocks entirely of one colour: the heatmaps' seat
    swatches (lines and dots are too thin or round to hold one)."""
    mask = np.all(image == rgb(hex_colour), axis=2).astype(np.int32)
    sums = np.pad(mask, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    block = sums[side:, side:] - sums[:-side, side:] - sums[side:, :-side] + sums[:-side, :-side]
    ys, xs = np.nonzero(block == side * side)
    corners: list[tuple[int, int]] = []
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):  # one corner per square
        if not any(abs(y - cy) < side and abs(x - cx) < side for cy, cx in corners):
            corners.append((y, x))
    return corners


def legends(dom: str) -> dict[str, list[tuple[str, str]]]:
    """Each chart's series keys (name, colour), in the order the chart lists them."""
    found = {}
    for match in re.finditer(r'<svg[^>]*aria-label="([^"]+)".*?</svg>', dom, re.S):
        entries = re.findall(
            r'<g class="legend-series" data-name="([^"]*)" data-colour="([^"]*)"', match[0]
        )
        found[html.unescape(match[1])] = [(html.unescape(n), c) for n, c in entries]
    return found


def references(dom: str) -> set[str]:
    return set(
        re.findall(r'<g class="legend-reference" data-name="[^"]*" data-colour="([^"]*)"', dom)
    )


def test_the_run_report_keeps_one_seat_order_and_colour_in_every_chart(tmp_path: Path) -> None:
    report = run_report()
    # The second round's turns arrived in another order, and every seat drifted.
    report["stages"][2]["labels"] = [SEATS[2], SEATS[0], SEATS[1]]
    report["drift"].append(
        {
            "seat": SEATS[2],
            "stage": "rebuttal",
            "round": 1,
            "position": 0.3,
            "persona_similarity": 0.4,
            "assistant_similarity": 0.3,
        }
    )
    page = write_run_report(report, tmp_path / "run.html")
    dom = browse(page, tmp_path / "profile", "--dump-dom").stdout
    expected = [(seat, colour(i)) for i, seat in enumerate(SEATS)]
    charts = legends(dom)
    seat_charts = {
        title: keys
        for title, keys in charts.items()
        if keys and title != ("Mean pairwise distance by stage and round")
    }
    assert set(seat_charts) == {
        "Cosine similarity: rebuttal r1",
        "Cosine similarity: rebuttal r2",
        "Drift per seat",
    }
    for title, keys in seat_charts.items():
        assert keys == expected, title
    assert len(references(dom)) >= 2 and not references(dom) & set(COLOURS)

    shot = tmp_path / "run.png"
    browse(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2400")
    image = decode_png(shot.read_bytes())
    swatches = {c: solid_squares(image, c) for _, c in expected}
    columns: dict[int, list[tuple[int, str]]] = {}  # one column of swatches per heatmap
    for hex_colour, corners in swatches.items():
        assert len(corners) == 2, (hex_colour, corners)  # one swatch in each heatmap
        for y, x in corners:
            column = next((k for k in columns if abs(k - x) <= 2), x)
            columns.setdefault(column, []).append((y, hex_colour))
    blocks = sorted(sorted(column) for column in columns.values())
    # Two heatmaps side by side, or one under the other: group the swatches by heatmap.
    groups = [b for b in blocks if len(b) == 3] or [sorted(blocks[0])[i : i + 3] for i in (0, 3)]
    assert len(groups) == 2
    for group in groups:
        assert [c for _, c in sorted(group)] == [c for _, c in expected]


def test_the_experiment_report_keeps_one_arm_order_and_colour(tmp_path: Path) -> None:
    summary = experiment_summary()
    page = write_experiment_report(summary, tmp_path / "experiment.html")
    dom = browse(page, tmp_path / "profile", "--dump-dom").stdout
    arms = [str(a["name"]) for a in summary["arms"]]
    expected = [(arm, colour(i)) for i, arm in enumerate(arms)]
    charts = legends(dom)
    arm_charts = {t: keys for t, keys in charts.items() if "by arm" in t or "per arm" in t}
    assert len(arm_charts) == 4
    for title, keys in arm_charts.items():
        assert keys == expected, title
    floors = references(dom)
    assert len(floors) == 2 and not floors & set(COLOURS)

    shot = tmp_path / "experiment.png"
    browse(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2600")
    image = decode_png(shot.read_bytes())
    for hex_colour in [c for _, c in expected[:2]] + sorted(floors):
        assert np.all(image == rgb(hex_colour), axis=2).sum() >= 20, hex_colour
