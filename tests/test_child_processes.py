"""No child outlives the council that started it, whatever signal ends that council.

Each case starts a real ``council`` process, waits until it is mid-call (its children up),
sends it one signal and polls: every child must be gone within ``GONE_WITHIN_S``. SIGTERM and
SIGHUP must also end the run as Ctrl-C does (recorded as interrupted, exit 128 + signal).
The warm worker is detached by design: it must be gone within ``GONE_WITHIN_S`` of its idle
time, leaving neither socket nor lock behind. Linux only: children are found through /proc.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from council.testing import FakeProvider

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")

GONE_WITHIN_S = 5.0
SIGNALS = [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP]
IDLE_S = 1  # the warm worker's idle time in these tests
QUESTION = "Should a city ban cars from its centre?"
REPO = Path(__file__).resolve().parent.parent


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields from the state on (state, ppid, ...), or None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie holds nothing


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def left_after(pids: list[int], within_s: float) -> list[int]:
    """The processes of ``pids`` still alive after ``within_s`` seconds (polled)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def kill_all(pids: list[int]) -> None:
    """Kill what a failed case left: only the processes this test started."""
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def wait_for(condition: Callable[[], object], what: str, within_s: float = 180.0) -> None:
    """Wait for a start-up step (imports on a busy machine take a while), not a timing claim."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.1)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short private folder for worker sockets and child leases, this test's own (a Unix
    socket's path has at most 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="cs-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    yield folder
    for path in folder.rglob("*.sock"):
        path.unlink()  # a worker left by a failed case sees its socket gone and exits
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def council_env(runtime: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_RUNTIME_DIR": str(runtime),
        "COUNCIL_RUNS": str(tmp_path / "runs"),
        "COUNCIL_WARM_WORKER": "on",
        "COUNCIL_WARM_WORKER_IDLE_S": str(IDLE_S),
        "PYTHONPATH": str(REPO),
        **extra,
    }


def _hangup_as_from_a_terminal() -> None:
    # council leaves an ignored SIGHUP ignored (``nohup council ...``); a test suite itself run
    # under nohup would hand that on, so each council here starts as a terminal would start it.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def start_council(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.Popen[bytes]:
    stderr = (tmp_path / "stderr.txt").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "council", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
        preexec_fn=_hangup_as_from_a_terminal,
    )


def signalled(process: subprocess.Popen[bytes], sig: signal.Signals) -> int:
    process.send_signal(sig)
    try:
        return process.wait(timeout=60)  # the parent's own exit: not what is measured
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"council did not end on {sig.name}") from None


def kinds(pids: list[int]) -> dict[str, list[int]]:
    named = {
        "llama_cpp.server": "llama",
        "council.text.template_worker": "render",
        "council.seats.warm_server": "warm",
    }
    found: dict[str, list[int]] = {}
    for pid in pids:
        kind = next((k for m, k in named.items() if m in cmdline(pid)), "other")
        found.setdefault(kind, []).append(pid)
    return found


def assert_ended_like_ctrl_c(code: int, sig: signal.Signals, tmp_path: Path) -> None:
    stderr = (tmp_path / "stderr.txt").read_text()
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
        return
    assert code == 128 + sig, stderr
    assert f"council: interrupted ({sig.name})" in stderr, stderr
    assert "Traceback" not in stderr, stderr


def assert_files_left_clean(runtime: Path, sig: signal.Signals) -> None:
    """No worker socket or lock file is left. A parent ended cleanly removed its children's
    leases; one killed outright left them for the next council, which finds nothing to kill."""
    from council.base import processes

    left = [p.name for p in runtime.rglob("*") if p.is_file() or p.is_socket()]
    assert not [name for name in left if not name.endswith(".json")], left
    if sig != signal.SIGKILL:
        assert left == []
    assert processes.reap_stale() == []  # (the runtime fixture points this process there)
    assert not list(runtime.rglob("*.json"))


def assert_recorded_as_interrupted(runs: Path) -> None:
    from council.store.loader import load_run

    run = load_run("latest", runs)
    assert run.status == "failed" and (run.error or "").startswith("interrupted"), run.error


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_convene_leaves_no_child_whatever_signal_ends_it(
    sig: signal.Signals, runtime: Path, tmp_path: Path
) -> None:
    with FakeProvider("A slow answer.", latency_s=60.0) as fake:
        args = [
            "convene",
            QUESTION,
            "--personas",
            "popper,kuhn",
            "--protocol",
            "quick",
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={fake.api_base}",
            "--attempts",
            "1",
            "--quiet",
        ]
        process = start_council(args, council_env(runtime, tmp_path), tmp_path)
        children: list[int] = []
        try:
            wait_for(lambda: fake.request_count >= 1, "a call reaching the provider")
            children = children_of(process.pid)
            found = kinds(children)
            assert len(found.get("render", [])) == 1 and len(found.get("warm", [])) == 1, found
            code = signalled(process, sig)
            assert left_after(found["render"], GONE_WITHIN_S) == []
            assert left_after(found["warm"], IDLE_S + GONE_WITHIN_S) == []
        finally:
            kill_all([process.pid, *children])
    assert_ended_like_ctrl_c(code, sig, tmp_path)
    assert_files_left_clean(runtime, sig)
    if sig != signal.SIGKILL:
        assert_recorded_as_interrupted(tmp_path / "runs")


@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_serve_leaves_no_child_whatever_signal_ends_it(
    sig: signal.Signals, runtime: Path, tmp_path: Path
) -> None:
    with FakeProvider("A slow answer.", latency_s=60.0) as fake:
        port = _free_port()
        args = [
            "serve",
            "--port",
            str(port),
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={fake.api_base}",
        ]
        env = council_env(runtime, tmp_path, COUNCIL_WARM_WORKER="off")
        process = start_council(args, env, tmp_path)
        children: list[int] = []
        try:
            wait_for(lambda: _answers(port), "the web app answering")
            body = {"question": QUESTION, "protocol": "quick", "personas": ["popper", "kuhn"]}
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/convene",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=120) as reply:
                assert reply.status == 200
            wait_for(lambda: fake.request_count >= 1, "a call reaching the provider")
            children = children_of(process.pid)
            assert len(kinds(children).get("render", [])) == 1, kinds(children)
            code = signalled(process, sig)
            assert left_after(children, GONE_WITHIN_S) == []
        finally:
            kill_all([process.pid, *children])
    assert_ended_like_ctrl_c(code, sig, tmp_path)
    assert_files_left_clean(runtime, sig)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.local_model
@pytest.mark.parametrize("sig", SIGNALS, ids=[s.name for s in SIGNALS])
def test_the_bundled_server_dies_with_convene_whatever_signal(
    sig: signal.Signals, runtime: Path, tmp_path: Path
) -> None:
    args = [
        "convene",
        QUESTION,
        "--personas",
        "popper,kuhn",
        "--protocol",
        "quick",
        "--max-tokens",
        "8",
        "--quiet",
    ]
    env = council_env(runtime, tmp_path, COUNCIL_WARM_WORKER="off", HF_HUB_OFFLINE="1")
    process = start_council(args, env, tmp_path)
    children: list[int] = []
    try:

        def serving() -> bool:
            llama = kinds(children_of(process.pid)).get("llama", [])
            port = cmdline(llama[0]).split("--port ")[1].split()[0] if llama else None
            return port is not None and _answers_models(int(port))

        wait_for(serving, "the bundled model's server answering", within_s=300)
        children = children_of(process.pid)
        found = kinds(children)
        assert len(found["llama"]) == 1, found
        code = signalled(process, sig)
        assert left_after(children, GONE_WITHIN_S) == []
    finally:
        kill_all([process.pid, *children])
    assert_ended_like_ctrl_c(code, sig, tmp_path)
    assert_files_left_clean(runtime, sig)
    if sig != signal.SIGKILL:
        assert_recorded_as_interrupted(tmp_path / "runs")


def _answers_models(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
            return True
    except OSError:
        return False


# -- the mechanism, without a model: fast, so it runs in every test run ----------------------

PARENT = """
import sys, threading, time
from council.base.processes import spawn
started = []
if sys.argv[1] == "thread":  # started from a thread that ends at once: the child must not
    worker = threading.Thread(target=lambda: started.append(spawn("{module}", [])))
    worker.start()
    worker.join()
else:
    started.append(spawn("{module}", []))
print(started[0].pid, flush=True)
time.sleep(600)
"""
# A child that ignores its standard input and serves until it is stopped.
LONG_LIVED = "council.testing.fake_provider"


@pytest.mark.parametrize("where", ["main", "thread"])
def test_a_child_dies_with_a_parent_killed_outright(where: str, runtime: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT.format(module=LONG_LIVED), where],
        stdout=subprocess.PIPE,
        env=env,
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        wait_for(lambda: LONG_LIVED in cmdline(child), "the child running its module", 60)
        assert left_after([child], 1.0) == [child]  # the spawning thread's end did not kill it
        lease = runtime / f"council-{os.getuid()}" / "children" / f"{child}.json"
        assert json.loads(lease.read_text())["parent"] == parent.pid
        parent.kill()
        parent.wait()
        assert left_after([child], GONE_WITHIN_S) == []
    finally:
        kill_all([parent.pid, child])


def test_a_later_council_reaps_a_child_whose_parent_is_gone(runtime: Path) -> None:
    from council.base import processes
    from council.base.locks import private_dir

    gone = subprocess.Popen(["true"])
    gone.wait()  # a parent that has ended
    orphan = subprocess.Popen(["sleep", "600"])
    kept = subprocess.Popen(["sleep", "600"])
    reused = subprocess.Popen(["sleep", "600"])
    private = private_dir()
    assert private is not None and private.parent == runtime
    folder = private / "children"
    folder.mkdir()

    def lease(child: int, parent: int, started: str | None, parent_started: str | None) -> Path:
        path = folder / f"{child}.json"
        path.write_text(
            json.dumps(
                {
                    "pid": child,
                    "started": started,
                    "parent": parent,
                    "parent_started": parent_started,
                    "module": "m",
                }
            )
        )
        return path

    me = processes.start_time(os.getpid())
    orphaned = lease(orphan.pid, gone.pid, processes.start_time(orphan.pid), "1")
    alive_parent = lease(kept.pid, os.getpid(), processes.start_time(kept.pid), me)
    # The PID now names another process (another start time): it is not killed.
    not_it = lease(reused.pid, gone.pid, "1", "1")
    try:
        assert processes.reap_stale() == [orphan.pid]
        assert orphan.wait(timeout=GONE_WITHIN_S) == -signal.SIGKILL
        assert kept.poll() is None and reused.poll() is None
        assert not orphaned.exists() and not not_it.exists() and alive_parent.exists()
    finally:
        for process in (orphan, kept, reused):
            process.kill()
            process.wait()


# -- a bundled model's server that dies during a call ----------------------------------------


class Heard:
    def __init__(self) -> None:
        self.retries: list[str] = []

    def delta(self, text: str) -> None:
        pass

    def retrying(self, model: str, attempt: int, error: str, wait_s: float) -> None:
        self.retries.append(error)

    def falling_back(self, failed: str, fallback: str, error: str) -> None:
        raise AssertionError("no fallback was named")


async def test_a_call_cut_off_by_a_dead_local_server_is_made_again_on_the_new_one() -> None:
    import dataclasses

    from council.seats.litellm_model import LiteLLMModel
    from council.seats.model import ModelRequest

    dead = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens: a server that died
    with FakeProvider("From the restarted server.") as fake:
        endpoints = [
            {"api_base": dead, "api_key": "k"},
            {"api_base": fake.api_base, "api_key": "k"},
        ]
        resolved: list[dict[str, str]] = []

        async def resolve(_model: str) -> dict[str, str]:
            # LocalServers.api_base: the first call finds the server up, the next one finds
            # it dead and starts another (on another port).
            resolved.append(endpoints[min(len(resolved), 1)])
            return resolved[-1]

        model = LiteLLMModel(
            "openai/local",
            resolve_endpoint=resolve,
            max_attempts=2,
            backoff_initial_s=0.01,
            runs_on_this_machine=True,
        )
        heard = Heard()
        request = ModelRequest(
            stage="s",
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=20,
            temperature=0.0,
            listener=heard,
        )
        completion = await model.complete(request)
        assert fake.request_count == 1
    assert completion.content == "From the restarted server."
    assert completion.attempts == 3  # two on the dead server, one on the new one
    assert heard.retries[-1].endswith("(server restarted)")
    # A hosted model is not "restarted": its failure stands, and nothing is resolved again.
    from council.base.errors import ModelCallError

    hosted = LiteLLMModel("openai/hosted", resolve_endpoint=resolve, max_attempts=1, priced=False)
    resolved.clear()
    with pytest.raises(ModelCallError):
        await hosted.complete(dataclasses.replace(request, listener=Heard()))
    assert len(resolved) == 1
