"""Shared fixtures. Every test runs under a guard that refuses network access beyond loopback."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from replies import varied

from council.testing import FakeProvider, loopback_only
from council.testing.fake_provider import Reply

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["COUNCIL_WARM_WORKER"] = "off"  # calls stay in the test's process, under its guard

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    with loopback_only():
        yield


@pytest.fixture(autouse=True)
def _runs_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test records its runs in a home of its own, never in the user's."""
    home = tmp_path / "runs-home"
    monkeypatch.setenv("COUNCIL_RUNS", str(home))
    return home


@pytest.fixture
def provider_reply() -> Reply:
    """What ``provider`` answers: ``replies.varied`` unless a test module overrides this
    fixture with a reply of its own (a string, or a function of the request body)."""
    return varied


@pytest.fixture
def provider(provider_reply: Reply) -> Iterator[FakeProvider]:
    """The loopback fake provider (OpenAI-compatible, reached through litellm) for the test."""
    with FakeProvider(provider_reply) as fake:
        yield fake


@pytest.fixture
def local_model_on_fake_provider(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> FakeProvider:
    """The bundled ``local/...`` models answered by ``provider`` instead of llama.cpp, so an
    example written for the bundled model runs in seconds (through litellm all the same)."""
    from council.seats.local import LOCAL_SERVERS

    def litellm_params(model_string: str) -> dict[str, str]:
        name = model_string.split("/", 1)[1]
        return {"model": f"openai/{name}", "api_base": provider.api_base, "api_key": "x"}

    monkeypatch.setattr(LOCAL_SERVERS, "litellm_params", litellm_params)
    return provider


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a text file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """nyk's eighteen agents (tests/fixtures/nyk), imported unchanged into a personas folder
    on the search path, with the test's folder as the working directory."""
    from council.cli.main import main

    folder = tmp_path / "personas" / "nyk"
    nyk = Path(__file__).parent / "fixtures" / "nyk" / "agents"
    assert main(["personas", "import", str(nyk), "--to", str(folder)]) == 0
    capsys.readouterr()
    monkeypatch.setenv("COUNCIL_PERSONAS_PATH", str(folder))
    monkeypatch.chdir(tmp_path)
    yield folder
