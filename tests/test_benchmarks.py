"""The benchmark scripts run end to end (on a slice, for one epoch): they are not timed here.

The physical-limit line's parts are checked on their own: the FLOP count against
a count by hand, and the measured peak on a tiny matrix.
"""

import json
import math
import re
import subprocess
import sys

import numpy as np
import torch

import helpers
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import benchmark  # noqa: E402
import recipe  # noqa: E402
from exercises import PoolAfterConv1  # noqa: E402


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
    assert benchmark.forward_flops(PoolAfterConv1()) == 2 * multiply_adds != benchmark.forward_flops(helpers.Net())


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


def test_thinning_a_thick_stroke_leaves_a_one_pixel_line_along_its_middle():
    import pad_replay

    bar = np.zeros((1, 28, 28), dtype=bool)
    bar[0, 10:17, 4:24] = True  # a stroke 7 px thick and 20 px long
    [skeleton] = pad_replay.thin(bar)
    rows, columns = np.nonzero(skeleton)
    assert skeleton[~bar[0]].sum() == 0  # inside the stroke
    assert np.bincount(columns).max() == 1  # one pixel thick
    assert set(rows) <= {12, 13, 14} and np.ptp(columns) >= 12  # along its middle, most of its length
    assert np.all(np.diff(np.sort(columns)) == 1)  # unbroken


def test_pad_replay_benchmark_reads_a_small_sample_both_ways(tmp_path):
    model = helpers.save_model(helpers.Net(), tmp_path / "model.pt")
    out = tmp_path / "pad_replay.md"
    result = subprocess.run([sys.executable, "benchmarks/pad_replay.py", "--model", str(model), "--digits", "5",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    table = out.read_text()
    assert "| drawing | read from the canvas (before) | read from the strokes (now) |" in table
    for row in ("MNIST digits as given", "redrawn, as tall as the pad (80%)", "redrawn, 30%, in a corner"):
        assert f"| {row} | " in table


def test_pad_replay_chooses_the_pens_among_single_pens_pairs_and_the_canvas(tmp_path):
    import pad_replay

    model = helpers.save_model(helpers.Net(), tmp_path / "model.pt")
    result = subprocess.run([sys.executable, "benchmarks/pad_replay.py", "--model", str(model), "--digits", "5",
                             "--choose-pen"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "digits of the validation split" in result.stdout
    readings = re.findall(r"^\s*(pens? [\d. and]+(?:, averaged)?|the canvas's picture, as tall as the pad)\s+"
                          r"(\d+\.\d\d)%$", result.stdout, flags=re.M)
    pens = len(pad_replay.PEN_FRACTIONS)
    assert len(readings) == pens + pens * (pens - 1) // 2 + 1  # each pen, each pair, the canvas
    assert f"pens {' and '.join(map(str, helpers.NETWORK_PENS))}, averaged" in dict(readings)  # the pad's choice
    accuracies = [float(value) for _, value in readings]
    assert accuracies == sorted(accuracies, reverse=True)  # best first
