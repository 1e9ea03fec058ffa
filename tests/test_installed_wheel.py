"""council as a user installs it: an sdist built from the repository, a wheel built from that
sdist, installed (not editable) into a fresh environment and run from a folder outside the
repository. The environment inherits this one's site-packages through a ``.pth`` file, so the
dependencies are not installed again; the editable install's finder is not inherited (``.pth``
files are only run in a site folder, not in a folder that a ``.pth`` file adds)."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from council.base.distribution import DISTRIBUTION, __version__
from council.base.library_paths import LIBRARY_KINDS, PACKAGED_LIBRARY
from council.testing import FakeProvider

REPO = Path(__file__).resolve().parent.parent
# What an sdist is built from: the package, the shipped library and the build's own files.
SOURCES = (
    "council",
    "personas",
    "protocols",
    "panels",
    "routing",
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
)
BUILD = "import sys; from setuptools import build_meta; print(build_meta.build_{}(sys.argv[1]))"


def _without_pythonpath() -> dict[str, str]:
    """The environment minus PYTHONPATH, which would put this checkout before the install."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}


@dataclass(frozen=True)
class Installed:
    venv: Path
    outside: Path  # a working folder outside the repository
    wheel: Path

    def run(self, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
        env = _without_pythonpath() | {
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HF_HUB_OFFLINE": "1",
        }
        command = (
            [str(self.venv / "bin" / "python"), "-c", code]
            if code
            else [str(self.venv / "bin" / "council"), *args]
        )
        return subprocess.run(
            command, cwd=self.outside, env=env, capture_output=True, text=True, timeout=300
        )


def _build(kind: str, source: Path, out: Path) -> Path:
    done = subprocess.run(
        [sys.executable, "-c", BUILD.format(kind), str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        env=_without_pythonpath(),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("installed")
    source, dist = root / "source", root / "dist"
    dist.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=ignore)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    sdist = _build("sdist", source, dist)
    with tarfile.open(sdist) as archive:
        archive.extractall(root / "unpacked", filter="data")
    wheel = _build("wheel", next((root / "unpacked").iterdir()), dist)

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "inherited-site-packages.pth").write_text("\n".join(site.getsitepackages()))
    # --ignore-installed: the inherited folder may hold this distribution's editable install,
    # which pip would otherwise take as already satisfying the wheel.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    outside = root / "elsewhere"
    outside.mkdir()
    yield Installed(venv, outside, wheel)


def test_the_wheel_carries_the_library_and_the_licence(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert installed.wheel.name.startswith(f"{DISTRIBUTION.replace('-', '_')}-{__version__}-")
    library = {
        f"council/{PACKAGED_LIBRARY}/{path.relative_to(REPO).as_posix()}"
        for kind in LIBRARY_KINDS
        for path in (REPO / kind).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert "council/library/personas/high-council/popper.md" in library
    assert library <= names, sorted(library - names)[:5]
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_the_installed_package_reads_its_own_library(installed: Installed) -> None:
    code = "import council, council.base.library_paths as p; print(council.__file__); print(p.shipped_dir('personas'))"
    done = installed.run(code=code)
    assert done.returncode == 0, done.stderr
    package_file, personas = done.stdout.split()
    assert Path(package_file).is_relative_to(installed.venv)
    assert Path(personas).is_relative_to(installed.venv) and Path(personas).name == "personas"
    assert done.stderr == ""  # nothing else provides `council` here


def test_version_and_listings(installed: Installed) -> None:
    version = installed.run("--version")
    assert version.returncode == 0 and version.stdout.strip() == (
        f"council {__version__} ({DISTRIBUTION})"
    )
    personas = installed.run("personas", "list")
    assert personas.returncode == 0, personas.stderr
    assert {"popper", "kuhn", "meadows", "chair"} <= set(personas.stdout.split())
    protocols = installed.run("protocols", "list")
    assert protocols.returncode == 0, protocols.stderr
    assert {"council", "quick", "debate"} <= set(protocols.stdout.split())


def test_dry_route_seats_the_default_council(installed: Installed) -> None:
    done = installed.run("convene", "Should cities ban private cars?", "--dry-route")
    assert done.returncode == 0, done.stderr
    for persona in ("popper", "kuhn", "meadows", "chair"):
        assert persona in done.stdout


def test_a_real_council_on_the_fake_provider(installed: Installed) -> None:
    with FakeProvider("An installed answer.") as provider:
        done = installed.run(
            "convene",
            "Should cities ban private cars?",
            "--protocol",
            "quick",
            "--model",
            "openai/fake",
            "--endpoint",
            f"openai/fake={provider.api_base}",
            "--out",
            str(installed.outside / "runs"),
            "--json",
            "--quiet",
            "--attempts",
            "2",
        )
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads(done.stdout)
    assert run["status"] == "completed" and run["synthesis"] == "An installed answer."
    assert {turn["persona"] for turn in run["turns"]} >= {"popper", "kuhn", "meadows"}
    assert provider.request_count == len(run["turns"])


def test_another_distribution_providing_council_is_named(installed: Installed) -> None:
    other = installed.outside / "other-site"
    (other / "council" / "agents").mkdir(parents=True)
    (other / "council" / "__init__.py").write_text("")
    info = other / "council_ai-0.0.29.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: council-ai\nVersion: 0.0.29\n")
    (info / "RECORD").write_text("council/__init__.py,,\ncouncil/agents/__init__.py,,\n")
    done = installed.run(code=f"import sys; sys.path.append({str(other)!r}); import council")
    assert done.returncode == 0
    assert done.stderr.count("\n") == 1 and "council-ai 0.0.29 also installs" in done.stderr
