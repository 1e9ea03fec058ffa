"""``council axis build | show | export``: the assistant axis of an open-weight model,
measured in its activations, and exported as a llama.cpp control vector."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from council.cli.arguments import positive_int


def _build(args: argparse.Namespace) -> int:
    from council.base.errors import ConfigError
    from council.cli.arguments import split_list
    from council.meter.activations.axis import DEFAULT_PERSONAS, DEFAULT_PROMPTS, build_axis
    from council.personas.library import find_persona
    from council.records.axis import axis_path
    from council.seats.activations.backend import require_packages, shared_reader
    from council.seats.local import LOCAL_PROVIDER, bundled_model

    bundled = bundled_model(args.model.replace("activations/", f"{LOCAL_PROVIDER}/", 1))
    require_packages()
    names = split_list(args.personas) if args.personas else list(DEFAULT_PERSONAS)
    if len(names) < 2 or args.prompts < 2:
        raise ConfigError("--personas and --prompts need at least 2 each (half are held out)")
    if args.prompts > len(DEFAULT_PROMPTS):
        raise ConfigError(f"--prompts: at most {len(DEFAULT_PROMPTS)} prompts are shipped")
    cards = [find_persona(name) for name in names]
    reader = shared_reader(bundled.name)
    print(f"loading {bundled.model_string} into PyTorch...", file=sys.stderr)
    reader.load()
    print(f"loaded in {reader.load_seconds:.1f} s", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        print(f"\rreplies {done}/{total}", end="" if done < total else "\n", file=sys.stderr)

    axis = build_axis(
        reader,
        cards,
        prompts=DEFAULT_PROMPTS[: args.prompts],
        layer=args.layer,
        reply_tokens=args.reply_tokens,
        progress=progress,
    )
    path = axis.save(Path(args.out) if args.out else axis_path(bundled.model_string))
    print(_summary(axis))
    print(f"axis: {path}", file=sys.stderr)
    return 0


def _held_out(auc: dict[str, Any]) -> str:
    """What the held-out AUC rests on, where the axis recorded it."""
    held = auc.get("held_out")
    if not held:
        return ""
    return (
        f"; held out: {held['assistant']} assistant replies (system prompts "
        f"{held['assistant_systems']}) against {held['persona']} persona replies "
        f"({', '.join(held['personas'])}), prompts {held['prompts']}"
    )


def _summary(axis: Any) -> str:
    auc = axis.held_out_auc
    sides = {"assistant": 0, "persona": 0}
    for sample in axis.samples:
        sides[sample.side] += 1
    best = max(axis.layer_auc.items(), key=lambda kv: kv[1]) if axis.layer_auc else None
    lines = [
        f"assistant axis {axis.axis_id}: {axis.model} (sha256 {axis.model_sha256[:12]}...), "
        f"layer {axis.layer} of {axis.num_layers}, width {axis.hidden_size}",
        f"samples: {sides['assistant']} assistant, {sides['persona']} persona replies "
        f"({len(axis.prompts)} prompts, {len(axis.personas)} personas, "
        f"{axis.reply_tokens} reply tokens); built in {axis.build_seconds} s",
        f"held-out AUC {auc['estimate']:.3f}, 95% [{auc['low']}, {auc['high']}] ({auc['method']})"
        + _held_out(auc),
        f"mean projection: assistant {axis.assistant_projection:.3f}, "
        f"persona {axis.persona_projection:.3f}",
    ]
    if best is not None:
        lines.append(
            f"best held-out layer: {best[0]} (AUC {best[1]:.3f}; chosen after the fact, "
            "so optimistic)"
        )
    by_speaker: dict[str, list[float]] = {}
    for sample in axis.samples:
        by_speaker.setdefault(sample.speaker, []).append(sample.projection)
    means = "  ".join(f"{name} {sum(v) / len(v):+.2f}" for name, v in by_speaker.items())
    lines.append(
        f"mean projection by speaker (assistant#{len(axis.assistant_systems) - 1} is "
        f"the card-length plain prompt): {means}"
    )
    for vector in axis.persona_vectors:
        held = vector.held_out_per_side
        scored = f"{held} held out a side" if held else "half held out"
        lines.append(
            f"persona vector {vector.pair[0]} vs {vector.pair[1]}: held-out AUC "
            f"{vector.held_out_auc:.3f}, cosine with the axis {vector.axis_cosine:+.3f} "
            f"({vector.samples} replies, {scored})"
        )
    chart = "  ".join(f"{layer}:{value:.2f}" for layer, value in sorted(axis.layer_auc.items()))
    lines.append(f"held-out AUC by layer: {chart}")
    return "\n".join(lines)


def _show(args: argparse.Namespace) -> int:
    from council.base.errors import ConfigError
    from council.records.axis import axis_path, load_axis

    path = Path(args.path) if args.path else axis_path(args.model)
    if not path.is_file():
        raise ConfigError(f"no axis at {path}: run 'council axis build --model {args.model}'")
    axis = load_axis(path)
    if args.json:
        print(axis.model_dump_json(indent=1, exclude={"direction", "origin"}))
        return 0
    print(_summary(axis))
    for sample in sorted(axis.samples, key=lambda s: s.projection):
        mark = "*" if sample.held_out else " "
        print(
            f"{sample.projection:>8.3f} {mark} {sample.side:<9} {sample.speaker:<14} "
            f"{sample.reply[:60]!r}"
        )
    print("(* held out when the AUC was measured)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from council.base.errors import ConfigError
    from council.meter.activations.control_vector import llama_cpp_layer, write_control_vector
    from council.records.axis import axis_path, load_axis

    path = Path(args.path) if args.path else axis_path(args.model)
    if not path.is_file():
        raise ConfigError(f"no axis at {path}: run 'council axis build --model {args.model}'")
    axis = load_axis(path)
    written = write_control_vector(axis, Path(args.control_vector), strength=args.strength)
    layer = llama_cpp_layer(axis)
    print(
        f"control vector: {written} (axis {axis.axis_id}, llama.cpp layer {layer}, "
        f"{args.strength:g} toward the persona side)"
    )
    print(
        f"use: llama-server -m MODEL.gguf --control-vector-scaled {written} 1.0 "
        f"--control-vector-layer-range {layer} {layer}"
    )
    return 0


def register(commands: Any) -> None:
    axis = commands.add_parser(
        "axis",
        help="the assistant axis of an open-weight model, measured in its activations",
        description="Build (by contrast of mean activations: default assistant minus the "
        "shipped personas) or show the assistant axis of a bundled model. Needs the "
        "persona-council[activations] extra.",
    )
    actions = axis.add_subparsers(dest="axis_command", required=True, metavar="ACTION")
    build = actions.add_parser("build", help="build and store the axis (held-out AUC reported)")
    build.add_argument("--model", default="local/smollm2-135m-instruct", help="a bundled model")
    build.add_argument("--layer", type=int, help="residual layer (default: the middle one)")
    build.add_argument("--personas", help="comma-separated shipped personas (default: six)")
    build.add_argument("--prompts", type=positive_int, default=6, help="prompts (default 6)")
    build.add_argument("--reply-tokens", type=positive_int, default=16, help="(default 16)")
    build.add_argument("--out", help="axis file (default: the axis cache, $COUNCIL_AXIS_DIR)")
    build.set_defaults(handler=_build)
    show = actions.add_parser("show", help="a stored axis: provenance, AUC, every sample")
    show.add_argument("--model", default="local/smollm2-135m-instruct", help="a bundled model")
    show.add_argument("--path", help="an axis file (default: the model's in the axis cache)")
    show.add_argument("--json", action="store_true", help="the axis as JSON (no vectors)")
    show.set_defaults(handler=_show)
    export = actions.add_parser(
        "export", help="the axis as a llama.cpp control vector (steering toward the persona)"
    )
    export.add_argument("--control-vector", required=True, metavar="FILE", help="GGUF to write")
    export.add_argument(
        "--strength",
        type=float,
        default=8.0,
        help="how far to push along the axis (default: %(default)s)",
    )
    export.add_argument("--model", default="local/smollm2-135m-instruct", help="a bundled model")
    export.add_argument("--path", help="an axis file (default: the model's in the axis cache)")
    export.set_defaults(handler=_export)
