"""``CouncilSpec``: everything that defines a council, each default stated once, here.

Every way to convene reads this one model: the Python API (``Council.from_spec``), the command
line (its flags, ``council.toml`` and ``council config show`` are generated from these fields),
the web app and the MCP server (whose ``convene`` tool's input schema is generated from them,
then narrowed to each server's limits), experiments, and resume (a run records the spec it ran
with, resolved, in its ``RunConfig``).

A field's ``Public`` marker says what users call it (``key``: the flag is ``--key``, the
council.toml key, the MCP argument and the web form's input ``key``) and where they may set it
(``CLI``, ``MCP``, ``WEB``); a
field without one is set from Python only. Adding an option is adding one field here; what it
does is the code that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

CLI = "cli"  # a convene flag, a council.toml key and a line of 'council config show'
MCP = "mcp"  # an argument of the MCP convene tool: a hostile client may send it, so bound it
# An input of the web app's convene form (council.web.form): a browser may send it, so bound
# it, and never mark a field that names a file, a URL or a key.
WEB = "web"
SURFACES = (CLI, MCP, WEB)

# The levels litellm passes on as ``reasoning_effort`` (OpenAI's; litellm maps them to
# Anthropic's and Gemini's thinking budgets).
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]
REASONING_EFFORTS: tuple[str, ...] = get_args(ReasoningEffort)
ALL_SEATS = "*"  # in a seat -> value mapping: every seat not named
CHAIR_NAME = "chair"  # the chair's card and its seat (``chair`` in ``seats``)
NO_NUMBER = ConfigDict(allow_inf_nan=False)  # NaN or infinity is never a setting


def _effort(level: Any) -> Any:
    """A reasoning effort, read case-blind, or what it should have been."""
    if isinstance(level, str) and level.strip().lower() in REASONING_EFFORTS:
        return level.strip().lower()
    raise ValueError(f"'{level}' is not one of {', '.join(REASONING_EFFORTS)}")


@dataclass(frozen=True)
class Public:
    """What users call a field (``key``) and where they may set it (``on``)."""

    key: str
    on: tuple[str, ...]
    flag: str | None = None  # the flag when not --key: a repeatable --seat for ``seats``
    metavar: str | None = None
    default_text: str | None = None  # the default in words, where its value says too little
    bare: str | None = None  # a mapping's key for a value given without KEY= ("*": every seat)
    many: bool = False  # a list flag taking several values at once (--context a.md b.pdf)


def public(key: str, *on: str, **more: Any) -> Public:
    unknown = set(on) - set(SURFACES)
    assert not unknown, f"unknown surface {unknown}"
    return Public(key, on or (CLI,), **more)


@pydantic_dataclass(frozen=True, config=NO_NUMBER)
class SamplingSettings:
    temperature: Annotated[
        float,
        Field(ge=0, le=2, description="sampling temperature, 0 to 2"),
        public("temperature", CLI, MCP, WEB),
    ] = 0.7
    seed: Annotated[
        int | None,
        Field(description="sampling seed, where the provider supports one"),
        public("seed", CLI, MCP, WEB),
    ] = None
    # Every turn's token cap, replacing the protocol's (raising or lowering them); None keeps
    # the protocol's caps (``council.engine.lengths``).
    max_tokens: Annotated[
        int | None,
        Field(
            ge=1,
            description="every turn's token cap, replacing the protocol's (raises or lowers them)",
        ),
        public(
            "max_tokens",
            CLI,
            MCP,
            WEB,
            metavar="N",
            default_text="the protocol's caps, or what its word limits imply",
        ),
    ] = None


@pydantic_dataclass(frozen=True, config=NO_NUMBER)
class CallSettings:
    """How real model calls behave: per-call timeout, retry budget, streaming."""

    timeout_s: Annotated[
        float,
        Field(gt=0, description="seconds per model call"),
        public("timeout", metavar="SECONDS"),
    ] = 120.0
    max_attempts: Annotated[
        int, Field(ge=1, description="tries per call, with retries"), public("attempts")
    ] = 4
    backoff_initial_s: Annotated[float, Field(gt=0)] = 1.0
    backoff_max_s: Annotated[float, Field(gt=0)] = 30.0  # also caps a provider's Retry-After
    max_in_flight: Annotated[int, Field(ge=1)] = 16  # calls one run has open at once
    max_in_flight_per_provider: Annotated[int, Field(ge=1)] = 16  # of those, to one provider
    stream: Annotated[
        bool,
        Field(
            description="replies arrive piece by piece, shown live (off for a server that "
            "cannot stream)"
        ),
        public("stream"),
    ] = True
    # A reply cut off at its token cap is asked once to continue (council.engine.lengths).
    continue_truncated: Annotated[
        bool,
        Field(description="ask a reply cut off at its token cap to continue, once"),
        public("continue_truncated", CLI, WEB),
    ] = False
    # activations/ seats only: "p90" caps at that percentile of the axis's persona replies, a
    # number caps at that projection (the ceiling 'council experiment capping' calibrates).
    activation_cap: Annotated[
        str | None,
        Field(
            pattern=r"^\s*(p[0-9.]+|-?[0-9.eE+-]+)\s*$",
            description="activations/ seats: cap the projection on the assistant axis at the "
            "Nth percentile of the axis's persona replies (pN), or at a ceiling",
        ),
        public("activation_cap", metavar="pN|CEILING", default_text="no cap"),
    ] = None
    # When the chair fails: first the pool's model of another family, then the verdict council
    # assembles from the tally (nyk's STEP 7 fallback). Off: a failed chair fails the run.
    chair_fallback: Annotated[
        bool,
        Field(
            description="when the chair fails, try the pool's model of another family, then "
            "the verdict assembled from the tally (off: a failed chair fails the run)"
        ),
        public("chair_fallback", CLI, WEB),
    ] = True


@pydantic_dataclass(frozen=True, config=NO_NUMBER)
class Budget:
    max_tokens: Annotated[
        int | None,
        Field(ge=1, description="stop the run past this many tokens (prompt and completion)"),
        public("budget_tokens", CLI, WEB),
    ] = None
    max_usd: Annotated[
        float | None,
        Field(gt=0, description="stop the run past this cost (calls of unknown price count 0)"),
        public("budget_usd", CLI, WEB, metavar="USD"),
    ] = None
    max_wall_s: Annotated[
        float | None,
        Field(gt=0, description="stop the run past this wall time, in seconds"),
        public("budget_seconds", CLI, WEB, metavar="SECONDS"),
    ] = None
    max_calls: Annotated[
        int | None,
        Field(
            ge=1,
            description="stop the run past this many model calls (answers reused "
            "from the ledger not counted)",
        ),
        public("budget_calls", CLI, MCP, WEB, metavar="N"),
    ] = None


SUB_MODELS = (SamplingSettings, CallSettings, Budget)
DEFAULT_PANEL = ("popper", "kuhn", "meadows")


class CouncilSpec(BaseModel):
    """Everything that defines a council: who sits (panel, chair, protocol and its switches),
    on which models (routing, fallbacks, endpoints, reasoning effort), how calls behave,
    sampling, budgets and how texts are compared. Serializable: ``to_json`` and
    ``CouncilSpec.model_validate_json`` round-trip it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # -- the panel ------------------------------------------------------------------------
    personas: Annotated[
        list[str] | None,
        Field(description="persona names or card paths (comma-separated on the command line)"),
        public(
            "personas",
            CLI,
            MCP,
            metavar="P1,P2,...",
            default_text=f"{', '.join(DEFAULT_PANEL)}; a duo protocol's pair for the question",
        ),
    ] = None
    panel: Annotated[
        str | None,
        Field(description="seat a named panel, or 'auto': the panel that best fits the question"),
        public("panel", CLI, MCP, metavar="NAME|auto"),
    ] = None
    chair: Annotated[str, Field(description="the chair's persona card: a name or a path")] = (
        CHAIR_NAME
    )
    persona_dirs: Annotated[
        list[str], Field(description="more folders to look for persona cards in")
    ] = []
    protocol: Annotated[
        str,
        Field(description="protocol name or file"),
        public("protocol", CLI, MCP, metavar="NAME|FILE"),
    ] = "council"
    switches: Annotated[
        dict[str, bool],
        Field(
            description="turn a part of the protocol on or off ('council protocols show' "
            "lists its switches; 'anonymize' is in every protocol)"
        ),
        public("switches", flag="switch", metavar="NAME=on|off"),
    ] = {}
    panel_rules: Annotated[
        bool,
        Field(
            description="nyk's panel rules: no two seats share a reasoning method, and the "
            "seat whose domain the question is most plainly about votes with weight 1.5"
        ),
        public("panel_rules", CLI, WEB),
    ] = True
    weights: Annotated[
        dict[str, float],
        Field(description="seat -> vote weight (1 where absent); given, no domain seat is chosen"),
    ] = {}

    # -- models and routing ---------------------------------------------------------------
    model: Annotated[
        str | None,
        Field(
            description="default model for every seat, litellm form ('provider/model'), or "
            "'auto': seat the council across the providers whose keys are set and the model "
            "servers on loopback"
        ),
        public("model", CLI, MCP, metavar="MODEL|auto", default_text="the bundled local model"),
    ] = None
    chairman: Annotated[
        str | None,
        Field(description="the chair's model (as 'chair' in seats)"),
        public("chairman", metavar="MODEL", default_text="as model, or routed from models"),
    ] = None
    seats: Annotated[
        dict[str, str],
        Field(description="put one persona (or 'chair') on its own model"),
        public("seats", CLI, MCP, flag="seat", metavar="PERSONA=MODEL"),
    ] = {}
    endpoints: Annotated[
        dict[str, str],
        Field(
            description="send a model to an OpenAI-compatible base URL (llama.cpp, vLLM, "
            "Ollama); credentials in it are never stored"
        ),
        public("endpoints", CLI, MCP, flag="endpoint", metavar="MODEL=URL"),
    ] = {}
    api_key_envs: Annotated[
        dict[str, str],
        Field(description="model -> the variable holding its key (the name, never the value)"),
    ] = {}
    models: Annotated[
        list[str],
        Field(
            description="a pool of models: polarity pairs sit on different families, the "
            "chair on a family none of them is on (on the command line, a YAML file here "
            "is a seat-slot file)"
        ),
        public("models", CLI, MCP, metavar="M1,M2,..."),
    ] = []
    seat_slots: Annotated[
        str | None,
        Field(description="a seat-slot YAML file: members, chairman and fallback by model"),
        public("seat_slots", metavar="FILE.yaml"),
    ] = None
    fallbacks: Annotated[
        dict[str, list[str]],
        Field(description="models to try in order when a seat's own model fails for good"),
        public("fallbacks", flag="fallback", metavar="PERSONA=M1,M2"),
    ] = {}
    tiers: Annotated[
        dict[str, dict[str, str]],
        Field(description="provider -> tier -> model, for routed seats whose card names a tier"),
    ] = {}
    use_model_hints: Annotated[
        bool,
        Field(description="seat personas on their cards' model hints"),
        public("use_model_hints"),
    ] = False
    reasoning_effort: Annotated[
        dict[str, Annotated[ReasoningEffort, BeforeValidator(_effort)]],
        Field(
            description="how hard reasoning models think before answering (none, minimal, "
            "low, medium or high), for every seat or PERSONA=LEVEL (chair=LEVEL) for one"
        ),
        public(
            "reasoning_effort",
            metavar="[PERSONA=]LEVEL",
            bare=ALL_SEATS,
            default_text="the provider's",
        ),
    ] = {}
    # How gates and free-stance votes compare texts: the bundled embedder (loaded only if a
    # run needs it), or word overlap, which needs nothing and is deterministic.
    similarity: Annotated[
        Literal["embedding", "words"],
        Field(
            description="how gates and free-stance votes compare texts: embeddings, or word "
            "overlap (needs nothing, deterministic)"
        ),
        public("similarity", CLI, WEB),
    ] = "embedding"

    # Before the first call every seat's model is checked (a key variable, a server
    # answering, its files installed: council.seats.preflight); a seat that fails it fails
    # the run before anything is spent, unless the council may convene without it.
    allow_absent: Annotated[
        bool,
        Field(
            description="convene without the seats whose models fail the pre-flight (a key "
            "not set, a server not answering), recorded absent with the reason; off: the run "
            "fails before any call"
        ),
        public("allow_absent", CLI, MCP, WEB),
    ] = False

    # Documents the council reads as evidence (``council.text.documents``): each gets an id
    # (D1..), seats cite its lines ([D2:14-20]) and every citation is checked.
    context: Annotated[
        list[str],
        Field(
            max_length=64,
            description="documents the council reads as evidence: files, folders or globs "
            "(text, Markdown, code, CSV, JSON; PDF with the pdf extra); seats cite their lines "
            "as [D2:14-20] and each citation is checked",
        ),
        public("context", CLI, MCP, WEB, metavar="PATH", many=True),
    ] = []
    # Seats whose models take tools may search and read the documents themselves
    # (``council.engine.context_tools``): auto asks litellm's model map
    # (supports_function_calling), on offers them to every seat (a server the map does not
    # know), off to none. Seats without tools read the retrieved passages only.
    context_tools: Annotated[
        Literal["auto", "on", "off"],
        Field(
            description="read-only tools search_context and read_context for seats whose "
            "models take tools: auto (as litellm's model map says), on (every seat), off"
        ),
        public("context_tools", CLI, MCP, WEB),
    ] = "auto"

    # -- calls, sampling, budgets ---------------------------------------------------------
    sampling: SamplingSettings = SamplingSettings()
    calls: CallSettings = CallSettings()
    budget: Budget = Budget()

    @field_validator("personas", "persona_dirs", "models", "context", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """A list may be written as one comma-separated string (a flag, a TOML string)."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("reasoning_effort", mode="before")
    @classmethod
    def _one_level_for_all(cls, value: Any) -> Any:
        """One level is every seat's."""
        if isinstance(value, str):
            value = {ALL_SEATS: value}
        return value

    def to_json(self) -> str:
        return self.model_dump_json()
