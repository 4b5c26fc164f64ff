"""The notebook: a full headless run on real MNIST, the committed copy's outputs, the student edition."""

import ast
import json
import re
import shlex
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

import helpers
from conftest import ROOT

NOTEBOOK = ROOT / "mnist_cnn.ipynb"
README_FIGURES = {"curves.png", "predictions.png"}
LESSON_DEFINITIONS = ("Net", "train_one_epoch", "evaluate")  # written in the notebook's cells and in helpers.py
EXERCISE_CHECKS = ("output_size_exercise.check(", "max_pool_exercise.check(", "conv_parameters_exercise.check(",
                   "nesterov_exercise.check(", "your_network_exercise.check(", "training_step_exercise.check(")


def stream_text(notebook, name: str) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", []) if output.get("name") == name)


def cell_output(notebook, marker: str) -> str:
    """The stdout of the one code cell whose source contains `marker`."""
    cells = [cell for cell in notebook.cells if cell.cell_type == "code" and marker in cell.source]
    assert len(cells) == 1, f"{len(cells)} cells contain {marker!r}"
    return "".join(output.get("text", "") for output in cells[0].outputs if output.get("name") == "stdout")


def student_edition(folder) -> nbformat.NotebookNode:
    """The student edition, built into `folder` by the README's own command (under "For instructors")."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- student edition command -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    command = shlex.split(block.strip().replace("\\\n", " "))
    assert command[:2] == ["jupyter", "nbconvert"] and "mnist_cnn.ipynb" in command, command
    command = [sys.executable, "-m", "jupyter", *command[1:]]
    result = subprocess.run([*command, "--output-dir", str(folder)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    written = list(folder.glob("*.ipynb"))
    assert len(written) == 1, written
    return nbformat.read(written[0], as_version=4)


@pytest.mark.slow
def test_the_student_edition_runs_end_to_end_on_real_mnist_and_reaches_99_percent(tmp_path, monkeypatch):
    output_dir, figures_dir = tmp_path / "outputs", tmp_path / "images"
    monkeypatch.setenv("MNIST_OUTPUT_DIR", str(output_dir))
    monkeypatch.setenv("MNIST_FIGURES_DIR", str(figures_dir))
    monkeypatch.delenv("MNIST_PROGRESS", raising=False)  # headless: no bar, found out without being told
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    # CI's minutes: time the pipelines on 3,200 images, and compare the networks trained on 10,000
    monkeypatch.setenv("MNIST_PIPELINE_IMAGES", "3200")
    monkeypatch.setenv("MNIST_VALIDATION_SIZE", "50000")
    (tmp_path / "edition").mkdir()
    notebook = student_edition(tmp_path / "edition")  # the committed notebook, less its solutions and answers
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
    descent_steps = re.findall(r"w by hand (\S+), torch.optim.SGD (\S+)", cell_output(notebook, "no momentum yet"))
    assert len(descent_steps) == 5 and all(hand == torch for hand, torch in descent_steps)
    momentum_steps = re.findall(r"w by hand (\S+), torch.optim.SGD (\S+)", cell_output(notebook, "nesterov=True"))
    assert len(momentum_steps) == 5 and all(hand == torch for hand, torch in momentum_steps)
    smoothing = re.search(r"by hand (\S+), F.cross_entropy (\S+)", cell_output(notebook, "smoothed_by_hand ="))
    assert smoothing and smoothing[1] == smoothing[2]
    assert "ln 10 = 2.3026" in cell_output(notebook, "untrained(image)")
    # with the solutions left out, every check answers, and none passes
    checks = [cell_output(notebook, check) for check in EXERCISE_CHECKS]
    assert all(output.startswith("Not yet: ") for output in checks), checks


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
    # every code cell that computes ends in something visible; the parameters and cells that only define
    # code (the network, the loop, the exercises' stubs and solutions) need not
    silent = [cell.source[:60] for cell in code_cells if not cell.outputs
              and "parameters" not in cell.metadata.get("tags", []) and not only_defines(cell)]
    assert not silent, f"code cells that show nothing: {silent}"


def test_every_training_setting_is_in_the_parameters_cell_with_helpers_defaults():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1
    namespace = {}
    exec(parameters[0].source, namespace)  # plain assignments, with os.environ lookups
    defaults = {"EPOCHS": helpers.EPOCHS, "BATCH_SIZE": helpers.BATCH_SIZE, "LEARNING_RATE": helpers.LEARNING_RATE,
                "MOMENTUM": helpers.MOMENTUM, "LABEL_SMOOTHING": helpers.LABEL_SMOOTHING,
                "AUGMENT": helpers.AUGMENT, "VALIDATION_SIZE": helpers.VALIDATION_SIZE, "SEED": helpers.SEED}
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


def test_the_first_cell_asks_for_a_page_reload_when_it_installs_anywidget():
    """A widget whose package was installed while the page was open shows a JavaScript error until the
    page is reloaded (seen in JupyterLab 4.6), so the first cell says so when it had to install anywidget."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "code")
    # anywidget then looks missing to the cell; pip finds it installed and changes nothing
    hide = nbformat.v4.new_code_cell("import importlib.util\n"
                                     "find_spec = importlib.util.find_spec\n"
                                     "importlib.util.find_spec = lambda name, *rest: "
                                     "None if name == 'anywidget' else find_spec(name, *rest)")
    again = nbformat.v4.new_code_cell(first.source)
    notebook.cells = [first, hide, again]
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    printed = ["".join(output.get("text", "") for output in cell.outputs if output.get("name") == "stdout")
               for cell in (first, again)]
    assert printed[0] == "helpers.py found\n"  # nothing installed, nothing to reload
    # after whatever pip itself prints
    assert "\nhelpers.py found; installed anywidget\nNow reload this page" in printed[1], printed[1]
    assert printed[1].endswith("the drawing pad\nof section 7 shows a JavaScript error instead of a pad.\n")


def test_the_training_cell_runs_again_in_the_same_kernel_with_the_same_result(fake_mnist, tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(fake_mnist))
    monkeypatch.setenv("MNIST_OUTPUT_DIR", str(tmp_path / "outputs"))
    monkeypatch.setenv("MNIST_FIGURES_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("MNIST_EPOCHS", "2")
    monkeypatch.setenv("MNIST_PROGRESS", "off")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    training = next(cell for cell in code_cells if "history = helpers.fit(model" in cell.source)
    # the imports, the full data, the network and the loop; not the validation split
    setup = [cell for cell in code_cells[: code_cells.index(training)]
             if "import" in cell.source or ("load_mnist" in cell.source and "validation=" not in cell.source)
             or set(definitions(cell)) & set(LESSON_DEFINITIONS)]
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


class WithoutHelpersPrefix(ast.NodeTransformer):
    """`helpers.Tally` -> `Tally`: the notebook names from helpers what helpers.py names as its own."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.value, ast.Name) and node.value.id == "helpers":
            return ast.copy_location(ast.Name(id=node.attr, ctx=node.ctx), node)
        return node


def definitions(cell_or_source) -> dict[str, str]:
    """Name -> AST dump (without line numbers, `helpers.` prefixes dropped) of each top-level def and class."""
    from IPython.core.inputtransformer2 import TransformerManager

    text = cell_or_source.source if hasattr(cell_or_source, "source") else cell_or_source
    tree = ast.parse(TransformerManager().transform_cell(text))  # %pip and other magics become plain Python
    return {node.name: ast.dump(WithoutHelpersPrefix().visit(node)) for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.ClassDef)}


def only_defines(cell) -> bool:
    """Whether a code cell holds nothing but function and class definitions."""
    from IPython.core.inputtransformer2 import TransformerManager

    body = ast.parse(TransformerManager().transform_cell(cell.source)).body
    return bool(body) and all(isinstance(node, ast.FunctionDef | ast.ClassDef) for node in body)


def test_the_notebooks_network_and_loop_are_the_code_of_helpers():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    in_notebook = [(name, dump) for cell in code_cells for name, dump in definitions(cell).items()
                   if name in LESSON_DEFINITIONS]
    assert sorted(name for name, _ in in_notebook) == sorted(LESSON_DEFINITIONS), "each defined once, in a cell"
    in_helpers = definitions((ROOT / "helpers.py").read_text())
    for name, dump in in_notebook:
        assert dump == in_helpers[name], f"the notebook's {name} and helpers.{name} differ"
    # and the notebook trains and inspects its own definitions, not helpers' copies
    sources = "\n".join(cell.source for cell in code_cells)
    assert not re.search(r"helpers\.(Net|train_one_epoch|evaluate)\b", sources)
    fits = re.findall(r"helpers\.fit\((.*?)\)\n", sources, flags=re.S)
    assert fits and all("train_one_epoch=train_one_epoch" in call and "evaluate=evaluate" in call for call in fits)


def test_the_main_path_is_a_first_lesson_of_at_most_3500_words():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    words = 0
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            if re.search(r"^#+ .*summary", cell.source, flags=re.I | re.M):
                break
            words += len(cell.source.split())
    else:
        pytest.fail("the notebook has no summary heading")
    print(f"main path (title to summary): {words} words of prose")
    assert words <= 3500


def test_the_student_edition_keeps_the_checks_and_drops_answers_solutions_and_outputs(tmp_path):
    committed = nbformat.read(NOTEBOOK, as_version=4)
    edition = student_edition(tmp_path)
    nbformat.validate(edition)
    tags = [tag for cell in edition.cells for tag in cell.metadata.get("tags", [])]
    assert "solution" not in tags and "answer" not in tags
    assert not [cell for cell in edition.cells if "<summary>Answer" in cell.source]
    code_cells = [cell for cell in edition.cells if cell.cell_type == "code"]
    assert not [cell for cell in code_cells if cell.outputs or cell.execution_count]
    sources = "\n".join(cell.source for cell in code_cells)
    assert all(sources.count(check) == 1 for check in EXERCISE_CHECKS)
    assert "parameters" in tags and tags.count("exercise") == len(EXERCISE_CHECKS)  # a stub for each check
    # nothing else was lost: the edition is the committed notebook less its solution and answer cells
    kept = [cell.source for cell in committed.cells
            if not {"solution", "answer"} & set(cell.metadata.get("tags", []))]
    assert [cell.source for cell in edition.cells] == kept
    solutions = [cell for cell in committed.cells if "solution" in cell.metadata.get("tags", [])]
    assert len(solutions) == len(EXERCISE_CHECKS)
