"""The warm worker: a process with litellm imported that makes model calls for later processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.errors import ModelCallError
from council.seats import warm
from council.seats.litellm_model import LiteLLMModel
from council.seats.model import ModelRequest
from council.testing import FakeProvider

REQUEST = ModelRequest(stage="s", messages=[{"role": "user", "content": "hi"}], max_tokens=20,
                       temperature=0.0)  # fmt: skip


@pytest.fixture
def worker_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A worker of this test's own, in a private folder of its own; gone at the end. The
    folder is short-named: a Unix socket's path has at most 108 bytes."""
    runtime = tempfile.mkdtemp(prefix="cw-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    monkeypatch.setenv(warm.IDLE_ENV, "30")
    path = warm.socket_path()
    assert path is not None
    assert warm.find_or_start(path)
    yield path
    path.unlink()  # the worker sees its socket gone and exits
    shutil.rmtree(runtime, ignore_errors=True)


def test_the_worker_makes_the_call_through_litellm(worker_path: Path) -> None:
    model = LiteLLMModel("openai/fake", max_attempts=1, priced=False)
    with FakeProvider("An answer from the worker.") as fake:
        client = warm.WorkerClient(worker_path)
        completion = asyncio.run(
            client.complete(model.settings, {"api_base": fake.api_base, "api_key": "k"}, REQUEST)
        )
        assert fake.request_count == 1
        assert fake.requests[0]["messages"] == REQUEST.messages
    assert completion is not None
    assert completion.content == "An answer from the worker."
    assert completion.completion_tokens and completion.attempts == 1


def test_a_failed_call_comes_back_as_the_same_error(worker_path: Path) -> None:
    model = LiteLLMModel("openai/fake", max_attempts=2, backoff_initial_s=0.01, priced=False)
    with FakeProvider("unused") as fake:
        fake.fail_next(401, 401)
        client = warm.WorkerClient(worker_path)
        with pytest.raises(ModelCallError) as caught:
            asyncio.run(
                client.complete(
                    model.settings, {"api_base": fake.api_base, "api_key": "k"}, REQUEST
                )
            )
        assert fake.request_count == 1  # an authentication error is not retried, there either
    assert not caught.value.retryable
    assert caught.value.attempts == 1


def test_a_worker_that_is_gone_sends_the_call_back_to_this_process(tmp_path: Path) -> None:
    client = warm.WorkerClient(tmp_path / "nobody.sock")
    assert asyncio.run(client.complete({}, {}, REQUEST)) is None
    assert client.gone


def test_a_folder_others_can_enter_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = tmp_path / f"council-{os.getuid()}"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    assert warm.private_folder() is None
    folder.chmod(0o700)
    assert warm.private_folder() == folder
    assert warm.socket_path() is None  # tmp_path is too long a path for a socket


def test_a_changed_key_or_switch_gets_another_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "one")
    first = warm.fingerprint()
    monkeypatch.setenv("OPENAI_API_KEY", "two")
    assert warm.fingerprint() != first
    monkeypatch.setenv("PWD", "/elsewhere")  # what a shell changes between commands does not
    assert warm.fingerprint() == warm.fingerprint()
    monkeypatch.setenv(warm.SWITCH_ENV, "off")
    assert not warm.enabled()
    assert asyncio.run(warm.worker()) is None


def test_a_worker_dying_during_the_call_sends_it_back_to_this_process() -> None:
    folder = Path(tempfile.mkdtemp(prefix="cw-"))
    path = folder / "dies.sock"

    async def call() -> object:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            writer.close()  # read the call, then died without a word

        server = await asyncio.start_unix_server(hang_up, str(path))
        async with server:
            client = warm.WorkerClient(path)
            completion = await client.complete({}, {}, REQUEST)
            return completion, client.gone

    try:
        assert asyncio.run(call()) == (None, True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Heard:
    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.retries: list[tuple[str, int]] = []

    def delta(self, text: str) -> None:
        self.pieces.append(text)

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None:
        self.retries.append((model, attempt))

    def falling_back(self, failed: str, fallback: str, error: str) -> None:
        raise AssertionError("a worker never falls back: the caller does")


def test_the_worker_relays_each_streamed_piece_and_retry(worker_path: Path) -> None:
    import dataclasses

    model = LiteLLMModel("openai/fake", max_attempts=2, backoff_initial_s=0.01, priced=False)
    heard = Heard()
    request = dataclasses.replace(REQUEST, listener=heard)
    with FakeProvider("Pieces of a streamed answer.") as fake:
        fake.fail_next(503)
        client = warm.WorkerClient(worker_path)
        completion = asyncio.run(
            client.complete(model.settings, {"api_base": fake.api_base, "api_key": "k"}, request)
        )
        assert fake.request_count == 2 and fake.requests[-1].get("stream") is True
    assert completion is not None and completion.attempts == 2
    assert heard.retries == [("openai/fake", 1)]
    assert len(heard.pieces) > 1 and "".join(heard.pieces) == "Pieces of a streamed answer."
