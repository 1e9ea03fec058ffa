"""The warm worker: a process with litellm imported that makes model calls for later processes."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from council.base.errors import ModelCallError
from council.seats import warm
from council.seats.litellm_model import LiteLLMModel
from council.seats.model import Completion, ModelRequest
from council.seats.provider_env import call_variables
from council.testing import FakeProvider

REQUEST = ModelRequest(
    stage="s", messages=[{"role": "user", "content": "hi"}], max_tokens=20, temperature=0.0
)


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


def test_tools_travel_to_the_worker_and_the_calls_they_made_come_back(
    worker_path: Path,
) -> None:
    import dataclasses

    from council.engine.context_tools import TOOL_SPECS
    from council.testing.fake_wire import FakeReply

    model = LiteLLMModel("openai/fake", max_attempts=1, priced=False)
    called = FakeReply(tool_calls=(("read_context", {"id": "D1", "lines": "1-2"}),))
    request = dataclasses.replace(REQUEST, tools=TOOL_SPECS)
    with FakeProvider(called) as fake:
        client = warm.WorkerClient(worker_path)
        completion = asyncio.run(
            client.complete(model.settings, {"api_base": fake.api_base, "api_key": "k"}, request)
        )
        sent = [tool["function"]["name"] for tool in fake.requests[0]["tools"]]
    assert sent == ["search_context", "read_context"]
    assert completion is not None
    [call] = completion.tool_calls
    assert call["name"] == "read_context" and call["arguments"] == '{"id": "D1", "lines": "1-2"}'


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


def test_one_worker_per_install_whatever_the_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "one")
    monkeypatch.setenv("COUNCIL_UNRELATED", "one")
    first = warm.fingerprint()
    monkeypatch.setenv("OPENAI_API_KEY", "two")  # keys travel with each call
    monkeypatch.setenv("COUNCIL_UNRELATED", "two")
    monkeypatch.setenv("PWD", "/elsewhere")
    assert warm.fingerprint() == first
    monkeypatch.setenv("LITELLM_LOG", "DEBUG")  # read by litellm as it is imported
    assert warm.fingerprint() != first
    monkeypatch.setenv(warm.SWITCH_ENV, "off")
    assert not warm.enabled()
    assert asyncio.run(warm.worker()) is None


def test_a_worker_starts_with_no_provider_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-the-worker")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-never-in-the-worker")
    monkeypatch.setenv("LITELLM_PROXY_API_KEY", "proxy-never-in-the-worker")
    monkeypatch.setenv("COUNCIL_UNRELATED", "x")
    monkeypatch.setenv("LITELLM_LOG", "ERROR")
    monkeypatch.setenv("PYTHONPATH", "relative/folder")
    env = warm.worker_environment()
    assert not {"OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY", "LITELLM_PROXY_API_KEY"} & set(env)
    assert "COUNCIL_UNRELATED" not in env and env["LITELLM_LOG"] == "ERROR"
    assert env[warm.SWITCH_ENV] == "off"
    assert all(Path(p).is_absolute() for p in env["PYTHONPATH"].split(os.pathsep))


def test_a_call_carries_the_variables_of_its_provider_only() -> None:
    environ = {
        "OPENAI_API_KEY": "o",
        "OPENAI_BASE_URL": "http://b",
        "ANTHROPIC_API_KEY": "a",
        "AWS_REGION_NAME": "r",
        "HOME": "/h",
        "LITELLM_LOG": "ERROR",
    }
    assert call_variables("openai/gpt-4o", environ) == {
        "OPENAI_API_KEY": "o",
        "OPENAI_BASE_URL": "http://b",
    }
    assert call_variables("bedrock/claude", environ) == {"AWS_REGION_NAME": "r"}
    # No provider named: litellm works it out, so every provider's variables travel.
    assert set(call_variables("gpt-4o", environ)) == {
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "AWS_REGION_NAME",
    }


def test_every_variable_litellm_asks_for_travels_with_the_call() -> None:
    """For every provider litellm knows, the variables its validate_environment names are
    among those a call to that provider carries: the worker, which has none, gets them."""
    from council.seats.litellm_model import import_litellm

    litellm = import_litellm()
    missed = {}
    for provider in litellm.provider_list:
        name = getattr(provider, "value", provider)
        if name in ("chatgpt", "github_copilot"):
            continue  # signed in through a browser, no variable; asking would go online
        try:
            needed = litellm.validate_environment(model=f"{name}/x").get("missing_keys") or []
        except Exception:
            continue
        carried = call_variables(f"{name}/x", {key: "set" for key in needed})
        if set(needed) - set(carried):
            missed[name] = sorted(set(needed) - set(carried))
    assert not missed


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the worker in /proc")
def test_environments_differing_in_an_unrelated_variable_share_one_worker(
    worker_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = LiteLLMModel("openai/fake", max_attempts=1, priced=False)
    with FakeProvider("Shared.") as fake:
        endpoint = {"api_base": fake.api_base, "api_key": "k"}
        for shell in ("one", "two"):
            monkeypatch.setenv("COUNCIL_UNRELATED", shell)  # another shell, another script
            path = warm.socket_path()
            assert path == worker_path and warm.find_or_start(path)
            completion = asyncio.run(
                warm.WorkerClient(path).complete(model.settings, endpoint, REQUEST)
            )
            assert completion is not None and completion.content == "Shared."
        assert fake.request_count == 2
    (alive,) = warm.live_workers()
    assert alive.socket == worker_path and alive.pid == _worker_pid(worker_path)
    assert alive.serving and alive.rss_mb and alive.rss_mb > 0


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads the worker's environ")
def test_a_key_one_environment_sends_is_not_seen_by_another_that_lacks_it(
    worker_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker holds no key of its own: a call made with a key uses it; a call from an
    environment without one is made without one (and fails as it would there), never with
    the key the worker was last sent; the key reaches no message."""
    key = "sk-only-environment-a-0123456789"
    model = LiteLLMModel("openai/fake", max_attempts=1, priced=False)
    with FakeProvider("Keyed.") as fake:
        endpoint = {"api_base": fake.api_base}  # the key comes from the environment
        client = warm.WorkerClient(worker_path)
        monkeypatch.setenv("OPENAI_API_KEY", key)
        completion = asyncio.run(client.complete(model.settings, endpoint, REQUEST))
        assert completion is not None and completion.content == "Keyed."
        assert {k.lower(): v for k, v in fake.headers[0].items()}[
            "authorization"
        ] == f"Bearer {key}"
        monkeypatch.delenv("OPENAI_API_KEY")
        with pytest.raises(ModelCallError) as caught:
            asyncio.run(client.complete(model.settings, endpoint, REQUEST))
        assert "OPENAI_API_KEY" in str(caught.value)  # missing, as it is here
        assert fake.request_count == 1  # never sent with environment a's key
        monkeypatch.setenv("OPENAI_API_KEY", key)
        fake.fail_next(401)
        with pytest.raises(ModelCallError) as refused:
            asyncio.run(client.complete(model.settings, endpoint, REQUEST))
        assert key not in str(refused.value)
    environ = Path(f"/proc/{_worker_pid(worker_path)}/environ").read_bytes()
    assert key.encode() not in environ and b"OPENAI_API_KEY" not in environ


def test_calls_with_other_variables_take_turns_and_leave_none_behind() -> None:
    from council.seats.warm_server import CallEnvironment

    environment = CallEnvironment()
    seen: list[tuple[str, str | None, int]] = []

    async def call(name: str, variables: dict[str, str]) -> None:
        async with environment.holding(variables):
            seen.append((name, os.environ.get("COUNCIL_TEST_PROVIDER_KEY"), environment.active))
            await asyncio.sleep(0.01)
            assert os.environ.get("COUNCIL_TEST_PROVIDER_KEY") == variables.get(
                "COUNCIL_TEST_PROVIDER_KEY"
            )

    async def main() -> None:
        a = {"COUNCIL_TEST_PROVIDER_KEY": "a"}
        await asyncio.gather(call("a1", a), call("a2", a), call("none", {}), call("a3", a))

    asyncio.run(main())
    # a1 and a2 run together; the call without the key waits for them, a3 for it (in order).
    assert seen == [("a1", "a", 1), ("a2", "a", 2), ("none", None, 1), ("a3", "a", 1)]
    assert "COUNCIL_TEST_PROVIDER_KEY" not in os.environ and environment.active == 0


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
    """Three installs, two workers at most: the third retires the least recently used,
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
        folder = warm.private_folder()
        assert folder is not None
        path = folder / f"worker-{name}.sock"  # another install's (it is named by a digest)
        assert warm.find_or_start(path)
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
            call = threading.Thread(
                target=lambda: replies.append(
                    asyncio.run(client.complete(model.settings, endpoint, REQUEST))
                )
            )
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


def test_the_cap_counts_workers_still_starting(tmp_path: Path) -> None:
    """Workers are counted by the locks they hold, those still importing litellm (no socket
    yet) included: the least recently used beyond the cap lose socket and lock file."""
    from council.seats.warm_server import _retire_beyond_cap

    held = []
    try:
        for age, name in enumerate(["newest", "starting", "older", "oldest"]):
            lock = tmp_path / f"worker-{name}.lock"
            handle = lock.open("a")
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a live worker's
            held.append(handle)
            when = time.time() - 10 * age
            os.utime(lock, (when, when))
            if name != "starting":
                lock.with_suffix(".sock").touch()
                os.utime(lock.with_suffix(".sock"), (when, when))
        (tmp_path / "worker-dead.sock").touch()  # no lock held: a dead worker's
        assert [w.socket.stem for w in warm.live_workers(tmp_path)] == [
            "worker-newest",
            "worker-starting",
            "worker-older",
            "worker-oldest",
        ]
        _retire_beyond_cap(tmp_path, 2)
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "worker-newest.lock",
            "worker-newest.sock",
            "worker-starting.lock",
        ]
    finally:
        for handle in held:
            handle.close()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads memory from /proc")
def test_worker_status_says_each_workers_memory_and_stop_ends_it(
    worker_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from council.cli.main import main

    assert main(["worker", "status", "--json"]) == 0
    (status,) = json.loads(capsys.readouterr().out)
    assert status["pid"] == _worker_pid(worker_path) and status["this_install"]
    assert status["serving"] and status["rss_mb"] > 0
    assert main(["worker", "stop"]) == 0
    assert _gone_within(status["pid"], 5 + 5)  # its loop looks every 5 s
    assert main(["worker", "status"]) == 0
    assert capsys.readouterr().out.endswith("no warm worker alive\n")
    worker_path.touch()  # for the fixture, which removes it
