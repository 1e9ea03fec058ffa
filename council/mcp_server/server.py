"""The MCP server: council's tools on the official SDK's ``MCPServer``.

Tools answer JSON (structured content). A mistake in a request (an unknown persona, a field
past its limit, a URL the server does not allow) comes back as a tool error of one line; every
answer and error passes through ``council.base.secrets.redact`` on its way out, so no key from the
server's environment reaches a client.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from council.base.errors import CouncilError
from council.base.library_paths import library_only
from council.base.secrets import redact
from council.mcp_server import catalog
from council.mcp_server.convening import Convener, ConveneRequest
from council.mcp_server.requests import ServerSettings
from council.records.options import options
from council.records.spec import MCP

if TYPE_CHECKING:
    from council.seats.model import ChatModel

INSTRUCTIONS = (
    "council convenes several personas, each seated on a model, to deliberate on a question "
    "and returns the chair's verdict with the votes. Use list_personas, list_panels and "
    "list_protocols to choose; convene to ask; follow_up to ask a finished run's seats "
    "more; get_run and measure_diversity to look back."
)


def redacted(value: Any) -> Any:
    """Every string in a JSON-like value with secrets replaced."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redacted(k): redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value


@contextlib.contextmanager
def tool_errors() -> Iterator[None]:
    """A council error is the client's mistake or a run that could not finish: one line."""
    try:
        yield
    except CouncilError as exc:
        raise ToolError(redact(str(exc))) from None


def _in_library(fn: Any, *args: Any) -> Any:
    with library_only():  # names resolve in the library, never the server's working folder
        return fn(*args)


async def in_thread(fn: Any, *args: Any) -> Any:
    """Blocking work (reading cards, the ledger, embedding) off the event loop, errors as
    tool errors, answers redacted."""
    with tool_errors():
        return redacted(await anyio.to_thread.run_sync(_in_library, fn, *args))


def build_server(
    settings: ServerSettings | None = None, *, test_models: Mapping[str, ChatModel] | None = None
) -> MCPServer:
    """The server with every tool. ``test_models`` (model name -> seat double) is a test
    hook for Python callers only: a client can name those models, never supply one."""
    settings = settings or ServerSettings()
    convener = Convener(settings, dict(test_models or {}))
    server = MCPServer("council", instructions=INSTRUCTIONS, log_level="WARNING")
    _add_convene(server, convener)
    _add_catalog(server, settings)
    _add_runs(server, settings)
    return server


def _add_convene(server: MCPServer, convener: Convener) -> None:
    limits = convener.settings.limits
    description = (
        "Convene a council on a question and wait for its verdict. Name personas (see "
        "list_personas) or a panel (see list_panels; 'auto' picks one for the question), a "
        "protocol (see list_protocols; default 'council'), and the model every seat sits on "
        "('provider/model'), with per-seat overrides in 'seats' (persona or 'chair' -> "
        "model) or a pool in 'models' for routing. Sends progress notifications while it "
        "runs. Returns the verdict, the tally, absent seats and the run ID. "
        f"Limits: question {limits.question_chars} characters, "
        f"{limits.personas} personas, max_tokens {limits.max_tokens}."
    )

    async def convene(ctx: Context, **arguments: Any) -> dict[str, Any]:
        request = ConveneRequest(arguments.pop("question"), arguments)
        with tool_errors():
            return dict(redacted(await convener.convene(request, ctx.report_progress)))

    convene.__signature__ = convene_signature()  # type: ignore[attr-defined]
    server.tool(description=description)(convene)

    @server.tool(
        description="Ask a finished run's seats (its personas, models, protocol and settings) "
        "a new question: each seat is shown a short digest of that run's verdict and its own "
        "last position. 'run' is an ID, a prefix or 'latest'; allow_unfinished follows up a "
        "run that failed or was stopped. Returns what convene returns, with parent_run and "
        f"thread. Limits: question {limits.question_chars} characters."
    )
    async def follow_up(
        ctx: Context, run: str, question: str, allow_unfinished: bool = False
    ) -> dict[str, Any]:
        with tool_errors():
            answer = await convener.follow_up(
                run, question, ctx.report_progress, allow_unfinished=allow_unfinished
            )
            return dict(redacted(answer))


def convene_signature() -> inspect.Signature:
    """The convene tool's arguments: the question and every option ``CouncilSpec`` marks for
    MCP, each with its description and default; its JSON schema is generated from this.
    Types only: each bound is checked with the server's own limits and a one-line error."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    question = Annotated[str, Field(description="the question before the council")]
    params = [
        inspect.Parameter("question", keyword, annotation=question),
        inspect.Parameter("ctx", keyword, annotation=Context),
    ]
    for option in options(MCP):
        words = option.default_words()
        text = option.description + (f" (default: {words})" if words else "")
        kind: Any = Annotated[option.annotation | None, Field(description=text)]
        params.append(inspect.Parameter(option.key, keyword, default=None, annotation=kind))
    return inspect.Signature(params, return_annotation=dict[str, Any])


def _add_catalog(server: MCPServer, settings: ServerSettings) -> None:
    limits = settings.limits

    @server.tool(description="Every persona the server can seat: name and description.")
    async def list_personas() -> list[dict[str, Any]]:
        return list(await in_thread(catalog.list_personas))

    @server.tool(description="One persona's card: role, framework, questions it asks, pairs.")
    async def show_persona(name: str) -> dict[str, Any]:
        return dict(await in_thread(catalog.show_persona, name, limits))

    @server.tool(description="Named panels (sets of personas seated together) and their use.")
    async def list_panels() -> list[dict[str, Any]]:
        return list(await in_thread(catalog.list_panels))

    @server.tool(description="Every protocol: name, description and speaking stages.")
    async def list_protocols() -> list[dict[str, Any]]:
        return list(await in_thread(catalog.list_protocols))

    @server.tool(description="One protocol's stages in words and as a Mermaid flowchart.")
    async def show_protocol(name: str) -> dict[str, Any]:
        return dict(await in_thread(catalog.show_protocol, name, limits))


def _add_runs(server: MCPServer, settings: ServerSettings) -> None:
    @server.tool(
        description="Runs in the server's ledger, newest first; filter by words in the "
        "question, a persona that sat, a protocol or a status."
    )
    async def list_runs(
        question: str | None = None,
        persona: str | None = None,
        protocol: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        filters = {"question": question, "persona": persona, "protocol": protocol, "status": status}
        return list(await in_thread(catalog.list_runs, settings, filters, limit))

    @server.tool(
        description="A past run by ID, a unique prefix of it, or 'latest': its verdict, "
        "tallies, absent seats and (turns=true) what each seat said; prompts=true adds every "
        "prompt a seat was shown."
    )
    async def get_run(run: str, turns: bool = True, prompts: bool = False) -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            return catalog.run_record(catalog.fetch_run(run, settings), turns, prompts)

        return dict(await in_thread(fetch))

    @server.tool(
        description="How different the seats' answers in a past run were, per stage and "
        "round (mean pairwise distance, Vendi score), stance flips and outliers. 'run' is an "
        "ID, a prefix or 'latest'."
    )
    async def measure_diversity(run: str) -> dict[str, Any]:
        def measure() -> dict[str, Any]:
            return catalog.measure_diversity(catalog.fetch_run(run, settings), settings)

        return dict(await in_thread(measure))
