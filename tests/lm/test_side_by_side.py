"""benchmarks/lm_side_by_side.py runs end to end on a tiny corpus: two trainers at once, one
core each, cores swapped between rounds, and the derived ratios printed (speed itself is the
benchmark's to measure, never a test's)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_the_side_by_side_benchmark_swaps_cores_and_prints_the_ratios():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "lm_side_by_side.py"),
                             "--data", str(REPO / "tests" / "fixtures" / "tiny_corpus"),
                             "--tokens", "700", "--eval-every", "2", "--rounds", "2", "--target", "60"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    cores = [re.search(r"small on core (\d+)", line).group(1) for line in out.splitlines()
             if line.startswith("round ")]
    assert len(cores) == 2 and cores[0] != cores[1], out
    assert re.search(r"speed ratio small/examples: \d+\.\d\d", out), out
    assert re.search(r"small +\d+ +valid ppl \(tokens, ppl\): \(\d", out), out
    assert "at the time examples needs for one epoch" in out


def test_the_side_by_side_benchmark_refuses_an_unknown_configuration():
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "lm_side_by_side.py"), "--config", "huge"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "no configuration 'huge'; known:" in result.stderr
