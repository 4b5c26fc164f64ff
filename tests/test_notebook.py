"""The notebook: a full headless run on real MNIST, and the committed copy's outputs."""

import json
import re

import nbformat
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOK = ROOT / "mnist_cnn.ipynb"
README_FIGURES = {"curves.png", "predictions.png"}


def stream_text(notebook, name: str) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", []) if output.get("name") == name)


def test_notebook_runs_end_to_end_on_real_mnist_and_reaches_99_percent(tmp_path, monkeypatch):
    output_dir, figures_dir = tmp_path / "outputs", tmp_path / "images"
    monkeypatch.setenv("MNIST_OUTPUT_DIR", str(output_dir))
    monkeypatch.setenv("MNIST_FIGURES_DIR", str(figures_dir))
    monkeypatch.setenv("MNIST_PROGRESS", "text")
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
    assert len(list(output_dir.glob("*.png"))) >= 9
    assert "Warning" not in stream_text(notebook, "stderr") + stream_text(notebook, "stdout")


def test_committed_notebook_holds_one_clean_full_run():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells[0].metadata.get("tags") == ["parameters"]
    assert [cell.execution_count for cell in code_cells] == list(range(1, len(code_cells) + 1))
    outputs = [output for cell in code_cells for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert "Warning" not in stream_text(notebook, "stderr")
    assert "Final test accuracy after 5 epochs" in stream_text(notebook, "stdout")
    assert NOTEBOOK.stat().st_size < 3_000_000
    text = NOTEBOOK.read_text()
    assert not re.search(r"/(home|root|work|tmp|Users)/", text), "machine-specific path in the outputs"
    # every code cell except the parameters ends in something visible
    assert all(cell.outputs for cell in code_cells[1:])


def test_the_training_cell_runs_again_in_the_same_kernel_with_the_same_result(fake_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(fake_mnist))
    monkeypatch.setenv("MNIST_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("MNIST_FIGURES_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("MNIST_EPOCHS", "2")
    monkeypatch.setenv("MNIST_PROGRESS", "off")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    training = next(cell for cell in code_cells if "helpers.fit(" in cell.source)
    setup = [cell for cell in code_cells[: code_cells.index(training)]
             if "load_mnist" in cell.source or "import" in cell.source]
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
