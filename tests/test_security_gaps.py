"""The small gaps issue 28 found, each held by a test: a cap that is no number, a benchmark's
``--help``, and a card whose template would take the linter's memory. (Credentials in endpoint
URLs: tests/test_bounds.py::test_credentials_in_an_endpoint_url_reach_no_artifact; read-only
archives: tests/test_store.py::test_a_read_only_archive_is_listed_and_shown.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from council.base.errors import ConfigError
from council.cli.main import main
from council.seats.activations.backend import parse_cap

REPO = Path(__file__).resolve().parent.parent


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


@pytest.mark.parametrize("cap", ["nan", "NaN", "inf", "-inf", "1e999"])
def test_an_activation_cap_that_is_no_finite_number_is_refused(
    cap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match="finite number"):
        parse_cap(cap)
    argv = ["convene", "Q?", "--out", str(tmp_path), "--dry-route", f"--activation-cap={cap}"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and "finite number" in err.splitlines()[-1]
    assert parse_cap("p95") == ("percentile", 95.0) and parse_cap("-2.5") == ("ceiling", -2.5)


def test_the_chaos_benchmark_explains_itself() -> None:
    def chaos(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bench.chaos", *args],
            cwd=REPO,
            env=_child_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    helped = chaos("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m bench.chaos")
    assert "retry_after_s" in helped.stdout and helped.stderr == ""
    for wrong in (["many"], ["0"], ["5", "nan"]):
        refused = chaos(*wrong)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, wrong
        assert refused.stderr.splitlines()[-1].startswith("python -m bench.chaos: error:")


# The linter's own peak memory: VmHWM is this process's high-water mark since it started
# (ru_maxrss is not: Linux carries it over from the parent that forked it, here pytest).
LINT_AND_MEASURE = """
import json, re, sys
from pathlib import Path
from council.cli.main import main
code = main(["personas", "lint", sys.argv[1], "--lexical"])
status = Path("/proc/self/status").read_text()
peak = int(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1)) // 1024
print(json.dumps({"code": code, "peak_mb": peak}))
"""


@pytest.mark.parametrize("body", ["{{ '%999999999s' % 'x' }}", "{{ '{:>999999999}'.format('x') }}"])
def test_lint_refuses_a_memory_bomb_card_without_taking_the_memory(
    body: str, tmp_path: Path
) -> None:
    """The linter renders the card once, in the bounded worker, before it compiles anything
    itself: compiling folds the constant expression into a gigabyte string in the linter's
    own process (2.9 GB at its peak before this was fixed, with no bound at all)."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("measures the linter's peak memory in /proc (Linux)")
    (tmp_path / "attacker.md").write_text(
        f"---\nname: attacker\ndescription: d\nrole: r\n---\n{body}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", LINT_AND_MEASURE, str(tmp_path)],
        cwd=REPO,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    *findings, summary = done.stdout.strip().splitlines()
    measured = json.loads(summary)
    failed = [line for line in findings if "render-failed" in line]
    assert measured["code"] == 1 and len(failed) == 1, done.stdout + done.stderr
    assert "memory" in failed[0] or "longer than" in failed[0]
    assert measured["peak_mb"] < 400, measured  # the linter itself, not the render worker
