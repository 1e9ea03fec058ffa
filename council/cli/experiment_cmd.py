"""``council experiment diversity|variants``: run an experiment, then measure and report it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from council.cli.arguments import non_negative_int, positive_int, temperature
from council.cli.output import split_list


def _arms(values: list[str], personas: list[str]) -> list[Any]:
    from council.app.experiments.runner import Arm
    from council.errors import ConfigError

    arms = []
    for value in values:
        name, sep, models = value.partition("=")
        chosen = split_list(models)
        if not sep or not name or not chosen:
            raise ConfigError(f"--arms expects NAME=MODEL[,MODEL...], got '{value}'")
        arms.append(Arm(name=name, models=chosen, personas=personas))
    if len({arm.name for arm in arms}) != len(arms):
        raise ConfigError("arm names must differ")
    return arms


def _run(args: argparse.Namespace, arms: list[Any], kind: str, title: str) -> int:
    import json

    from council.app.experiments.runner import ExperimentPlan, read_questions, run_plan
    from council.app.experiments.summary import summarise, write_summary
    from council.cli.output import parse_pairs
    from council.diversity.cache import CachedEmbedder, embedder_from_name
    from council.seats.gate import parse_rate_limit

    out = Path(args.out)
    plan = ExperimentPlan(
        kind=kind, arms=arms, questions=read_questions(args.questions), samples=args.samples,
        out=out, protocol=args.protocol, max_tokens=args.max_tokens,
        temperature=args.temperature, noise_samples=args.noise_samples,
        baseline_samples=args.baseline_samples,
        endpoints=parse_pairs(args.endpoint, "--endpoint"),
    )  # fmt: skip
    counts = run_plan(
        plan,
        progress=lambda line: print(line, file=sys.stderr),
        executor="ray" if args.ray is not None else None,
        ray_address=None if args.ray in (None, "local") else args.ray,
        rate_limits=dict(parse_rate_limit(text) for text in args.rate_limit),
    )
    print(f"units run: {counts['ran']}, already done: {counts['skipped']}", file=sys.stderr)
    embedder = CachedEmbedder(embedder_from_name(args.embedder), out / "embeddings.sqlite")
    summary = summarise(out, embedder, title=title)
    write_summary(out, summary)
    from council.reports.html import write_experiment_report
    from council.reports.table import experiment_table

    write_experiment_report(summary, out / "report.html")
    from council.reports.values import clean_json

    text = json.dumps(clean_json(summary), indent=2, allow_nan=False)
    print(text if args.json else experiment_table(summary))
    print(f"report: {out / 'report.html'}", file=sys.stderr)
    return 0


def _diversity(args: argparse.Namespace) -> int:
    personas = split_list(args.personas)
    title = "Single model against cross-provider seating"
    return _run(args, _arms(args.arms, personas), "diversity", title)


def _variants(args: argparse.Namespace) -> int:
    from council.app.experiments.runner import Arm

    bases = split_list(args.pairs)
    arms = [
        Arm(name=style, models=[args.model], personas=[f"{base}-{style}" for base in bases])
        for style in ("topic", "framework")
    ]
    return _run(args, arms, "variants", "Topic-labelled against framework-grounded personas")


def register(commands: Any) -> None:
    from council.seats.local import DEFAULT_LOCAL_MODEL

    experiment = commands.add_parser(
        "experiment", help="measure what persona and model choices buy"
    )
    kinds = experiment.add_subparsers(dest="kind", required=True, metavar="KIND")
    diversity = kinds.add_parser("diversity", help="the same cards on each arm's models")
    diversity.add_argument("--personas", required=True, help="comma-separated persona names")
    diversity.add_argument(
        "--arms", nargs="+", required=True, metavar="NAME=MODEL[,MODEL...]",
        help="one model: every seat on it; several: polarity pairs on different families",
    )  # fmt: skip
    diversity.set_defaults(handler=_diversity)
    variants = kinds.add_parser("variants", help="topic-labelled against framework-grounded cards")
    variants.add_argument(
        "--pairs", required=True, help="bases with NAME-topic and NAME-framework cards"
    )
    variants.add_argument("--model", default=DEFAULT_LOCAL_MODEL)
    variants.set_defaults(handler=_variants)
    for parser in (diversity, variants):
        parser.add_argument("--questions", required=True, help="a file, one question per line")
        parser.add_argument(
            "--samples", type=positive_int, default=3, help="runs per arm and question"
        )
        parser.add_argument(
            "--out", default="experiments/latest", help="results folder (resumable)"
        )
        parser.add_argument("--protocol", default="council")
        parser.add_argument("--max-tokens", type=positive_int, default=80)
        parser.add_argument("--temperature", type=temperature, default=0.8)
        parser.add_argument("--noise-samples", type=non_negative_int, default=3)
        parser.add_argument("--baseline-samples", type=non_negative_int, default=2)
        parser.add_argument(
            "--embedder", help="sentence-transformers name or path, 'fake', or litellm:MODEL"
        )
        parser.add_argument("--endpoint", action="append", default=[], metavar="MODEL=URL")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument(
            "--ray", nargs="?", const="local", metavar="auto|ADDRESS",
            help="run units as Ray tasks: alone, a local cluster (or the one RAY_ADDRESS "
            "names); 'auto', the running cluster; or a cluster's address",
        )  # fmt: skip
        parser.add_argument(
            "--rate-limit", action="append", default=[], metavar="PROVIDER=RPM[:TPM]",
            help="requests (and tokens) per minute for one provider or model, shared by "
            "every worker; a 429's Retry-After holds them all",
        )  # fmt: skip
