"""``council eval``: arms side by side on a dataset with gold answers (``council.Eval``)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from council.cli.arguments import positive_int, split_list, temperature
from council.cli.spec_flags import add_spec_flags, spec_flags

# council.app.evaluation.DEFAULT_ARMS, said in the help without importing it (it is heavy)
DEFAULT_ARMS_TEXT = "single, vote, protocol:high-council-quick"


def _eval(args: argparse.Namespace) -> int:
    from council.app.evaluation import Eval

    given = spec_flags(args)
    model = given.get("model")
    if model == "auto":
        from council.base.errors import ConfigError

        raise ConfigError("council eval takes named models: give --model MODEL or --models")
    chosen = {"arms": args.arm} if args.arm else {}
    evaluation = Eval(
        args.dataset,
        **chosen,
        model=model,
        models=split_list(given.get("models")),
        vote_seats=args.vote_seats,
        samples=args.samples,
        limit=args.limit,
        out=args.out,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        endpoints=given.get("endpoints"),
    )
    counts = evaluation.run(progress=lambda line: print(line, file=sys.stderr))
    print(
        f"answers made: {counts.ran}, already on record: {counts.skipped}, failed: {counts.failed}",
        file=sys.stderr,
    )
    report = evaluation.summary()
    print(json.dumps(report.to_json(), indent=2, allow_nan=False) if args.json else report)
    print(f"report: {evaluation.out / 'report.html'}", file=sys.stderr)
    return 0


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "eval",
        help="does deliberation pay? arms side by side on questions with known answers",
        description="Put the same items to each arm (single: one model, one call; vote: "
        "seats answering independently, majority; protocol:NAME: a council whose vote "
        "stages take the item's options) and measure each against the gold answers.",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="FILE.jsonl",
        help="one item a line: {id, question, options, answer, category?} (default: the "
        "shipped 120-item set)",
    )
    parser.add_argument(
        "--arm",
        action="append",
        metavar="ARM",
        help=f"single, vote or protocol:NAME; repeatable (default: {DEFAULT_ARMS_TEXT})",
    )
    parser.add_argument(
        "--vote-seats", type=positive_int, default=3, help="seats in the vote arm (default 3)"
    )
    parser.add_argument(
        "--samples", type=positive_int, default=1, help="answers per item and arm (default 1)"
    )
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="the first N items, categories in turn"
    )
    parser.add_argument("--out", default="eval/latest", help="results folder (resumable)")
    parser.add_argument(
        "--max-tokens", type=positive_int, default=200, help="every call's token cap"
    )
    parser.add_argument(
        "--temperature", type=temperature, default=0.7, help="sampling temperature, 0 to 2"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_spec_flags(parser, ("model", "models", "endpoints"))
    parser.set_defaults(handler=_eval)
