"""The warm worker: a process with litellm imported that makes model calls for later processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.errors import ModelCallError
from council.seats import warm
from council.seats.litellm_model import LiteLLMModel
from council.seats.model import Completion, ModelRequest
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


def test_a_folder_others_can_enter_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    base = Path(tempfile.mkdtemp(prefix="cw-"))  # short: a socket fits, whoever runs the test
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
        folder = base / f"council-{os.getuid()}"
        folder.mkdir(mode=0o777)
        folder.chmod(0o777)
        assert warm.private_folder() is None
        assert warm.socket_path() is None
        folder.chmod(0o700)
        assert warm.private_folder() == folder
        path = warm.socket_path()
        assert path is not None and path.parent == folder
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_folder_too_long_for_a_socket_gets_no_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Made longer than a Unix socket's path allows (108 bytes), however short tmp_path is.
    base = tmp_path / ("x" * 110)
    base.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(base))
    assert warm.private_folder() == base / f"council-{os.getuid()}"
    assert warm.socket_path() is None


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


def _worker_pid(path: Path) -> int:
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(path).encode() in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no worker serves {path}")


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the worker in /proc")
def test_a_silent_connection_does_not_keep_the_worker_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="cw-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv(warm.IDLE_ENV, "1")
    path = warm.socket_path()
    assert path is not None
    stale = path.with_name("worker-0.lock")  # an older worker's, held by nobody
    stale.touch()
    assert warm.find_or_start(path)
    pid = _worker_pid(path)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
            silent.connect(str(path))  # connected, and never a word
            # Gone within 5 s of its idle time, the connection still open.
            assert _gone_within(pid, 1 + 5)
        assert not path.exists() and not path.with_suffix(".lock").exists()
        assert not stale.exists()  # removed by the worker as it started
    finally:
        if not _gone_within(pid, 0):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the worker in /proc")
def test_a_stopped_worker_removes_its_socket_and_lock(worker_path: Path) -> None:
    pid = _worker_pid(worker_path)
    os.kill(pid, signal.SIGTERM)
    assert _gone_within(pid, 5)
    assert not worker_path.exists() and not worker_path.with_suffix(".lock").exists()
    worker_path.touch()  # for the fixture, which removes it


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the worker in /proc")
def test_workers_do_not_pile_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three environments, two workers at most: the third retires the least recently used,
    which finishes the call it holds, then exits; a dead worker's socket is removed."""
    import threading

    runtime = Path(tempfile.mkdtemp(prefix="cw-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv(warm.IDLE_ENV, "60")
    monkeypatch.setenv(warm.MAX_ENV, "2")
    model = LiteLLMModel("openai/fake", max_attempts=1, priced=False)
    paths: dict[str, Path] = {}
    pids: list[int] = []
    arrived, release = threading.Event(), threading.Event()

    def held_reply(_body: object) -> str:
        arrived.set()
        release.wait(120)  # the call stays in flight until the test lets it go
        return "Finished by a retired worker."

    def start(name: str) -> Path:
        monkeypatch.setenv("COUNCIL_TEST_ENVIRONMENT", name)  # another environment
        path = warm.socket_path()
        assert path is not None and warm.find_or_start(path)
        pids.append(_worker_pid(path))
        paths[name] = path
        return path

    replies: list[Completion | None] = []
    try:
        with FakeProvider(held_reply) as fake:
            endpoint = {"api_base": fake.api_base, "api_key": "k"}
            start("a")
            dead = start("b").with_name("worker-dead.sock")
            dead.touch()  # a socket no worker holds the lock of
            a, b = pids
            client = warm.WorkerClient(paths["a"])
            call = threading.Thread(target=lambda: replies.append(
                asyncio.run(client.complete(model.settings, endpoint, REQUEST))))  # fmt: skip
            call.start()
            assert arrived.wait(60)  # a holds a call, and was used before b started
            start("c")
            assert not paths["a"].exists() and paths["b"].exists() and paths["c"].exists()
            assert not dead.exists()
            assert not _gone_within(a, 0)  # retired, but its call is not finished
            release.set()
            call.join(timeout=60)
        (completion,) = replies
        assert completion is not None and completion.content == "Finished by a retired worker."
        assert _gone_within(a, 5 + 5)  # its loop looks every 5 s
        assert not _gone_within(b, 0) and not _gone_within(pids[2], 0)
    finally:
        release.set()
        for path in paths.values():
            with contextlib.suppress(OSError):
                path.unlink()  # the workers see their sockets gone and exit
        for pid in pids:
            if not _gone_within(pid, 6):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(runtime, ignore_errors=True)
