"""What the server shows: personas, panels and protocols on its search paths, runs in its
ledger, and a run's diversity. Every argument is a name (checked by ``requests``), never a path,
and no file path of the server's machine is shown back. The server calls these inside
``paths.library_only``: the folder it was started in is not searched."""

from __future__ import annotations

from typing import Any

from council.base.errors import ConfigError
from council.base.runs_home import runs_location
from council.mcp_server.convening import run_summary
from council.mcp_server.requests import (
    Limits,
    ServerSettings,
    check_name,
    check_range,
    library_entry,
)
from council.records.run import RunResult


def list_personas() -> list[dict[str, Any]]:
    from council.personas.library import available_personas, load_cards

    cards, _ = load_cards(available_personas().values(), skip_invalid=True)
    return [{"name": c.name, "description": c.fields.description} for c in cards]


def show_persona(name: str, limits: Limits) -> dict[str, Any]:
    from council.personas.card import load_card
    from council.personas.library import available_personas

    card = load_card(library_entry(name, "persona", available_personas(), limits))
    return card.fields.model_dump(mode="json")


def list_panels() -> list[dict[str, Any]]:
    from council.personas.library import available_personas, load_cards
    from council.personas.panels import available_panels

    cards, _ = load_cards(available_personas().values(), skip_invalid=True)
    return [
        {"name": p.name, "members": p.members, "about": p.about}
        for p in available_panels(cards).values()
    ]


def list_protocols() -> list[dict[str, Any]]:
    from council.protocols.graph import load_protocol_file
    from council.protocols.library import available_protocols

    rows = []
    for path in available_protocols().values():
        protocol = load_protocol_file(path)
        rows.append(
            {
                "name": protocol.name,
                "description": protocol.spec.description,
                "origin": protocol.spec.origin,
                "stages": [stage.id for stage in protocol.speaking_stages()],
            }
        )
    return rows


def show_protocol(name: str, limits: Limits) -> dict[str, Any]:
    from council.protocols.diagram import describe, mermaid
    from council.protocols.graph import load_protocol_file
    from council.protocols.library import available_protocols

    protocol = load_protocol_file(library_entry(name, "protocol", available_protocols(), limits))
    return {
        "name": protocol.name,
        "description": protocol.spec.description,
        "stages": [stage.id for stage in protocol.speaking_stages()],
        # The outline names the protocol's file: a path on the server's machine stays there.
        "outline": "\n".join(
            line for line in describe(protocol).splitlines() if not line.startswith("file: ")
        ),
        "mermaid": mermaid(protocol),
    }


def list_runs(settings: ServerSettings, filters: dict[str, Any], limit: int) -> list[dict]:
    """The ledger's runs, newest first, filtered as ``council runs list`` filters them."""
    import json

    from council.store.loader import find_runs
    from council.store.query import RunQuery

    check_range(limit, "limit", 1, settings.limits.runs_listed)
    for key, value in filters.items():
        most = settings.limits.question_chars if key == "question" else settings.limits.name_chars
        if value is not None and len(value) > most:
            raise ConfigError(f"{key}: at most {most} characters")
    query = RunQuery(**filters, limit=limit)
    return [
        {
            "run_id": r["run_id"],
            "question": r["question"],
            "status": r["status"],
            "protocol": r["protocol"],
            "started_at": r["started_at"],
            "finished_at": r["finished_at"],
            "seats": {seat: s["model"] for seat, s in json.loads(r["seats"]).items()},
        }
        for r in find_runs(query, runs_location(settings.runs_dir))
    ]


def fetch_run(name: str, settings: ServerSettings) -> RunResult:
    """A run in the server's ledger by ID, unique prefix or ``latest``; never a folder."""
    from council.store.loader import load_run

    check_name(name, "run", settings.limits)
    return load_run(name, runs_location(settings.runs_dir))


def run_record(run: RunResult, turns: bool, prompts: bool) -> dict[str, Any]:
    """A run's summary, with what each seat said (and, if asked, every prompt it was shown)."""
    record = run_summary(run)
    if turns:
        record["transcript"] = [
            {
                "stage": t.stage,
                "round": t.round,
                "seat": t.seat,
                "persona": t.persona,
                "model": t.model,
                "content": t.content,
                "error": t.error,
                "latency_s": t.latency_s,
                "completion_tokens": t.completion_tokens,
                **({"messages": t.request.messages if t.request else []} if prompts else {}),
            }
            for t in run.turns
        ]
    return record


def measure_diversity(run: RunResult, settings: ServerSettings) -> dict[str, Any]:
    """The run's diversity report. One small function on purpose: the one place that says how
    a run is measured (``council diversity``'s own path, embeddings cached beside the runs)."""
    from council.app.measure import CACHE_FILE, measure

    runs_dir = runs_location(settings.runs_dir)
    report = measure(
        run, embedder=settings.embedder, runs_dir=runs_dir, cache=runs_dir / CACHE_FILE
    )
    return report.to_json()
