"""The standing security suite of ``council mcp``: a request names things in the library alone
(never a file in the folder the server was started in), every malformed JSON-RPC message gets
a JSON-RPC error (over stdio and over HTTP; a client is never left waiting), every number is
bounded, and the token is strong and never taken from the command line. The SDK's real client
talks to the real server in memory; the wire tests run ``python -m council mcp`` as a
subprocess and write raw lines and bodies to it."""

from __future__ import annotations

import asyncio
import json
import queue
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mcp = pytest.importorskip("mcp", reason="the MCP SDK (pip install 'mcp==2.3.0')")

from mcp import Client  # noqa: E402
from test_mcp_server import (  # noqa: E402
    DOUBLE,
    QUESTION,
    REPO,
    _child_env,
    _free_port,
    refusal,
    server_for,
)

from council.cli.main import main  # noqa: E402

# -- names resolve in the library, not in the server's working folder -----------------------


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The server's working folder holds a persona and a protocol a request must not reach:
    ``x.md`` beside it and ``personas/intruder.md`` / ``protocols/intruder.yaml`` under it."""
    folder = tmp_path / "cwd"
    (folder / "personas").mkdir(parents=True)
    (folder / "protocols").mkdir()
    popper = (REPO / "personas" / "high-council" / "popper.md").read_text(encoding="utf-8")
    for path in (folder / "x.md", folder / "personas" / "intruder.md"):
        path.write_text(popper.replace("name: popper", f"name: {path.stem}"), encoding="utf-8")
    shutil.copy(REPO / "protocols" / "quick.yaml", folder / "protocols" / "intruder.yaml")
    monkeypatch.chdir(folder)
    return folder


def test_persona_and_protocol_names_resolve_only_in_the_library(
    planted: Path, tmp_path: Path
) -> None:
    async def scenario() -> None:
        async with Client(server_for(tmp_path)) as client:
            for tool, args, unknown in [
                ("show_persona", {"name": "x.md"}, "unknown persona 'x.md'"),
                ("show_persona", {"name": "intruder"}, "unknown persona 'intruder'"),
                ("show_protocol", {"name": "intruder"}, "unknown protocol 'intruder'"),
                (
                    "convene",
                    {"question": QUESTION, "model": DOUBLE, "personas": ["popper", "x.md"]},
                    "unknown persona 'x.md'",
                ),
                (
                    "convene",
                    {"question": QUESTION, "model": DOUBLE, "personas": ["popper", "intruder"]},
                    "unknown persona 'intruder'",
                ),
                (
                    "convene",
                    {"question": QUESTION, "model": DOUBLE, "protocol": "intruder"},
                    "unknown protocol 'intruder'",
                ),
            ]:
                assert unknown in await refusal(client, tool, args), (tool, args)
            # The library's own names still resolve, from any working folder.
            shown = await client.call_tool("show_persona", {"name": "popper"})
            assert not shown.is_error and shown.structured_content["name"] == "popper"
            listed = await client.call_tool("list_personas", {})
            assert "intruder" not in json.dumps(listed.structured_content)

    asyncio.run(scenario())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*/"))


# -- every number is bounded -------------------------------------------------------------------


def test_every_numeric_argument_is_bounded(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Client(server_for(tmp_path)) as client:
            ask = {"question": QUESTION, "model": DOUBLE, "personas": ["popper"]}
            for _ in range(2):  # two runs in the ledger: a negative limit once listed both
                done = await client.call_tool("convene", {**ask, "protocol": "quick"})
                assert not done.is_error, done.content
            for tool, args, expected in [
                ("list_runs", {"limit": -1}, "limit: -1; this server takes 1 to 100"),
                ("list_runs", {"limit": 0}, "limit: 0"),
                ("list_runs", {"limit": 10**9}, "limit: 1000000000"),
                ("list_runs", {"question": "q" * 100_000}, "question: at most"),
                ("convene", {**ask, "max_tokens": 0}, "max_tokens: 0"),
                ("convene", {**ask, "max_tokens": -5}, "max_tokens: -5"),
                ("convene", {**ask, "temperature": 5.0}, "temperature: 5.0"),
                ("convene", {**ask, "seed": -1}, "seed: -1"),
                ("convene", {**ask, "seed": 2**40}, "seed: 1099511627776"),
            ]:
                assert expected in await refusal(client, tool, args), (tool, args)
            listed = await client.call_tool("list_runs", {"limit": 1})
            assert not listed.is_error and len(listed.structured_content["result"]) == 1

    asyncio.run(scenario())


# -- malformed JSON-RPC: always an error, never silence ------------------------------------------

INITIALIZE = {
    "jsonrpc": "2.0", "id": "init", "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "probe", "version": "0"}},
}  # fmt: skip
# (raw message, the id the error answers, its code)
MALFORMED = {
    "params as an array": ('{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}', 1, -32602),
    "a batch": ('[{"jsonrpc":"2.0","id":2,"method":"tools/list"}]', None, -32600),
    "an empty batch": ("[]", None, -32600),
    "a numeric method": ('{"jsonrpc":"2.0","id":3,"method":42}', 3, -32600),
    "not JSON": ("this is not json", None, -32700),
    "a bare number": ("7", None, -32600),
    "no jsonrpc version": ('{"id":4,"method":"tools/list"}', 4, -32600),
    "a request without an id": ('{"jsonrpc":"2.0","method":"tools/list"}', None, -32600),
    "an id that is an object": ('{"jsonrpc":"2.0","id":{},"method":"ping"}', None, -32600),
    "an id that is true": ('{"jsonrpc":"2.0","id":true,"method":"ping"}', None, -32600),
    "params as a string": ('{"jsonrpc":"2.0","id":"s","method":"ping","params":"x"}', "s", -32602),
}  # fmt: skip


class Stdio:
    """``python -m council mcp`` on stdio: raw lines in, one reply line out at a time."""

    def __init__(self, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "council", "mcp", "--out", str(cwd / "runs")],
            cwd=cwd,
            env=_child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        self.replies: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.replies.put(line)

    def ask(self, raw: str, timeout: float = 60) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(raw + "\n")
        self.process.stdin.flush()
        try:
            reply: dict[str, Any] = json.loads(self.replies.get(timeout=timeout))
        except queue.Empty:
            pytest.fail(f"no reply to {raw!r}: a client would wait forever")
        return reply

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def stdio(tmp_path: Path) -> Iterator[Stdio]:
    server = Stdio(tmp_path)
    yield server
    server.close()


def test_every_malformed_message_on_stdio_gets_a_json_rpc_error(stdio: Stdio) -> None:
    # Before initializing and after it: the gate does not depend on the session's state.
    first = stdio.ask(MALFORMED["a batch"][0])
    assert first["error"]["code"] == -32600 and first["id"] is None
    assert stdio.ask(json.dumps(INITIALIZE))["result"]["serverInfo"]
    stdio.process.stdin.write('{"jsonrpc":"2.0","method":"notifications/initialized"}\n')  # type: ignore[union-attr]
    for name, (raw, ident, code) in MALFORMED.items():
        reply = stdio.ask(raw)
        assert reply["jsonrpc"] == "2.0" and reply["id"] == ident, name
        assert reply["error"]["code"] == code and reply["error"]["message"], name
    # Still serving, and blank lines are no messages.
    reply = stdio.ask('\n{"jsonrpc":"2.0","id":"after","method":"tools/list"}')
    assert reply["id"] == "after" and "convene" in {t["name"] for t in reply["result"]["tools"]}


@pytest.fixture
def http_url(tmp_path: Path) -> Iterator[tuple[str, str]]:
    token = "mcp-probe-token-0123456789"
    (tmp_path / "token").write_text(token + "\n")
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "council",
            "mcp",
            "--http",
            "--port",
            str(port),
            "--token-file",
            str(tmp_path / "token"),
            "--out",
            str(tmp_path / "runs"),
        ],
        cwd=tmp_path,
        env=_child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(600):
            if process.poll() is not None:
                pytest.fail(process.stderr.read().decode() if process.stderr else "exited")
            try:
                urllib.request.urlopen(url, timeout=1)
            except urllib.error.HTTPError:
                break  # answering (401: no token)
            except OSError:
                threading.Event().wait(0.1)
        yield url, token
    finally:
        process.terminate()
        process.wait(timeout=30)


def _post(url: str, body: bytes, token: str) -> tuple[int, dict[str, Any]]:
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read().decode()
            if text.startswith("event:"):  # the SDK answers a request as a server-sent event
                text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
            return answer.status, json.loads(text)
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def test_every_malformed_message_over_http_gets_a_json_rpc_error(
    http_url: tuple[str, str],
) -> None:
    url, token = http_url
    for name, (raw, ident, code) in MALFORMED.items():
        status, reply = _post(url, raw.encode(), token)
        assert status == 400 and reply["id"] == ident, name
        assert reply["error"]["code"] == code, name
    status, reply = _post(url, b"\xff\xfe not utf-8", token)
    assert status == 400 and reply["error"]["code"] == -32700
    # A well-formed request still reaches the SDK, through the token.
    status, reply = _post(url, json.dumps(INITIALIZE).encode(), token)
    assert status == 200 and reply["result"]["serverInfo"]
    # A wrong token, non-ASCII too, is refused before any message is read.
    wrong = urllib.request.Request(
        url, data=b"[]", method="POST", headers={"Authorization": "Bearer " + "é" * 30}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(wrong, timeout=60)
    assert refused.value.code == 401


# -- the token ---------------------------------------------------------------------------------


def test_mcp_takes_its_token_from_the_environment_or_a_file_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from council.mcp_server import transports

    def served(*args: Any, **kwargs: Any) -> None:
        pytest.fail("council mcp started a server it should have refused")

    monkeypatch.setattr(transports, "serve_http", served)
    http = ["mcp", "--http", "--host", "0.0.0.0", "--allow-remote", "--out", str(tmp_path)]
    assert main([*http, "--token", "x" * 32]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--token is refused" in err and "COUNCIL_MCP_TOKEN" in err
    monkeypatch.setenv("COUNCIL_MCP_TOKEN", "short")
    assert main(http) == 2
    assert "has 5 characters; it needs at least 16" in capsys.readouterr().err
    monkeypatch.delenv("COUNCIL_MCP_TOKEN")
    (tmp_path / "token").write_text("ünïcödé-token-long-enough\n", encoding="utf-8")
    assert main([*http, "--token-file", str(tmp_path / "token")]) == 2
    assert "printable ASCII" in capsys.readouterr().err
    assert main([*http, "--token-file", str(tmp_path / "absent")]) == 2
    assert "--token-file" in capsys.readouterr().err
