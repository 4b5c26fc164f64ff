"""The benchmark scripts run end to end (on a slice, for one epoch): they are not timed here."""

import subprocess
import sys

import helpers
from conftest import ROOT


def test_speed_benchmark_runs_on_a_slice_and_writes_its_table(tmp_path):
    out = tmp_path / "results.md"
    result = subprocess.run([sys.executable, "benchmarks/benchmark.py", "--epochs", "1", "--seeds", "1",
                             "--train-subset", "1600", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    table = out.read_text()
    assert "| original (DataLoader, plain SGD 0.01) |" in table and "| this tutorial" in table
    assert "Speed-up per training epoch" in table and "Physical limit" in table


def test_own_digit_benchmark_reports_both_preparations(tmp_path):
    model = helpers.save_model(helpers.Net(), tmp_path / "model.pt")
    out = tmp_path / "own_digits.md"
    result = subprocess.run([sys.executable, "benchmarks/own_digits.py", "--model", str(model),
                             "--per-font-and-digit", "1", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| preprocess_digit | " in out.read_text() and "| plain resize | " in out.read_text()
    assert "100 rendered digits" in out.read_text()


def test_own_digit_benchmark_without_a_model_says_how_to_make_one(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/own_digits.py", "--model", str(tmp_path / "none.pt")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "--save-model" in result.stderr


def test_drawing_pad_benchmark_prints_its_latency(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/digit_pad.py", "--model", str(tmp_path / "none.pt"),
                             "--readings", "3"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "3 readings of a 280 x 280 drawing (untrained Net" in result.stdout and "median" in result.stdout
