"""The first hour, walked: every ``council`` command README.md and docs/convening.md show (in
their ``sh`` blocks and in their prose) runs as a new user would type it, in a fresh HOME and a
fresh working folder, as its own process, on the loopback fake provider instead of a paid or
bundled model. It fails on a command that exits non-zero, on a traceback anywhere in what a
command prints, and on any command whose ``--help`` fails or has an option without text.

    python build-support/newcomer.py   # each command and what it did; exit 1 on a problem

tests/test_newcomer.py runs it in the suite (and so in CI). A command a page adds that this
script cannot run as written needs a line in SUBSTITUTES saying what runs instead, and why.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PAGES = ("README.md", "docs/convening.md")
QUESTION = "Should cities ban private cars from their centres?"
FAKE_MODEL = "openai/fake"
TRACEBACK = "Traceback (most recent call last)"
PER_COMMAND_S = 300  # a hung command fails the walk rather than the suite's patience

# What runs instead of a command that cannot run here as written ([] skips it), and why.
SUBSTITUTES: dict[str, list[list[str]]] = {
    # The demo convenes on the bundled model (minutes on a CPU): here the same council on the
    # fake provider. Exit 4 (a verdict left unchecked) is a finished demo, as in the Makefile.
    "make demo": [["council", "convene", "--protocol", "full-council", QUESTION]],
    "make test": [],  # the suite itself, which runs this script
    # Installing needs the network and a build; the walk runs the checkout's own council.
    'export CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"': [],
    "pip install persona-council": [],
    # A placeholder to fill: the walk fills it, and --dry-route seats without calling (with no
    # key set, auto seats the bundled model, which this walk does not run).
    'council convene --model auto "<question>"': [
        ["council", "convene", "--model", "auto", QUESTION, "--dry-route"]
    ],
    # Placeholders to fill: a protocol written under a name, then that file validated.
    "council protocols new NAME": [["council", "protocols", "new", "my-protocol"]],
    "council protocols validate FILE": [
        ["council", "protocols", "validate", "protocols/my-protocol.yaml"]
    ],
    # Optional flags in brackets: the command bare, then with both.
    "council models [--ready] [--json]": [
        ["council", "models"],
        ["council", "models", "--ready", "--json"],
    ],
}
# Exit statuses a command may end with besides 0, by its (substituted) words.
ALSO_FINE: dict[tuple[str, ...], set[int]] = {
    ("council", "convene", "--protocol", "full-council", QUESTION): {4}
}


@dataclass
class Outcome:
    command: list[str]
    code: int
    seconds: float
    problems: list[str] = field(default_factory=list)


def page_commands(page: Path) -> list[str]:
    """Each command a page shows: the lines of its ``sh`` blocks (continuations joined,
    comments kept for shlex to drop), then its inline ``council ...`` code spans."""
    text = page.read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.split("  #")[0].strip())
    commands += re.findall(r"`(council [^`]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    return list(dict.fromkeys(commands))


def planned(command: str) -> list[list[str]]:
    """The argv lists to run for a page's command: its substitutes, or itself."""
    if command in SUBSTITUTES:
        return SUBSTITUTES[command]
    words = shlex.split(command, comments=True)
    if words[0] != "council":
        raise SystemExit(f"newcomer: '{command}' is not a council command: add it to SUBSTITUTES")
    return [words]


def on_fake_provider(words: list[str], api_base: str) -> list[str]:
    """A convene seated on the fake provider by the documented flags (a named --model is
    left to the page, which then says why it runs as it does)."""
    if words[1] != "convene" or "--model" in words:
        return words
    return [*words, "--model", FAKE_MODEL, "--endpoint", f"{FAKE_MODEL}={api_base}"]


def run(words: list[str], folder: Path, env: dict[str, str], api_base: str) -> Outcome:
    argv = on_fake_provider(words, api_base)
    stdin = None
    if "<" in argv:  # the shell's redirection: `council convene - < question.txt`
        at = argv.index("<")
        stdin, argv = (folder / argv[at + 1]).read_bytes(), argv[:at] + argv[at + 2 :]
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "council", *argv[1:]],
            cwd=folder,
            env=env,
            input=stdin,
            capture_output=True,
            timeout=PER_COMMAND_S,
        )
    except subprocess.TimeoutExpired:
        return Outcome(words, -1, PER_COMMAND_S, [f"still running after {PER_COMMAND_S} s"])
    outcome = Outcome(words, done.returncode, time.monotonic() - started)
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    if done.returncode != 0 and done.returncode not in ALSO_FINE.get(tuple(words), set()):
        last = output.strip().splitlines()[-1:] or ["(no output)"]
        outcome.problems.append(f"exit {done.returncode}: {last[0]}")
    if TRACEBACK in output:
        outcome.problems.append("a traceback:\n" + output[output.index(TRACEBACK) :][-2000:])
    return outcome


def help_problems() -> list[str]:
    """Every command whose --help cannot be rendered (a stray % in a help text is a
    traceback), and every option and argument whose --help line would have no text (one
    hidden on purpose, with argparse.SUPPRESS, is not shown at all)."""
    sys.path.insert(0, str(REPO))
    from council.cli.main import build_parser

    missing = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        try:
            parser.format_help()
        except Exception as exc:  # what a user's --help would end in
            missing.append(f"{path} --help fails: {type(exc).__name__}: {exc}")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
                name = "/".join(action.option_strings) or action.dest
                missing.append(f"{path} {name}: no help text")

    walk(build_parser(), "council")
    return missing


def reply(body: dict[str, Any]) -> str:
    """A different answer for each request (the same request, the same answer), with a vote
    line when a ballot is asked for: enough for every stage of the shipped protocols."""
    digest = hashlib.sha256(repr(body["messages"]).encode()).hexdigest()
    words = ["transit", "cost", "freedom", "safety", "trade", "trust", "evidence", "risk"]
    text = " ".join(words[int(c, 16) % len(words)] for c in digest[:12])
    asked = body["messages"][-1]["content"]
    return f"I hold that {text}." + ("\nyes | 0.7 | none" if "STANCE" in asked else "")


def environment(home: Path) -> dict[str, str]:
    """A new user's environment: a fresh HOME (so the runs home, caches and config are new),
    no provider keys and none of council's own variables, offline for downloads."""
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env |= {
        "HOME": str(home),
        "PYTHONPATH": str(REPO),  # the checkout's council, from any folder
        "HF_HUB_OFFLINE": "1",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # The warm worker's start is seconds per process on these shared CPUs; the walk is
        # about the commands, and tests/test_warm_worker.py about the worker.
        "COUNCIL_WARM_WORKER": "off",
    }
    return env


def walk(folder: Path, api_base: str, echo: bool = False) -> list[Outcome]:
    (folder / "home").mkdir(exist_ok=True)
    (folder / "question.txt").write_text(QUESTION + "\n", encoding="utf-8")
    # The README convenes on a page of the checkout (--context docs/install.md), as a newcomer
    # in a clone has it.
    (folder / "docs").mkdir(exist_ok=True)
    shutil.copy(REPO / "docs" / "install.md", folder / "docs" / "install.md")
    env = environment(folder / "home")
    outcomes = []
    for page in PAGES:
        for command in page_commands(REPO / page):
            for words in planned(command):
                outcome = run(words, folder, env, api_base)
                outcomes.append(outcome)
                if echo:
                    state = "ok" if not outcome.problems else "; ".join(outcome.problems)
                    print(f"{page}: {shlex.join(words)}  [{outcome.seconds:.1f} s] {state}")
    return outcomes


def main() -> int:
    sys.path.insert(0, str(REPO))
    from council.testing import FakeProvider

    problems = help_problems()
    with tempfile.TemporaryDirectory() as folder, FakeProvider(reply) as fake:
        outcomes = walk(Path(folder), fake.api_base, echo=True)
    problems += [f"{shlex.join(o.command)}: {p}" for o in outcomes for p in o.problems]
    for problem in problems:
        print(f"newcomer: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
