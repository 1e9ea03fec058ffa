"""``council mcp``: an MCP server, so coding agents (Claude Code, Cursor, ...) can convene a
council mid-task, browse personas, panels and protocols, fetch past runs and measure them.

Built on the official ``mcp`` Python SDK (2.x), which is an optional dependency: nothing here
imports it at package import, so ``import council`` and ``council --help`` never load it.
"""

from __future__ import annotations

import importlib.util

from council.base.errors import ConfigError

SDK_VERSION = "2.3.0"
INSTALL_HINT = f"council mcp needs the MCP SDK: pip install 'mcp=={SDK_VERSION}'"


def require_sdk() -> None:
    """One line saying what to install, instead of an ImportError traceback."""
    if importlib.util.find_spec("mcp") is None:
        raise ConfigError(INSTALL_HINT)
