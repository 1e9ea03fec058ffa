"""Start-up stays light, and tests cannot reach beyond loopback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from council.testing import NetworkBlocked

HEAVY = ("litellm", "torch", "llama_cpp", "sentence_transformers", "networkx")


@pytest.mark.parametrize("statement", ["import council", "import council.cli.main"])
def test_import_does_not_load_heavy_modules(statement: str) -> None:
    code = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_exports_resolve() -> None:
    import council

    assert council.Council.__name__ == "Council"
    with pytest.raises(AttributeError):
        council.Nothing  # noqa: B018


def test_non_loopback_connections_are_refused() -> None:
    with pytest.raises(NetworkBlocked), socket.create_connection(("10.255.255.1", 80), timeout=1):
        pass
    with pytest.raises(NetworkBlocked):
        socket.getaddrinfo("example.com", 443)


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    with socket.create_connection(server.getsockname(), timeout=1):
        pass
    server.close()


def test_the_python_api_loads_no_numpy_before_a_run() -> None:
    # numpy (about 70 ms) is the meter's: the first call of a run must not wait for it, and a
    # council's effective votes import it at the first tally.
    code = "import sys, council; council.Council; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
