"""``council experiment diversity|variants``: run an experiment, then measure and report it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from council.cli.arguments import non_negative_int, positive_int, split_list, temperature


def _arms(values: list[str], personas: list[str], context: list[str]) -> list[Any]:
    """The arms as given, and with ``context`` each arm's twin given those documents
    (``NAME+context``): grounded against ungrounded on the same questions and seats."""
    from council.app.experiments.runner import Arm
    from council.base.errors import ConfigError

    arms = []
    for value in values:
        name, sep, models = value.partition("=")
        chosen = split_list(models)
        if not sep or not name or not chosen:
            raise ConfigError(f"--arms expects NAME=MODEL[,MODEL...], got '{value}'")
        arms.append(Arm(name=name, models=chosen, personas=personas))
        if context:
            arms.append(Arm(f"{name}+context", models=chosen, personas=personas, context=context))
    return arms


def _run(args: argparse.Namespace, experiment: Any) -> int:
    """Run, measure and print: the experiment is ``council.Experiment``'s; this parses and
    prints."""
    import json

    if args.plan:  # power before spending: nothing is called
        print(experiment.plan_report(args.pilot))
        return 0
    counts = experiment.run(progress=lambda line: print(line, file=sys.stderr))
    print(
        f"units run: {counts.ran}, already done: {counts.skipped}, failed: {counts.failed}",
        file=sys.stderr,
    )
    summary = experiment.summary()
    if args.csv:
        written = summary.write_csv(args.csv)
        print(f"tables: {len(written)} CSV files in {args.csv}", file=sys.stderr)
    text = json.dumps(summary.to_json(), indent=2, allow_nan=False)
    print(text if args.json else summary)
    print(f"report: {experiment.out / 'report.html'}", file=sys.stderr)
    return 0


def _options(args: argparse.Namespace) -> dict[str, Any]:
    from council.cli.arguments import parse_pairs
    from council.seats.gate import parse_rate_limit

    return {
        "questions": Path(args.questions),
        "samples": args.samples,
        "out": Path(args.out),
        "protocol": args.protocol,
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "placebo": not args.no_placebo,
        "effect": args.effect,
        "baseline_samples": args.baseline_samples,
        "embedder": args.embedder,
        "endpoints": parse_pairs(args.endpoint, "--endpoint"),
        "executor": "ray" if args.ray is not None else None,
        "ray_address": None if args.ray in (None, "local") else args.ray,
        "rate_limits": dict(parse_rate_limit(text) for text in args.rate_limit),
    }


def _diversity(args: argparse.Namespace) -> int:
    from council.app.experiments.experiment import Experiment

    arms = _arms(args.arms, split_list(args.personas), args.with_context)
    return _run(args, Experiment(arms, **_options(args)))


def _variants(args: argparse.Namespace) -> int:
    from council.app.experiments.experiment import Experiment

    options = _options(args)
    return _run(args, Experiment.card_variants(split_list(args.pairs), args.model, **options))


def _capping(args: argparse.Namespace) -> int:
    import json

    from council.app.experiments.capping import CappingPlan, calibration_prompts
    from council.app.experiments.capping_summary import capping_experiment, capping_lines
    from council.app.experiments.runner import read_questions
    from council.base.errors import ConfigError
    from council.records.axis import axis_path, load_axis
    from council.seats.activations.backend import require_packages
    from council.seats.local import LOCAL_PROVIDER, bundled_model

    bundled = bundled_model(args.model.replace("activations/", f"{LOCAL_PROVIDER}/", 1))
    path = Path(args.axis) if args.axis else axis_path(bundled.model_string)
    if not args.axis and not path.is_file():
        raise ConfigError(
            f"no axis stored for {bundled.model_string} ({path}): run "
            "'council axis build' first, or pass --axis FILE"
        )
    axis = load_axis(path)
    if axis.model != bundled.model_string:
        raise ConfigError(f"{path}: the axis is of {axis.model}, not {bundled.model_string}")
    require_packages()
    questions = read_questions(args.questions)
    calibration, dropped = calibration_prompts(args.calibration, questions)
    for prompt in dropped:
        print(
            f"calibration prompt left out (it nearly repeats a test question): {prompt}",
            file=sys.stderr,
        )
    plan = CappingPlan(
        model=bundled.model_string,
        axis_id=axis.axis_id,
        personas=split_list(args.personas),
        questions=questions,
        calibration=calibration,
        **_breaking(args),
        reply_tokens=args.reply_tokens,
        percentile=args.percentile,
    )

    def progress(done: int, total: int) -> None:
        print(f"\rreplies {done}/{total}", end="" if done < total else "\n", file=sys.stderr)

    summary = capping_experiment(
        plan, Path(args.out), axis=axis, embedder=args.embedder, progress=progress
    )
    print(json.dumps(summary, indent=2) if args.json else "\n".join(capping_lines(summary)))
    print(f"summary: {Path(args.out) / 'summary.json'}", file=sys.stderr)
    return 0


def _breaking(args: argparse.Namespace) -> dict[str, list[str]]:
    """The test's and the judge's persona-breaking prompts: --breaking alone is split in
    halves (the first tested, the second shown to the judge), so the two never share one."""
    from council.app.experiments.runner import read_questions
    from council.base.errors import ConfigError

    chosen: dict[str, list[str]] = {}
    if args.breaking:
        chosen["breaking"] = read_questions(args.breaking)
    if args.judge_breaking:
        chosen["judge_breaking"] = read_questions(args.judge_breaking)
    elif args.breaking:
        if len(chosen["breaking"]) < 2:
            raise ConfigError(
                "--breaking: give at least 2 prompts (half of them calibrate the "
                "judge), or the judge's own with --judge-breaking"
            )
        half = (len(chosen["breaking"]) + 1) // 2
        chosen["breaking"], chosen["judge_breaking"] = (
            chosen["breaking"][:half],
            chosen["breaking"][half:],
        )
    return chosen


def _register_capping(kinds: Any) -> None:
    from council.seats.local import DEFAULT_LOCAL_MODEL

    capping = kinds.add_parser(
        "capping",
        help="capped against free activation seats, on questions and on prompts "
        "that try to break character",
    )
    capping.add_argument(
        "--personas",
        default="socrates,taleb,meadows",
        help="comma-separated persona names (default: %(default)s)",
    )
    capping.add_argument("--questions", required=True, help="a file, one question per line")
    capping.add_argument(
        "--breaking",
        metavar="FILE",
        help="persona-breaking prompts, one a line, each with "
        "{question} (and optionally {name}); without --judge-breaking the first half is tested "
        "and the second calibrates the judge; default: examples/persona_breaking.txt's halves",
    )
    capping.add_argument(
        "--judge-breaking",
        metavar="FILE",
        help="persona-breaking prompts that only calibrate "
        "the judge (never tested; none may nearly repeat a tested one)",
    )
    capping.add_argument(
        "--model",
        default=DEFAULT_LOCAL_MODEL.replace("local/", "activations/"),
        help="a bundled model (default: %(default)s)",
    )
    capping.add_argument(
        "--axis", help="the axis file (default: the one 'council axis build' stored for the model)"
    )
    capping.add_argument(
        "--calibration",
        type=positive_int,
        default=4,
        help="calibration prompts, taken from the axis's prompts that do not "
        "nearly repeat a test question (default: %(default)s)",
    )
    capping.add_argument(
        "--reply-tokens",
        type=positive_int,
        default=48,
        help="tokens per reply (default: %(default)s)",
    )
    capping.add_argument(
        "--percentile",
        type=float,
        default=90.0,
        help="the cap, as a percentile of the persona calibration replies' "
        "per-position projections (default: %(default)s)",
    )
    capping.add_argument(
        "--out",
        default="experiments/capping",
        help="results folder, resumable (default: %(default)s)",
    )
    capping.add_argument("--embedder", help="sentence-transformers name or path, or 'fake'")
    capping.add_argument("--json", action="store_true", help="print the summary as JSON")
    capping.set_defaults(handler=_capping)


def register(commands: Any) -> None:
    from council.seats.local import DEFAULT_LOCAL_MODEL

    experiment = commands.add_parser(
        "experiment", help="measure what persona and model choices buy"
    )
    kinds = experiment.add_subparsers(dest="kind", required=True, metavar="KIND")
    diversity = kinds.add_parser("diversity", help="the same cards on each arm's models")
    diversity.add_argument("--personas", required=True, help="comma-separated persona names")
    diversity.add_argument(
        "--arms",
        nargs="+",
        required=True,
        metavar="NAME=MODEL[,MODEL...]",
        help="one model: every seat on it; several: polarity pairs on different families",
    )
    diversity.add_argument(
        "--with-context",
        nargs="+",
        default=[],
        metavar="PATH",
        help="documents (files, folders, globs): each arm also runs given them as evidence, "
        "as NAME+context, to measure whether grounding narrows diversity",
    )
    diversity.set_defaults(handler=_diversity)
    variants = kinds.add_parser("variants", help="topic-labelled against framework-grounded cards")
    variants.add_argument(
        "--pairs", required=True, help="bases with NAME-topic and NAME-framework cards"
    )
    variants.add_argument(
        "--model", default=DEFAULT_LOCAL_MODEL, help="the model every seat sits on"
    )
    variants.set_defaults(handler=_variants)
    _register_capping(kinds)
    for parser in (diversity, variants):
        _register_common(parser)


def _register_common(parser: Any) -> None:
    """The options every council experiment takes: its questions, sampling, references,
    plan and where it runs."""
    parser.add_argument("--questions", required=True, help="a file, one question per line")
    parser.add_argument("--samples", type=positive_int, default=3, help="runs per arm and question")
    parser.add_argument("--out", default="experiments/latest", help="results folder (resumable)")
    parser.add_argument("--protocol", default="council", help="protocol name or file")
    parser.add_argument(
        "--max-tokens", type=positive_int, default=80, help="every turn's token cap"
    )
    parser.add_argument(
        "--temperature", type=temperature, default=0.8, help="sampling temperature, 0 to 2"
    )
    parser.add_argument(
        "--baseline-samples",
        type=non_negative_int,
        default=8,
        help="no-persona answers per model and question (the drift pole)",
    )
    parser.add_argument(
        "--no-placebo",
        action="store_true",
        help="skip the placebo arms (one persona in every seat): no floor is measured",
    )
    parser.add_argument(
        "--embedder", help="sentence-transformers name or path, 'fake', or litellm:MODEL"
    )
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print the calls, tokens, cost and power the experiment would have, and stop",
    )
    parser.add_argument(
        "--effect",
        type=float,
        default=0.03,
        help="the difference in distance above the placebo floor the power is of",
    )
    parser.add_argument(
        "--pilot",
        metavar="DIR",
        help="a finished experiment whose variance components the power uses "
        "(default: the shipped experiment's)",
    )
    parser.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="MODEL=URL",
        help="send a model to this OpenAI-compatible base URL; repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--csv", metavar="DIR", help="also write every table as a CSV file into DIR"
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="auto|ADDRESS",
        help="run units as Ray tasks: alone, a local cluster (or the one RAY_ADDRESS "
        "names); 'auto', the running cluster; or a cluster's address",
    )
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="PROVIDER=RPM[:TPM]",
        help="requests (and tokens) per minute for one provider or model, shared by "
        "every worker; a 429's Retry-After holds them all",
    )
