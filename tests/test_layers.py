"""The code's structure: layers that import only downward, and no import cycle (tools/check_layers.py)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

CHECKER = REPO / "tools" / "check_layers.py"


def _check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECKER), str(root)], capture_output=True, text=True)


def test_no_module_imports_a_layer_above_it_and_there_is_no_import_cycle():
    result = _check(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 problem(s)" in result.stdout


def test_the_checker_finds_an_upward_import_a_cycle_and_an_unlisted_module(tmp_path):
    """Its independent truth: three faults planted in a copy of the code, each named by the checker."""
    for package in ("embench", "hydra_plugins"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    progress = tmp_path / "embench" / "progress.py"
    progress.write_text(progress.read_text() + "\n\ndef _late():\n    from embench.farms import local  # noqa: F401\n")
    paths = tmp_path / "embench" / "config" / "paths.py"
    paths.write_text("from embench.config import validate  # noqa: F401\n" + paths.read_text())
    (tmp_path / "embench" / "stray.py").write_text("")
    result = _check(tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "embench.progress (base) imports embench.farms.local (farms), a layer above it" in lines
    assert "import cycle: embench.config.paths -> embench.config.validate" in lines
    assert "embench.stray: in no layer (add it to LAYERS in tools/check_layers.py)" in lines
    assert lines[-1].endswith(" 3 problem(s)")


def test_bad_input_is_refused_before_torch_is_imported(tmp_path):
    """The config checks are fast: a refused command line never imports torch (seconds per call), whatever the
    farm whose options are checked."""
    code = ("import sys\nfrom embench.cli.run import main\nsys.argv = ['embench', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit as stop:\n    print('exit', stop.code)\n"
            "print('torch imported:', 'torch' in sys.modules)")
    for args in (["batch=0"], ["-m", "farm=ray", "farm.node_wait_s=-1"], ["-m", "farm=inline", "batch=0"]):
        result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=tmp_path)
        assert result.stdout.splitlines()[-2:] == ["exit 2", "torch imported: False"], (args, result.stdout, result.stderr)
