"""``council mcp``: the SDK's real client against the real server, in memory, over a stdio
subprocess (``python -m council mcp``) and over streamable HTTP on 127.0.0.1. Councils convene
on test doubles: seat doubles the Python test hands the server, or the fault-injecting
``FakeProvider`` reached through an endpoint the server was started allowing."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

mcp = pytest.importorskip("mcp", reason="the MCP SDK (pip install 'mcp==2.3.0')")

from mcp import Client, StdioServerParameters  # noqa: E402

from council.base.errors import ConfigError  # noqa: E402
from council.mcp_server.requests import Limits, ServerSettings  # noqa: E402
from council.mcp_server.server import build_server  # noqa: E402
from council.mcp_server.transports import check_bind  # noqa: E402
from council.seats import ModelRequest  # noqa: E402
from council.testing import FakeProvider, FunctionModel, well_formed_reply  # noqa: E402
from council.testing.fake_provider import Reply  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
QUESTION = "Should cities ban private cars from their centres?"
DOUBLE = "test/well-formed"
MEASURED = "test/measured"  # replies long enough for the meter (MIN_REPLY_CHARACTERS)


def measured_reply(request: ModelRequest) -> str:
    return f"A reply long enough for the meter to measure. {well_formed_reply(request)}"


def server_for(tmp_path: Path, **settings: Any) -> Any:
    """A server whose runs go under tmp_path, with a well-formed seat double named DOUBLE
    (and MEASURED, the same with replies the meter measures)."""
    return build_server(
        ServerSettings(runs_dir=tmp_path / "runs", embedder="fake", **settings),
        test_models={
            DOUBLE: FunctionModel(well_formed_reply, model=DOUBLE),
            MEASURED: FunctionModel(measured_reply, model=MEASURED),
        },
    )


async def call(client: Client, tool: str, args: dict[str, Any] | None = None) -> Any:
    result = await client.call_tool(tool, args or {})
    assert not result.is_error, result.content
    return result.structured_content


async def refusal(client: Client, tool: str, args: dict[str, Any]) -> str:
    """The one-line tool error a request gets (and the server keeps serving)."""
    result = await client.call_tool(tool, args)
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text and "Traceback" not in text
    return text


def test_import_council_and_help_do_not_load_the_sdk() -> None:
    code = (
        "import sys, council, council.cli.main as m; m.build_parser(); "
        "print(sorted(n for n in sys.modules if n == 'mcp' or n.startswith('mcp.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_without_the_sdk_the_command_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from council.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *rest: None if name == "mcp" else real(name, *rest),
    )
    assert main(["mcp"]) == 2
    assert capsys.readouterr().err == (
        "council: error: council mcp needs the MCP SDK: pip install 'mcp==2.3.0'\n"
    )


def test_convene_in_memory_sends_progress_and_answers_the_verdict(tmp_path: Path) -> None:
    async def scenario() -> None:
        notes: list[tuple[float, str | None]] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            notes.append((done, message))

        async with Client(server_for(tmp_path)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == {
                "convene",
                "follow_up",
                "list_personas",
                "show_persona",
                "list_panels",
                "list_protocols",
                "show_protocol",
                "list_runs",
                "get_run",
                "measure_diversity",
            }
            result = await client.call_tool(
                "convene",
                {
                    "question": QUESTION,
                    "personas": ["popper", "kuhn", "meadows"],
                    "protocol": "debate",
                    "model": DOUBLE,
                },
                progress_callback=progress,
            )
            assert not result.is_error, result.content
            run = result.structured_content
            assert run is not None
            assert run["status"] == "completed" and run["absent"] == []
            assert run["verdict"].startswith("chair in")
            assert run["tally"]["kind"] == "vote" and run["tally"]["winner"]
            assert [s["seat"] for s in run["seats"]] == ["popper", "kuhn", "meadows", "chair"]

            # One notification per event worth a line, numbered upwards, from start to finish.
            assert [done for done, _ in notes] == list(range(1, len(notes) + 1))
            lines = [message or "" for _, message in notes]
            assert lines[0].startswith(f"run {run['run_id']} started (debate)")
            assert any(line.startswith("answer · kuhn: ok") for line in lines)
            assert any(line.startswith("revise r2 · meadows: ok") for line in lines)
            assert any(" leads (" in line for line in lines)  # the vote's tally
            assert lines[-1] == "run completed"

            # The same run, fetched back by a prefix of its ID and as 'latest'.
            fetched = await call(client, "get_run", {"run": run["run_id"][:15]})
            latest = await call(client, "get_run", {"run": "latest", "turns": False})
            assert fetched["run_id"] == latest["run_id"] == run["run_id"]
            assert fetched["verdict"] == run["verdict"] and "transcript" not in latest
            said = {(t["stage"], t["seat"]) for t in fetched["transcript"]}
            assert ("answer", "popper") in said and ("result", "chair") in said
            listed = (await call(client, "list_runs", {"persona": "kuhn"}))["result"]
            assert [r["run_id"] for r in listed] == [run["run_id"]]

    asyncio.run(scenario())


def test_catalog_tools_list_and_show(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Client(server_for(tmp_path)) as client:
            personas = (await call(client, "list_personas"))["result"]
            assert {"popper", "kuhn", "meadows"} <= {p["name"] for p in personas}
            popper = await call(client, "show_persona", {"name": "popper"})
            assert popper["name"] == "popper" and popper["description"]
            panels = (await call(client, "list_panels"))["result"]
            assert panels and all(p["members"] for p in panels)
            protocols = (await call(client, "list_protocols"))["result"]
            assert {"council", "debate", "quick"} <= {p["name"] for p in protocols}
            debate = await call(client, "show_protocol", {"name": "debate"})
            assert debate["mermaid"].startswith("flowchart") and "final_vote" in debate["stages"]
            # No file path of the server's machine is shown back.
            shown = json.dumps([personas, popper, panels, protocols, debate])
            assert str(REPO) not in shown

    asyncio.run(scenario())


def test_measure_diversity_of_a_past_run(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Client(server_for(tmp_path)) as client:
            run = await call(
                client,
                "convene",
                {"question": QUESTION, "model": MEASURED, "personas": ["popper", "kuhn"]},
            )
            report = await call(client, "measure_diversity", {"run": "latest"})
            assert report["run_id"] == run["run_id"] and report["embedder"] == "fake-64"
            opening = next(s for s in report["stages"] if s["stage"] == "opening")
            assert opening["seats"] == 2 and opening["vendi_score"] >= 1.0
            assert await refusal(client, "measure_diversity", {"run": "nope"})

    asyncio.run(scenario())


def test_convene_seats_a_named_panel(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Client(server_for(tmp_path)) as client:
            panel = (await call(client, "list_panels"))["result"][0]
            run = await call(
                client,
                "convene",
                {
                    "question": QUESTION,
                    "panel": panel["name"],
                    "protocol": "quick",
                    "model": DOUBLE,
                },
            )
            panel_seats = [s["persona"] for s in run["seats"] if s["role"] == "panel"]
            assert panel_seats == panel["members"]
            assert any(f"panel '{panel['name']}'" in note for note in run["choice_notes"])
            assert "personas or a panel, not both" in await refusal(
                client,
                "convene",
                {"question": QUESTION, "panel": panel["name"], "personas": ["popper"]},
            )

    asyncio.run(scenario())


def test_requests_name_things_never_paths_or_urls(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Client(server_for(tmp_path)) as client:
            for tool, args in [
                ("show_persona", {"name": "../../etc/passwd"}),
                ("show_protocol", {"name": "/etc/council.yaml"}),
                ("get_run", {"run": "../runs"}),
                ("convene", {"question": QUESTION, "personas": ["personas/popper.md"]}),
                ("convene", {"question": QUESTION, "protocol": "../protocols/x.yaml"}),
            ]:
                assert "not a name" in await refusal(client, tool, args)
            text = await refusal(
                client,
                "convene",
                {
                    "question": QUESTION,
                    "model": DOUBLE,
                    "endpoints": {"openai/x": "http://10.0.0.1"},
                },
            )
            assert "does not let a request point seats at URLs" in text
            text = await refusal(
                client, "convene", {"question": QUESTION, "model": "openai/http://10.0.0.1/v1"}
            )
            assert "not a model string" in text
            assert "unknown persona 'nobody'" in await refusal(
                client, "convene", {"question": QUESTION, "personas": ["nobody"]}
            )

    asyncio.run(scenario())


def test_request_sizes_are_bounded(tmp_path: Path) -> None:
    limits = Limits(question_chars=200, personas=3)

    async def scenario() -> None:
        async with Client(server_for(tmp_path, limits=limits)) as client:
            text = await refusal(client, "convene", {"question": "why? " * 100, "model": DOUBLE})
            assert "question: 500 characters; this server takes at most 200" in text
            too_many = ["popper", "kuhn", "meadows", "ostrom"]
            text = await refusal(client, "convene", {"question": QUESTION, "personas": too_many})
            assert "personas: 4 given; this server takes at most 3" in text
            text = await refusal(
                client, "convene", {"question": QUESTION, "model": DOUBLE, "max_tokens": 10**6}
            )
            assert "max_tokens" in text
            assert "empty" in await refusal(client, "convene", {"question": "  "})
            # Still serving after every refusal.
            run = await call(
                client,
                "convene",
                {"question": QUESTION, "model": DOUBLE, "personas": ["popper", "kuhn"]},
            )
            assert run["status"] == "completed"

    asyncio.run(scenario())


def test_concurrent_convenes_are_capped(tmp_path: Path) -> None:
    """With two slots, two councils convene and a third is refused at once as busy."""

    async def scenario() -> None:
        release = asyncio.Event()

        async def held(request: Any) -> str:
            await release.wait()
            return well_formed_reply(request)

        server = build_server(
            ServerSettings(runs_dir=tmp_path / "runs", max_concurrent=2),
            test_models={
                "test/held": FunctionModel(held, model="test/held"),
                DOUBLE: FunctionModel(well_formed_reply, model=DOUBLE),
            },
        )
        ask = {"question": QUESTION, "personas": ["popper", "kuhn"], "protocol": "quick"}
        async with Client(server) as client:
            started: list[str] = []

            async def note(done: float, total: float | None, message: str | None) -> None:
                started.append(message or "")

            held_runs = [
                asyncio.create_task(
                    client.call_tool(
                        "convene", {**ask, "model": "test/held"}, progress_callback=note
                    )
                )
                for _ in range(2)
            ]
            while sum(line.startswith("run ") for line in started) < 2:
                await asyncio.sleep(0.01)
            text = await refusal(client, "convene", {**ask, "model": DOUBLE})
            assert text.endswith(
                "busy: 2 council(s) already convening, the most this server "
                "runs at once; ask again when one has finished"
            )
            release.set()
            for result in await asyncio.gather(*held_runs):
                assert not result.is_error and result.structured_content["status"] == "completed"
            # A slot is free again.
            assert (await call(client, "convene", {**ask, "model": DOUBLE}))["status"]

    asyncio.run(scenario())


def test_answers_never_carry_the_servers_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-council-test-0123456789abcdef"
    monkeypatch.setenv("COUNCIL_TEST_API_KEY", secret)

    async def scenario() -> None:
        async with Client(server_for(tmp_path)) as client:
            run = await call(
                client,
                "convene",
                {
                    "question": f"Is {secret} a good key?",
                    "model": DOUBLE,
                    "personas": ["popper"],
                    "protocol": "quick",
                },
            )
            fetched = await call(client, "get_run", {"run": "latest", "prompts": True})
            listed = await call(client, "list_runs")
            error = await refusal(client, "show_persona", {"name": secret})
            everything = json.dumps([run, fetched, listed, error])
            assert secret not in everything and "[redacted]" in everything

    asyncio.run(scenario())


def test_non_loopback_binds_need_a_flag_and_a_token() -> None:
    check_bind("127.0.0.1", False, None)
    check_bind("::1", False, None)
    with pytest.raises(ConfigError, match="not loopback: add --allow-remote"):
        check_bind("0.0.0.0", False, "x" * 32)
    with pytest.raises(ConfigError, match="needs a token of at least 16 characters"):
        check_bind("0.0.0.0", True, None)
    check_bind("0.0.0.0", True, "x" * 32)
    out = subprocess.run(
        [sys.executable, "-m", "council", "mcp", "--http", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_child_env(),
        timeout=60,
    )
    assert out.returncode == 2 and out.stderr.startswith("council: error: --host 0.0.0.0 is not")


# -- over the wire: a subprocess on stdio, and one on streamable HTTP --------------------------


@pytest.fixture
def provider_reply() -> Reply:
    return lambda body: f"Answer with {len(body['messages'])} messages."


def _child_env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "HOME", "COUNCIL_RUNS", "LITELLM_LOCAL_MODEL_COST_MAP", "HF_HUB_OFFLINE")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def _convene_on(provider: FakeProvider) -> dict[str, Any]:
    return {
        "question": QUESTION,
        "personas": ["popper", "kuhn"],
        "protocol": "quick",
        "model": "openai/fake",
        "endpoints": {"openai/fake": provider.api_base},
    }


async def _convene_with_progress(client: Client, args: dict[str, Any]) -> tuple[Any, list[str]]:
    lines: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        lines.append(message or "")

    result = await client.call_tool("convene", args, progress_callback=progress)
    assert not result.is_error, result.content
    return result.structured_content, lines


def test_stdio_subprocess_convenes_on_the_fake_provider(
    tmp_path: Path, provider: FakeProvider
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "council", "mcp", "--allow-endpoints", "--out", str(tmp_path / "runs")],
        env=_child_env(),
        cwd=str(REPO),
    )

    async def scenario() -> None:
        async with Client(params) as client:
            assert "convene" in {t.name for t in (await client.list_tools()).tools}
            run, lines = await _convene_with_progress(client, _convene_on(provider))
            assert run["status"] == "completed" and run["verdict"].startswith("Answer with")
            assert lines[0].startswith("run ") and lines[-1] == "run completed"
            assert any(line.startswith("opening · popper: ok") for line in lines)
            assert provider.request_count == 3  # two openings and the chair's synthesis

    asyncio.run(scenario())
    assert (tmp_path / "runs" / "ledger.sqlite").is_file()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``council mcp --http`` on a free loopback port, with a token; yields (url, token)."""
    token = "test-token-0123456789abcdef"
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
            "--allow-endpoints",
            "--out",
            str(tmp_path / "runs"),
        ],
        cwd=REPO,
        env=_child_env(COUNCIL_MCP_TOKEN=token),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield f"http://127.0.0.1:{port}/mcp", token
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_streamable_http_convenes_with_the_token(
    http_server: tuple[str, str], provider: FakeProvider
) -> None:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    url, token = http_server
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=10)
    assert refused.value.code == 401

    async def scenario() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            run, lines = await _convene_with_progress(client, _convene_on(provider))
            assert run["status"] == "completed" and run["verdict"].startswith("Answer with")
            assert lines[-1] == "run completed" and len(lines) >= 5
            fetched = await call(client, "get_run", {"run": run["run_id"]})
            assert fetched["verdict"] == run["verdict"]

    asyncio.run(scenario())


@pytest.mark.local_model
def test_convene_on_the_bundled_model(tmp_path: Path) -> None:
    """A real council over MCP: the bundled SmolLM2 in every seat (the server's default)."""

    async def scenario() -> None:
        stamps: list[tuple[float, str]] = []

        async def progress(done: float, total: float | None, message: str | None) -> None:
            stamps.append((time.perf_counter(), message or ""))

        async with Client(build_server(ServerSettings(runs_dir=tmp_path))) as client:
            start = time.perf_counter()
            result = await client.call_tool(
                "convene",
                {
                    "question": QUESTION,
                    "personas": ["popper", "kuhn"],
                    "protocol": "quick",
                    "max_tokens": 48,
                    "seed": 7,
                },
                progress_callback=progress,
            )
            assert not result.is_error, result.content
            run = result.structured_content
            assert run["status"] == "completed" and run["verdict"].strip()
            assert {s["model"] for s in run["seats"]} == {"local/smollm2-135m-instruct"}
            first_turn = next(at for at, line in stamps if ": ok (" in line)
            print(
                f"\nfirst progress after {stamps[0][0] - start:.2f} s, first turn after "
                f"{first_turn - start:.2f} s; run took {time.perf_counter() - start:.2f} s; "
                f"{len(stamps)} notifications"
            )

    asyncio.run(scenario())
