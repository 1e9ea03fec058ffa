"""Another installed distribution that also provides the ``council`` package is named, and an
ordinary environment (this checkout, or council installed alone) says nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from council.base.distribution import (
    DISTRIBUTION,
    __version__,
    _foreign_entries,
    _suspicious,
    normalized,
    other_providers,
)


def _site(tmp_path: Path, *, with_council_ai: bool) -> str:
    """A site folder holding this distribution's wheel install, and perhaps council-ai's files."""
    site = tmp_path / "site-packages"
    (site / "council" / "cli").mkdir(parents=True)
    (site / "council" / "__init__.py").write_text("")
    ours = site / f"persona_council-{__version__}.dist-info"
    ours.mkdir()
    (ours / "METADATA").write_text(f"Metadata-Version: 2.4\nName: {DISTRIBUTION}\nVersion: 1\n")
    (ours / "RECORD").write_text(
        "council/__init__.py,sha256=abc,0\ncouncil/cli/main.py,sha256=def,0\n"
        f"{ours.name}/RECORD,,\n"
    )
    if with_council_ai:
        (site / "council" / "agents").mkdir()
        theirs = site / "council_ai-0.0.29.dist-info"
        theirs.mkdir()
        (theirs / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: council-ai\nVersion: 0.0.29\n"
        )
        (theirs / "RECORD").write_text("council/__init__.py,,\ncouncil/agents/__init__.py,,\n")
    return str(site)


def test_council_installed_alone_is_not_suspicious(tmp_path: Path) -> None:
    site = _site(tmp_path, with_council_ai=False)
    assert _foreign_entries(site, __version__) == set()
    assert not _suspicious([site], __version__)
    assert other_providers([site]) == []


def test_council_ai_in_the_same_folder_is_named(tmp_path: Path) -> None:
    site = _site(tmp_path, with_council_ai=True)
    assert _foreign_entries(site, __version__) == {"agents"}
    assert _suspicious([site], __version__)
    assert other_providers([site]) == ["council-ai 0.0.29"]


def test_a_distribution_that_overwrote_only_ours_is_still_suspicious(tmp_path: Path) -> None:
    """The ``council`` placeholder on PyPI could write only files that ours has too: its
    ``*council*`` dist-info folder beside ours is the sign."""
    site = _site(tmp_path, with_council_ai=False)
    placeholder = Path(site, "council-0.0.1.post2.dist-info")
    placeholder.mkdir()
    (placeholder / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: council\nVersion: 0.0.1.post2\n"
    )
    (placeholder / "RECORD").write_text("council/__init__.py,,\n")
    assert _suspicious([site], __version__)
    assert other_providers([site]) == ["council 0.0.1.post2"]


def test_names_compare_as_pep_503_says() -> None:
    assert normalized("Persona_Council") == normalized("persona.council") == DISTRIBUTION


def test_importing_from_the_checkout_says_nothing() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import council"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert done.returncode == 0 and done.stderr == ""
