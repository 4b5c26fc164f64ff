"""The notebook: a full headless run on real MNIST, and the committed copy's outputs."""

import json
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import helpers
from conftest import ROOT

NOTEBOOK = ROOT / "mnist_cnn.ipynb"
README_FIGURES = {"curves.png", "predictions.png"}


def stream_text(notebook, name: str) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", []) if output.get("name") == name)


def cell_output(notebook, marker: str) -> str:
    """The stdout of the one code cell whose source contains `marker`."""
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and marker in cell.source]
    assert len(cells) == 1, f"{len(cells)} cells contain {marker!r}"
    return "".join(output.get("text", "") for output in cells[0].outputs if output.get("name") == "stdout")


@pytest.mark.slow
def test_notebook_runs_end_to_end_on_real_mnist_and_reaches_99_percent(tmp_path, monkeypatch):
    output_dir, figures_dir = tmp_path / "outputs", tmp_path / "images"
    monkeypatch.setenv("MNIST_OUTPUT_DIR", str(output_dir))
    monkeypatch.setenv("MNIST_FIGURES_DIR", str(figures_dir))
    monkeypatch.delenv("MNIST_PROGRESS", raising=False)  # headless: no bar, found out without being told
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # The kernel inherits this process's environment, MNIST_DATA_DIR included;
    # a failing cell raises CellExecutionError and fails the test.
    NotebookClient(notebook, timeout=1800, kernel_name="python3", coalesce_streams=True,
                   resources={"metadata": {"path": str(ROOT)}}).execute()

    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["params"] == 23_682
    assert [record["epoch"] for record in metrics["history"]] == [1, 2, 3, 4, 5]
    assert metrics["history"][-1]["test_accuracy"] >= 99.0
    assert (output_dir / "model.pt").stat().st_size > 90_000
    assert {path.name for path in figures_dir.glob("*.png")} == README_FIGURES
    assert len(list(output_dir.glob("*.png"))) >= 12
    assert stream_text(notebook, "stderr") == "", "a headless run saves no progress bars and no warnings"
    # the demonstrations compute what PyTorch computes
    assert "the loop equals F.conv2d: True" in cell_output(notebook, "top_edge = torch.tensor")
    momentum_steps = re.findall(r"w by hand (\S+), torch.optim.SGD (\S+)", cell_output(notebook, "nesterov=True"))
    assert len(momentum_steps) == 5 and all(hand == torch for hand, torch in momentum_steps)
    smoothing = re.search(r"by hand (\S+), F.cross_entropy (\S+)", cell_output(notebook, "smoothed_by_hand ="))
    assert smoothing and smoothing[1] == smoothing[2]
    assert "ln 10 = 2.3026" in cell_output(notebook, "untrained.scores(")


def test_committed_notebook_holds_one_clean_full_run():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1))
    outputs = [output for cell in code_cells for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert not [output for output in outputs if output.get("name") == "stderr"], "progress bars or warnings saved"
    assert not [cell for cell in code_cells if "execution" in cell.metadata], "per-cell timestamps saved"
    assert "widgets" not in notebook.metadata, "widget state saved"
    assert "Final test accuracy after 5 epochs" in stream_text(notebook, "stdout")
    assert NOTEBOOK.stat().st_size < 3_000_000
    text = NOTEBOOK.read_text()
    assert not re.search(r"/(home|root|work|tmp|Users)/", text), "machine-specific path in the outputs"
    # every code cell except the parameters ends in something visible
    assert all(cell.outputs for cell in code_cells if "parameters" not in cell.metadata.get("tags", []))


def test_every_training_setting_is_in_the_parameters_cell_with_helpers_defaults():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1
    namespace = {}
    exec(parameters[0].source, namespace)  # plain assignments, with os.environ lookups
    defaults = {"EPOCHS": helpers.EPOCHS, "BATCH_SIZE": helpers.BATCH_SIZE, "LEARNING_RATE": helpers.LEARNING_RATE,
                "MOMENTUM": helpers.MOMENTUM, "LABEL_SMOOTHING": helpers.LABEL_SMOOTHING,
                "AUGMENT": helpers.AUGMENT, "VALIDATION_SIZE": helpers.VALIDATION_SIZE}
    assert {name: namespace[name] for name in defaults} == defaults


def test_opened_alone_the_first_cell_says_how_to_get_helpers(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    notebook.cells = [first]
    client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})  # an empty folder
    with pytest.raises(CellExecutionError):
        client.execute()
    error = first.outputs[-1]
    assert error.output_type == "error" and error.ename == "HelpersMissing"
    message = "\n".join(error.traceback)
    assert "helpers.py" in message and "files.upload()" in message and "git clone" in message
    assert "Traceback" not in message and "File " not in message  # the message alone, not a traceback


def test_the_training_cell_runs_again_in_the_same_kernel_with_the_same_result(fake_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(fake_mnist))
    monkeypatch.setenv("MNIST_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("MNIST_FIGURES_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("MNIST_EPOCHS", "2")
    monkeypatch.setenv("MNIST_PROGRESS", "off")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    training = next(cell for cell in code_cells if "helpers.fit(" in cell.source)
    # the imports and the full data; not the validation split, which needs more than fake_mnist's images
    setup = [cell for cell in code_cells[: code_cells.index(training)]
             if "import" in cell.source or ("load_mnist" in cell.source and "validation=" not in cell.source)]
    notebook.cells = [*setup, training]
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    with client.setup_kernel():
        for index in range(len(notebook.cells)):
            client.execute_cell(notebook.cells[index], index)
        first_run = stream_text(notebook, "stdout")
        training.outputs = []
        client.execute_cell(training, len(notebook.cells) - 1)
    second_run = stream_text(notebook, "stdout")
    assert "epoch 2:" in first_run

    def epochs_of(text):
        return [re.sub(r"\| [0-9.]+ s", "", line) for line in text.splitlines() if line.startswith("epoch")]

    assert epochs_of(second_run) == epochs_of(first_run)
