"""A headless Chromium driven over the DevTools protocol: enough to load a page, run script in
it and wait for what it shows. Debian's chromium, no browser download; loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("the browser test needs chromium: apt-get install chromium")


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = 0

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.ids += 1
        await self.ws.send_json({"id": self.ids, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json(timeout=60)
            if message.get("id") == self.ids:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    async def evaluate(self, script: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=script, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'")

    async def wait_for(self, condition: str, timeout_s: float = 60) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # Evaluated in a try: while a page navigates, its document may not have a body yet.
        while not await self.evaluate(
            f"(() => {{ try {{ return Boolean({condition}); }} catch (e) {{ return false; }} }})()"
        ):
            if loop.time() > deadline:
                raise TimeoutError(f"the page never showed: {condition}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: str) -> None:
        import base64

        data = await self.send("Page.captureScreenshot", format="png")
        with open(path, "wb") as out:
            out.write(base64.b64decode(data["data"]))


@asynccontextmanager
async def browser_page(width: int = 1200, height: int = 1600) -> AsyncIterator[Page]:
    profile = tempfile.mkdtemp(prefix="council-chromium-")
    process = subprocess.Popen(
        [
            chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        port = _devtools_port(process)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as reply:
                targets = json.loads(await reply.text())
            target = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.send("Page.enable")
                yield page
    finally:
        _stop(process, profile)


def _stop(process: subprocess.Popen[str], profile: str) -> None:
    """Kill chromium with its helpers (one process group): killing the browser alone left a
    renderer writing into the profile while it was being removed (CI: 'Directory not
    empty')."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for _ in range(50):  # a helper dying may still close files for a moment
        try:
            shutil.rmtree(profile)
            return
        except OSError:
            time.sleep(0.1)
    shutil.rmtree(profile)  # the last try raises what stops it


def _devtools_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    for _ in range(200):
        line = process.stderr.readline()
        found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
        if found:
            return int(found.group(1))
        if not line and process.poll() is not None:
            break
    raise RuntimeError("chromium did not start its DevTools server")


AXE = os.path.join(os.path.dirname(__file__), "axe", "axe.min.js")


async def audit(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (vendored: tests/axe/README.md), each
    as {id, impact, help, nodes: [target selectors]}."""
    with open(AXE, encoding="utf-8") as source:
        await page.send("Runtime.evaluate", expression=source.read())
    found = await page.evaluate("""axe.run(document, {resultTypes: ['violations']}).then(r =>
        r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                nodes: v.nodes.map(n => n.target.join(' '))})))""")
    return list(found)


async def set_width(page: Page, width: int, height: int = 1000) -> None:
    """A window ``width`` CSS pixels wide (a phone's, below 500: as a mobile device)."""
    await page.send(
        "Emulation.setDeviceMetricsOverride",
        width=width,
        height=height,
        deviceScaleFactor=1,
        mobile=width < 500,
    )
