"""Developer tasks of the neuronkit workspace. `nox -l` lists them; `nox` runs the defaults (CI).

Every session builds the packages as distributions (no editable installs), so a test sees
exactly what a user would install.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests", "integration", "wheels"]

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
# name -> (folder, extras installed for its tests)
PACKAGES: dict[str, tuple[str, str]] = {
    "common": ("shared", "[plot,weights]"),
    "snn": ("packages/snn", "[nir,hdf5]"),
    "pruning": ("packages/pruning", "[onnx,flwr,transformers]"),
    "interpretability": ("packages/interpretability", "[transformers]"),
    **{
        name: (f"packages/{name}", "")
        for name in (
            "neurodecoding",
            "medimaging",
            "theory",
            "hardware",
        )
    },
}
TEST_TOOLS = nox.project.dependency_groups(PYPROJECT, "test")
LINT_TOOLS = nox.project.dependency_groups(PYPROJECT, "lint")
# The one pytest invocation, shared with tox (tox.ini): settings live in pyproject.toml. Tests
# run in one pytest-xdist worker per core (at most 4; each test sets its own torch threads),
# which halves CI on a 2-core machine; work stealing balances the long reproduction tests.
# `-- -n 0` after a session name runs them in one process.
PYTEST = (
    "python",
    "-m",
    "pytest",
    "--numprocesses=auto",
    "--maxprocesses=4",
    "--dist=worksteal",
    "--durations=10",  # the slowest tests, for keeping CI within its time
)
# Tests write bytecode into their fresh environment even where the machine sets
# PYTHONDONTWRITEBYTECODE: the processes some tests start (Flower's server and clients, the
# CLI) then import torch and the rest from it instead of compiling them again (a Flower test
# took 37 s instead of 70 s with its imports compiled once).
TEST_ENV = {"PYTHONDONTWRITEBYTECODE": ""}


def _all_packages() -> list[str]:
    return [f"./{folder}{extras}" for folder, extras in PACKAGES.values()]


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install(*(t for t in LINT_TOOLS if t.startswith("ruff")))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
@nox.parametrize("package", list(PACKAGES), ids=list(PACKAGES))
def typecheck(session: nox.Session, package: str) -> None:
    """mypy over one package's sources, against its installed dependencies."""
    folder, extras = PACKAGES[package]
    session.install(f"./{folder}{extras}", "./shared", *LINT_TOOLS)
    session.run("mypy", f"{folder}/src/neuronkit", env={"MYPYPATH": f"{folder}/src"})


@nox.session
@nox.parametrize("package", list(PACKAGES), ids=list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """One package's tests in a fresh environment holding only it, common and the test tools.

    An undeclared dependency fails here. Collecting no tests (pytest exit 5) is a failure:
    every package has tests, so it means discovery broke.
    """
    folder, extras = PACKAGES[package]
    session.install(f"./{folder}{extras}", "./shared", *TEST_TOOLS)
    session.run(*PYTEST, f"{folder}/tests", *session.posargs, env=TEST_ENV)


@nox.session
def integration(session: nox.Session) -> None:
    """Scenarios across packages, with every package installed together."""
    session.install(*_all_packages(), *TEST_TOOLS)
    session.run(*PYTEST, "integration_tests", *session.posargs, env=TEST_ENV)


@nox.session
def wheels(session: nox.Session) -> None:
    """Build every wheel and sdist; install each wheel alone in a fresh venv; import its modules."""
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.install("uv")
    session.run("uv", "build", "--all-packages", "--out-dir", str(dist), "--quiet")
    built = sorted(dist.glob("*.whl"))
    if len(built) != len(PACKAGES) or len(list(dist.glob("*.tar.gz"))) != len(PACKAGES):
        session.error(f"expected a wheel and an sdist per package, got {sorted(dist.iterdir())}")
    for wheel in built:
        venv = Path(session.create_tmp()) / f"venv-{wheel.name.split('-')[0]}"
        shutil.rmtree(venv, ignore_errors=True)
        session.run("uv", "venv", "--quiet", "--python", session.python or "python3", str(venv))
        python = str(venv / "bin" / "python")
        # our wheels keep their version while unreleased: never reuse one uv cached from an
        # earlier build at the same path (a stale neuronkit-common once hid a new function)
        refresh = [a for name in PACKAGES for a in ("--refresh-package", f"neuronkit-{name}")]
        session.run(
            "uv",
            "pip",
            "install",
            "--quiet",
            "--python",
            python,
            *refresh,
            "--find-links",
            str(dist),
            str(wheel),
        )
        modules = _wheel_modules(wheel)
        session.log(f"{wheel.name}: importing {len(modules)} modules")
        session.run(
            python,
            "-c",
            "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m)",
            *modules,
            external=True,
        )


def _wheel_modules(wheel: Path) -> list[str]:
    names = zipfile.ZipFile(wheel).namelist()
    modules = []
    for name in names:
        if name.startswith("neuronkit/") and name.endswith(".py"):
            module = name[: -len(".py")].replace("/", ".").removesuffix(".__init__")
            modules.append(module)
    return sorted(modules)


@nox.session(default=False)
def lowest(session: nox.Session) -> None:
    """Every package's tests and the integration tests with each declared dependency at the
    lowest version its bounds allow (uv's lowest-direct resolution): checks the lower bounds.
    Not in CI; run it when a bound or a dependency-sensitive code path changes."""
    session.install("--resolution=lowest-direct", *_all_packages(), *TEST_TOOLS)
    folders = [f"{folder}/tests" for folder, _ in PACKAGES.values()]
    session.run(*PYTEST, *folders, "integration_tests", *session.posargs)


@nox.session(default=False)
def reproduce(session: nox.Session) -> None:
    """Every quick reproduction; the report lands in ./neuronkit-results/summary.md."""
    session.install(*_all_packages())
    args = session.posargs or ["all", "--quick"]
    session.run("neuronkit", "reproduce", *args, "--out", "neuronkit-results")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks against peer libraries (not part of CI); see benchmarks/."""
    session.install(
        *_all_packages(),
        *nox.project.dependency_groups(PYPROJECT, "bench"),
        *TEST_TOOLS,
    )
    # SpikingJelly 2 pulls in torchaudio, whose wheels can be built for another CUDA than
    # torch's and then fail on import (Hugging Face models import it); its neurons do not use it.
    session.run("uv", "pip", "uninstall", "torchaudio", external=True)
    # Agreement with the peers first (these tests skip where the peers are not installed).
    session.run(
        *PYTEST,
        "packages/interpretability/tests/test_attribution_captum.py",
        "packages/interpretability/tests/test_lrp_zennit.py",
        "packages/interpretability/tests/test_rsa_rsatoolbox.py",
        "packages/snn/tests/test_nir_peers.py",
    )
    session.run("python", "benchmarks/run.py", *session.posargs)
