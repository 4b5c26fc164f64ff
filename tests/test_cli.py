"""The command line end to end: `python helpers.py ...` in a subprocess."""

import json
import subprocess
import sys

import pytest
import torch

import helpers
from conftest import ROOT

# Run helpers.py as a script after pointing torchvision's mirrors at a closed
# local port, so a download fails at once as it does on a machine with no network.
OFFLINE_LAUNCHER = (
    "import sys, runpy, torchvision;"
    "torchvision.datasets.MNIST.mirrors = ['http://127.0.0.1:9/'];"
    "sys.argv = ['helpers.py', *sys.argv[1:]];"
    "runpy.run_path('helpers.py', run_name='__main__')"
)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", OFFLINE_LAUNCHER, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def assert_one_clear_line(result: subprocess.CompletedProcess, *phrases: str) -> None:
    """A failure that says what went wrong in one line of stderr (after argparse's usage block, if any)."""
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if lines and lines[0].startswith("usage:"):  # argparse's usage, its continuation lines indented
        lines = lines[1:]
        while lines and lines[0].startswith(" "):
            lines = lines[1:]
    assert len(lines) == 1, result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


@pytest.mark.parametrize(("flag", "value", "named"), [
    ("--epochs", "0", "epochs must be at least 1"), ("--batch-size", "-4", "batch size must be at least 1"),
    ("--lr", "0", "learning rate must be a positive"), ("--lr", "-0.1", "learning rate"),
    ("--lr", "nan", "learning rate"),
    ("--momentum", "0.97", "momentum must be between 0 and 0.9"), ("--label-smoothing", "1.5", "label smoothing"),
    ("--epochs", "two", "--epochs: invalid int value"),
])
def test_invalid_settings_are_refused_with_a_message(flag, value, named, capsys):
    # in this process, to spare a start of Python and torch per case; the next test runs one for real
    with pytest.raises(SystemExit) as exited:
        helpers.main([flag, value])
    stderr = capsys.readouterr().err
    assert exited.value.code == 2
    assert_one_clear_line(subprocess.CompletedProcess([], 2, "", stderr), "error:", named)


def test_an_invalid_setting_on_the_real_command_line_exits_2_with_one_line():
    result = run_cli("--momentum", "0.97")
    assert result.returncode == 2
    assert_one_clear_line(result, "error:", "momentum must be between 0 and 0.9")


def test_missing_data_ends_with_one_line_naming_the_folder(tmp_path):
    result = run_cli("--data-dir", str(tmp_path), "--epochs", "1")
    assert_one_clear_line(result, "error:", str(tmp_path / "MNIST" / "raw"), "train-images-idx3-ubyte")


def test_corrupt_data_ends_with_one_line_naming_the_file(fake_mnist):
    path = fake_mnist / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])
    result = run_cli("--data-dir", str(fake_mnist))
    assert_one_clear_line(result, "error:", "t10k-images-idx3-ubyte")


def test_divergence_ends_with_one_line_naming_the_learning_rate(fake_mnist):
    result = run_cli("--data-dir", str(fake_mnist), "--lr", "10000", "--no-progress")
    assert_one_clear_line(result, "error:", "learning rate")


def test_a_run_writes_the_metrics_json_and_a_loadable_model(fake_mnist, tmp_path):
    metrics, weights = tmp_path / "out" / "metrics.json", tmp_path / "out" / "model.pt"
    result = run_cli("--data-dir", str(fake_mnist), "--epochs", "2", "--no-progress",
                     "--metrics-out", str(metrics), "--save-model", str(weights))
    assert result.returncode == 0, result.stderr
    assert "epoch 2:" in result.stdout and "Final test accuracy" in result.stdout
    written = json.loads(metrics.read_text())
    assert written["params"] == 23_682
    assert [record["epoch"] for record in written["history"]] == [1, 2]
    assert set(written["history"][0]) == {"epoch", "train_loss", "train_accuracy", "test_loss",
                                          "test_accuracy", "lr", "seconds"}
    state = torch.load(weights, weights_only=True)
    assert set(state) == set(helpers.Net().state_dict())
    assert not list(weights.parent.glob("*.tmp"))  # the atomic save left no temporary file


def test_an_unwritable_output_ends_with_one_line_naming_it(fake_mnist, tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("")
    result = run_cli("--data-dir", str(fake_mnist), "--epochs", "1", "--no-progress",
                     "--metrics-out", str(not_a_folder / "metrics.json"))
    assert_one_clear_line(result, "error: could not save the results", "file.txt")


def test_a_validation_split_larger_than_the_training_set_ends_with_one_line(fake_mnist):
    result = run_cli("--data-dir", str(fake_mnist), "--validation", "--no-progress")
    assert_one_clear_line(result, "error:", "validation split")



def test_training_needs_no_widget_or_plot_packages_and_the_pad_says_what_to_install(fake_mnist):
    # `None` in sys.modules makes an import fail as if the package were not installed.
    script = (
        "import sys\n"
        "for name in ('anywidget', 'traitlets', 'ipywidgets', 'IPython', 'matplotlib'):\n"
        "    sys.modules[name] = None\n"
        "import helpers\n"
        f"status = helpers.main(['--data-dir', {str(fake_mnist)!r}, '--epochs', '1', '--no-progress'])\n"
        "print('exit status', status)\n"
        "helpers.DigitPad\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "exit status 0" in result.stdout, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ImportError: The drawing pad needs the anywidget package")
    assert "pip install anywidget" in result.stderr
