"""The bundled all-MiniLM-L6-v2 in numpy gives sentence-transformers' vectors, so a seating
choice made with it before the first request (domain seat, panel, duo) is the one the full
model would make; it imports no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from council.meter.embedders import _bundled_model_path, embedder_available

needs_embedder = pytest.mark.skipif(not embedder_available(), reason="no bundled embedder")

TEXTS = [
    "Should cities ban private cars from their centres?",
    "philosophy of science; falsifiability; conjecture and refutation",
    "Café, naïve résumé: 你好 world!!",
    "",
    "x",
    "a long text that the model must cut at its maximum sequence length " * 40,
]


@needs_embedder
def test_the_light_model_gives_the_full_models_vectors() -> None:
    import numpy as np

    from council.meter.embedders import default_embedder
    from council.meter.light import light_default_embedder

    light = light_default_embedder()
    assert light is not None and light.dimension == 384
    ours = light.encode(TEXTS)
    theirs = default_embedder().encode(TEXTS)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.abs(ours @ ours.T - theirs @ theirs.T).max() < 1e-5


@needs_embedder
def test_a_seating_choice_imports_no_torch() -> None:
    """The domain seat of a council, chosen in a fresh process, by embedding cosine."""
    script = (
        "import sys, json\n"
        "from council.app.choosing import seat_by_domain\n"
        "from council.personas.library import find_persona\n"
        "cards = [find_persona(n) for n in ('popper', 'kuhn', 'hayek', 'keynes')]\n"
        "found = seat_by_domain('How should a central bank respond to a recession?', cards)\n"
        "print(json.dumps([found.note, 'torch' in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    note, torch = json.loads(done.stdout.splitlines()[-1])
    assert "embedding cosine" in note and torch is False


def test_a_model_in_another_layout_is_not_read_here(tmp_path: Path) -> None:
    from council.meter.light import _readable

    bundled = _bundled_model_path()
    if bundled is not None:
        assert _readable(bundled)
    (tmp_path / "modules.json").write_text(json.dumps([{"type": "x.CLIP"}]))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert not _readable(tmp_path)
