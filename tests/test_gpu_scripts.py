"""The GPU machine's scripts, as far as a CPU machine can check them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_prepare.sh"])
def test_scripts_parse(script):
    proc = subprocess.run(
        ["bash", "-n", str(ROOT / "scripts" / script)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_prepare_refuses_a_folder_that_is_not_the_authors_code(tmp_path):
    # Run on a copy of the script in a scratch tree, so .gpu/ of the checkout is untouched.
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "gpu_prepare.sh"
    script.write_text(
        (ROOT / "scripts" / "gpu_prepare.sh")
        .read_text()
        .replace('"$PYTHON" -m pip download', "true")
    )  # no download in a test
    (tmp_path / "not_nerco").mkdir()
    proc = subprocess.run(
        ["bash", str(script), "--authors", str(tmp_path / "not_nerco")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "is not github.com/Ysz2022/NeRCo" in proc.stderr


def test_cuda_tests_are_collected_and_marked():
    proc = subprocess.run(
        [
            sys.executable,
            *"-m pytest --collect-only -q -m cuda".split(),
            str(ROOT / "tests" / "test_cuda.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tests collected" in proc.stdout or "tests/test_cuda.py::" in proc.stdout
