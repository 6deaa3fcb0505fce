"""Fixtures: the test plugin distribution, installed for real into a private folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PLUGIN_SOURCE = Path(__file__).parent / "plugin"


def _installer(target: Path) -> list[str]:
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
    if (
        subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode
        == 0
    ):
        return [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target)]
    raise RuntimeError("installing the test plugin needs uv on PATH or pip in this environment")


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed ``neuronkit-testplugin`` distribution."""
    target = tmp_path_factory.mktemp("plugin-site")
    source = tmp_path_factory.mktemp("plugin-src") / "plugin"
    shutil.copytree(PLUGIN_SOURCE, source)  # build from a copy: never write into the checkout
    subprocess.run([*_installer(target), str(source)], check=True)
    assert any(target.glob("neuronkit_testplugin-*.dist-info")), "plugin did not install"
    return target


@pytest.fixture
def with_plugin(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Make the plugin importable and discoverable in this process."""
    monkeypatch.syspath_prepend(str(plugin_dir))
    yield plugin_dir
    for name in [m for m in sys.modules if m.startswith("neuronkit_testplugin")]:
        del sys.modules[name]


CliRunner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli(plugin_dir: Path) -> CliRunner:
    """Run ``python -m neuronkit.common.cli ARGS`` in a fresh process that sees the plugin."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), env.get("PYTHONPATH")]))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "neuronkit.common.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    return run
