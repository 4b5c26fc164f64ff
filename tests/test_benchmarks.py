"""The benchmark scripts run end to end (on a slice, for one epoch): they are not timed here.

The physical-limit line's parts are checked on their own: the FLOP count against
a count by hand, and the measured peak on a tiny matrix.
"""

import json
import math
import subprocess
import sys

import torch
import torch.nn.functional as F

import helpers
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import benchmark  # noqa: E402
import recipe  # noqa: E402


class NetPoolingEarlier(helpers.Net):
    """The course's CNN with its first max-pool moved from after conv2 to after conv1."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 64)  # conv5 now gives 8 x 1 x 1

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 26 -> 13
        x = F.relu(self.conv2(x))  # 13 -> 11
        x = F.relu(self.conv3(x))  # 11 -> 9
        x = F.max_pool2d(F.relu(self.conv4(x)), 2)  # 9 -> 7 -> 3
        x = F.relu(self.conv5(x))  # 3 -> 1
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def test_flop_count_of_the_course_network_matches_a_count_by_hand():
    # multiply-adds: output height x width x channels x (input channels x 3 x 3) per conv, inputs x outputs per linear
    multiply_adds = (26 * 26 * 8 * (1 * 3 * 3)  # conv1
                     + 24 * 24 * 16 * (8 * 3 * 3)  # conv2
                     + 10 * 10 * 64 * (16 * 3 * 3)  # conv3, after the pool to 12 x 12
                     + 8 * 8 * 16 * (64 * 3 * 3)  # conv4
                     + 2 * 2 * 8 * (16 * 3 * 3)  # conv5, after the pool to 4 x 4
                     + 32 * 64  # fc1
                     + 64 * 10)  # fc2
    assert benchmark.forward_flops(helpers.Net()) == 2 * multiply_adds == 4_461_888


def test_flop_count_follows_a_moved_max_pool():
    multiply_adds = (26 * 26 * 8 * (1 * 3 * 3)  # conv1
                     + 11 * 11 * 16 * (8 * 3 * 3)  # conv2, after the pool to 13 x 13
                     + 9 * 9 * 64 * (16 * 3 * 3)  # conv3
                     + 7 * 7 * 16 * (64 * 3 * 3)  # conv4
                     + 1 * 1 * 8 * (16 * 3 * 3)  # conv5, after the pool to 3 x 3
                     + 8 * 64  # fc1
                     + 64 * 10)  # fc2
    assert benchmark.forward_flops(NetPoolingEarlier()) == 2 * multiply_adds != benchmark.forward_flops(helpers.Net())


def test_measured_peak_is_a_positive_finite_flop_rate_and_keeps_the_thread_count():
    threads = torch.get_num_threads()
    peak = benchmark.measured_peak_flops(threads=1, size=64, repeats=2)
    assert math.isfinite(peak) and peak > 0
    assert torch.get_num_threads() == threads
    assert benchmark.vector_width()


def test_speed_benchmark_runs_on_a_slice_and_writes_its_table(tmp_path):
    out = tmp_path / "results.md"
    result = subprocess.run([sys.executable, "benchmarks/benchmark.py", "--epochs", "1", "--seeds", "1",
                             "--train-subset", "1600", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    table = out.read_text()
    assert "| original (DataLoader, plain SGD 0.01) |" in table and "| this tutorial" in table
    assert "Speed-up per training epoch" in table and "Physical limit" in table
    assert "fp32 matrix product reached on the same" in table and "vector width" in table


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


def test_helpers_carries_the_validation_table_of_the_recorded_runs():
    # The notebook shows helpers.VALIDATION_RUNS, so that it needs nothing but helpers.py beside it
    # (on Colab); it must be what benchmarks/recipe.py recorded, not a copy that drifted.
    recorded = json.loads((ROOT / "benchmarks" / "recipe_runs.json").read_text())
    assert recipe.validation_runs(recorded) == helpers.VALIDATION_RUNS
    assert [row["candidate"] for row in helpers.VALIDATION_RUNS] == list(recipe.CANDIDATES)
    chosen = max(helpers.VALIDATION_RUNS, key=lambda row: sum(row["accuracy"].values()))
    assert (chosen["lr"], chosen["label_smoothing"], chosen["augment"]) == (
        helpers.LEARNING_RATE, helpers.LABEL_SMOOTHING, helpers.AUGMENT)  # the defaults are the best mean
