"""``council audit RUN``: audit a recorded run's verdict and append the audit to the run.

Council's mechanical checks run first (no model); then an auditor model of a family other
than the chair's (the first such panel model, or ``--model``) returns typed findings. Once
per auditor model: asked again, it prints the audit the run holds. Exit status 0 when no
finding is an error, 5 when one is (``EXIT_AUDIT_ERRORS``), 2 for a usage error (a run with
no verdict, only the chair's family on offer without ``--same-family``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from council.cli.arguments import positive_int, runs_folder
from council.cli.project import runs_folder_of
from council.cli.spec_flags import add_spec_flags, spec_flags

AUDIT_MAX_TOKENS = 1200  # council.engine.audit's, stated here so --help loads no engine
# The verdict misstates the tally, drops a dealbreaker, or claims what nobody said.
EXIT_AUDIT_ERRORS = 5
RUN_HELP = "run ID, a unique prefix of it, or 'latest'"


def _audit(args: argparse.Namespace) -> int:
    from council.app.audit import audit_run
    from council.records.describe import describe_audit

    outcome = audit_run(
        args.run_id,
        runs_folder_of(args),
        model=args.model,
        same_family=args.same_family,
        endpoints=spec_flags(args).get("endpoints") or {},
        max_tokens=args.max_tokens,
    )
    audit = outcome.audit
    if args.json:
        shown = {"run_id": outcome.run_id, "new": outcome.new, **audit.to_json()}
        print(json.dumps(shown, indent=2, ensure_ascii=False))
    else:
        held = "" if outcome.new else " (recorded earlier; not asked again)"
        print(f"{outcome.run_id}{held}")
        print("\n".join(describe_audit(audit)))
    return EXIT_AUDIT_ERRORS if audit.errors else 0


def register(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="check a run's verdict against its transcript and tally (exit 5 on an error)",
    )
    audit.add_argument("run_id", help=RUN_HELP)
    audit.add_argument(
        "--model",
        metavar="MODEL",
        help="the auditor's model (default: the first panel model of a family other than "
        "the chair's)",
    )
    audit.add_argument(
        "--same-family",
        action="store_true",
        help="allow an auditor of the chair's model family when no other is on offer",
    )
    add_spec_flags(audit, ("endpoints",))  # convene's flag, from the one spec
    audit.add_argument(
        "--max-tokens",
        type=positive_int,
        default=AUDIT_MAX_TOKENS,
        help=f"cap on the auditor's reply (default {AUDIT_MAX_TOKENS})",
    )
    audit.add_argument("--json", action="store_true", help="the audit as JSON on stdout")
    audit.add_argument("--out", type=runs_folder, help="the runs folder (default: the runs home)")
    audit.set_defaults(handler=_audit)
