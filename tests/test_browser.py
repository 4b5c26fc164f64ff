"""The notebook in a real browser: JupyterLab runs every cell in headless Chromium, as a reader would.

One Jupyter server and one run of the notebook in JupyterLab (1 epoch) serve every test here:
the run ends without an error, the live training progress bar is one line, and the drawing pad
reads a drawn 1 and 7; then Notebook 7's interface, on the same server, opens a small notebook
that loads the model the run saved, and its pad reads a drawn 1 too. The server's root is a
temporary folder with copies of the notebook and helpers.py, so the run's outputs/ and images/
never land in the repository; the browser may reach nothing but 127.0.0.1.

Playwright (`pip install playwright`, in requirements-dev.txt) drives the first Chromium found:
`chromium`, `chromium-browser` or `google-chrome` on PATH (`apt-get install chromium` on
Debian/Ubuntu, what CI installs), else Playwright's own (`python -m playwright install chromium`).
Without one these tests skip, and say which command installs it; with MNIST_REQUIRE_BROWSER=1
(CI sets it) they fail instead.
"""

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import nbformat
import pytest

import helpers
from conftest import ROOT

pytestmark = pytest.mark.browser

NOTEBOOK = "mnist_cnn.ipynb"
PAD_NOTEBOOK = "digit_pad.ipynb"  # written by the Notebook 7 test beside the main notebook
BROWSERS_ON_PATH = ("chromium", "chromium-browser", "google-chrome")
INSTALL_BROWSER = "`apt-get install chromium` (Debian/Ubuntu, as root) or `python -m playwright install chromium`"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_TIMEOUT = 180  # s; JupyterLab starts in about 7 s on two busy cores
KERNEL_START_TIMEOUT = 180  # s; the kernel is idle about 10 s after the notebook opens
RUN_TIMEOUT = 30 * 60  # s; the whole notebook takes 2-4 minutes on two idle cores, 15 on two busy ones
PAD_RUN_TIMEOUT = 10 * 60  # s for Notebook 7's two cells: a new kernel imports torch, slow while CI installs another
RUN_START_TIMEOUT = 120  # s for the first cell to be queued after "Run All Cells" is clicked
STALL_SECONDS = 10  # idle this long with cells left unrun: "Run All Cells" stopped at an error
ONE_LINE_HEIGHT = 40  # px; one row of widgets is about 30 px, the three wrapped rows of ncols=100 about 90
PREDICTION_TIMEOUT = 60_000  # ms for a drawing to reach the kernel and its prediction to come back
ROUND_TRIP_STROKES = 9  # the Notebook 7 test times this many strokes, kernel and page both

# JupyterLab's own settings for the run: no "official Jupyter news?" prompt (it would fetch a
# web page), and every cell attached to the page, so that the DOM holds every prompt and output.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

KERNEL_READY = """() => {
    const name = document.querySelector('.jp-NotebookPanel .jp-KernelName');
    const state = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
    return !!name && !!state && !['', 'No Kernel'].includes(name.innerText.trim())
        && state.dataset.status === 'idle';
}"""
# The notebook's execution state ("busy" while cells wait in the queue) and the prompt of each code
# cell by its index among all cells: "[ ]:" not run, "[*]:" queued or running, "[7]:" done. A cell
# whose source is folded (the exercises' solutions) shows no prompt: the saved notebook's execution
# counts say whether it ran.
RUN_STATE = """() => ({
    status: document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator')?.dataset.status,
    prompts: Object.fromEntries([...document.querySelectorAll('.jp-Notebook .jp-Cell')].flatMap((cell, index) => {
        const prompt = cell.classList.contains('jp-CodeCell') && cell.querySelector('.jp-InputArea-prompt');
        return prompt ? [[index, prompt.innerText.trim()]] : [];
    })),
})"""
# JupyterLab 4.6 renders an error output with data-mime-type "application/vnd.jupyter.stderr", like
# a stream on stderr, so a traceback is recognised by its text too; the saved notebook says for sure.
ERROR_OUTPUTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')].flatMap((cell, index) =>
    [...cell.querySelectorAll('.jp-OutputArea-output')]
        .filter(output => output.dataset.mimeType === 'application/vnd.jupyter.error'
            || (output.dataset.mimeType === 'application/vnd.jupyter.stderr'
                && output.innerText.includes('Traceback (most recent call last)')))
        .map(output => `cell ${index}: ${output.innerText.trim().split('\\n').slice(-1)[0]}`))"""
# tqdm.notebook's bar: an HBox of a label (description), a progress bar and a label (counts, rate, postfix).
PROGRESS_BAR = """cell => {
    const bar = cell.querySelector('.jp-OutputArea .widget-hprogress');
    const row = bar && bar.closest('.widget-hbox');
    if (!row) return null;
    const box = element => {
        const rect = element.getBoundingClientRect();
        return {top: rect.top, height: rect.height, width: rect.width,
                clipped: element.scrollWidth > element.clientWidth + 1,  // text cut off at the right
                text: element.innerText.replace(/[\\u2007\\u00a0\\n]+/g, ' ').trim()};
    };
    return {...box(row), parts: [...row.children].map(box)};
}"""


@dataclass
class NotebookRun:
    """What one "Run All Cells" in JupyterLab left: the page, how the wait ended, the saved notebook."""

    page: object  # playwright's Page
    folder: Path
    outcome: str  # "finished", or why the wait gave up
    seconds: float
    blocked: list[str]
    saved: nbformat.NotebookNode | None = None
    error_outputs: list[str] = field(default_factory=list)
    live_bar: dict | None = None  # the training cell's bar, measured while it was training


def code_cell_index(notebook: nbformat.NotebookNode, text: str) -> int | None:
    """Index (among all cells, as JupyterLab shows them) of the first code cell whose source holds `text`."""
    return next((index for index, cell in enumerate(notebook.cells)
                 if cell.cell_type == "code" and text in cell.source), None)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the server then shuts its kernels down), SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 60), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def lab_folder(tmp_path_factory) -> Path:
    """The server's root: helpers.py and the notebook with its saved outputs cleared."""
    folder = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "helpers.py", folder / "helpers.py")
    notebook = nbformat.read(ROOT / NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(notebook, folder / NOTEBOOK)
    return folder


def no_browser(reason: str) -> NoReturn:
    """Skip the browser tests, or fail them where MNIST_REQUIRE_BROWSER=1 says they must run (CI)."""
    if os.environ.get("MNIST_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (MNIST_REQUIRE_BROWSER=1 requires the browser tests)", pytrace=False)
    pytest.skip(reason)


def find_chromium(playwright) -> str | None:
    """The first of BROWSERS_ON_PATH found on PATH, else Playwright's own Chromium if it is installed."""
    on_path = next((found for name in BROWSERS_ON_PATH if (found := shutil.which(name))), None)
    own = playwright.chromium.executable_path  # where Playwright would install it, whether it is there or not
    return on_path or (own if Path(own).is_file() else None)


@pytest.fixture(scope="module")
def browser() -> Iterator[tuple[object, list[str]]]:
    """A headless Chromium context that may load nothing but 127.0.0.1, and the list of what it was refused."""
    if importlib.util.find_spec("playwright") is None:
        no_browser("Playwright is not installed: `python -m pip install playwright` (it is in requirements-dev.txt), "
                   f"then a Chromium: {INSTALL_BROWSER}")
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []

    def only_local(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        executable = find_chromium(playwright)
        if executable is None:
            no_browser(f"no Chromium found (neither {', '.join(BROWSERS_ON_PATH)} on PATH nor Playwright's own): "
                       f"{INSTALL_BROWSER}")
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        print(f"browser: {executable} {chromium.version}")
        context = chromium.new_context(viewport=VIEWPORT)
        context.set_default_timeout(60_000)
        context.route("**/*", only_local)
        yield context, blocked
        context.close()
        chromium.close()


@pytest.fixture(scope="module")
def jupyter_lab(lab_folder):
    """A JupyterLab server on a free port of 127.0.0.1, with a token; yields its base URL and the token."""
    port, token = free_port(), secrets.token_hex(16)
    private = lab_folder.parent / "lab-private"  # settings, config, runtime files: nothing of ~/.jupyter
    for name, settings in LAB_SETTINGS.items():
        path = private / "settings" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = {name: value for name, value in os.environ.items()
           if name not in ("MNIST_PROGRESS", "MNIST_OUTPUT_DIR", "MNIST_FIGURES_DIR")}
    # One epoch, a short timing of the two data pipelines, and the networks compared on 10,000 images: the
    # browser tests need a trained pad, not results.
    env.update(MNIST_EPOCHS="1", MNIST_PIPELINE_IMAGES="3200", MNIST_VALIDATION_SIZE="50000",
               MNIST_DATA_DIR=str(helpers.resolve_data_dir().resolve()),
               JUPYTERLAB_SETTINGS_DIR=str(private / "settings"), JUPYTER_CONFIG_DIR=str(private / "config"),
               JUPYTER_RUNTIME_DIR=str(private / "runtime"))
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={lab_folder}", "--ServerApp.allow_root=True",
               f"--LabApp.workspaces_dir={private / 'workspaces'}", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    log_path = lab_folder.parent / "jupyterlab.log"
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        status = urllib.request.Request(f"{base_url}/api/status", headers={"Authorization": f"token {token}"})
        while True:
            try:
                with urllib.request.urlopen(status, timeout=10):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {base_url} (exit code {server.poll()}); "
                                f"its log ends:\n{log_path.read_text()[-3000:]}", pytrace=False)
                time.sleep(0.5)
        yield base_url, token
    finally:
        stop_process_group(server)


def run_all_cells(page) -> None:
    """Choose Run > Run All Cells, once the menu offers it: Lumino greys the item out (and ignores a
    click on it) until the notebook is the page's current widget, which can lag the kernel's "idle"."""
    page.bring_to_front()  # the page a reader looks at; a tab in the background may not render
    deadline = time.monotonic() + KERNEL_START_TIMEOUT
    while True:
        page.locator(".lm-MenuBar-itemLabel").get_by_text("Run", exact=True).click()
        item = page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).locator("xpath=..")
        if "lm-mod-disabled" not in (item.get_attribute("class") or ""):
            item.click()
            return
        page.keyboard.press("Escape")
        if time.monotonic() > deadline:
            pytest.fail(f"Run > Run All Cells stayed disabled for {KERNEL_START_TIMEOUT} s", pytrace=False)
        page.wait_for_timeout(1000)


def wait_for_every_cell(page, training_cell=None, live_shot: Path | None = None,
                        timeout: float = RUN_TIMEOUT) -> tuple[str, dict | None]:
    """Wait until every code cell has an execution count and the notebook is idle.

    Returns how the wait ended, and the training cell's progress bar as measured (with a
    screenshot) the first time it showed a loss, while it was still training.
    """
    clicked = time.monotonic()
    started, idle_since, live_bar = False, None, None
    while time.monotonic() < clicked + timeout:
        state = page.evaluate(RUN_STATE)
        prompts, idle = state["prompts"], state["status"] == "idle"
        if idle and all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts.values()):
            return "finished", live_bar
        if state["status"] in ("dead", "restarting", "autorestarting"):
            return f"the kernel is {state['status']} (out of memory?)", live_bar
        started = started or any(prompt != "[ ]:" for prompt in prompts.values())
        if not started and time.monotonic() > clicked + RUN_START_TIMEOUT:
            return f"no cell started within {RUN_START_TIMEOUT} s of Run > Run All Cells", live_bar
        # "Run All Cells" stops at a cell that raises: the kernel goes idle with cells never run.
        stopped = started and idle and "[*]:" not in prompts.values()
        idle_since = (idle_since or time.monotonic()) if stopped else None
        if idle_since and time.monotonic() - idle_since > STALL_SECONDS:
            never_run = [int(index) for index, prompt in prompts.items() if prompt == "[ ]:"]
            return f"stopped: code cells {never_run} never ran", live_bar
        if live_bar is None and training_cell is not None:
            bar = training_cell.evaluate(PROGRESS_BAR)
            if bar and "loss=" in bar["text"]:
                training_cell.screenshot(path=live_shot)
                live_bar = bar
        page.wait_for_timeout(1000)  # not time.sleep: Playwright serves the route handler meanwhile
    running = [int(index) for index, prompt in page.evaluate(RUN_STATE)["prompts"].items() if prompt == "[*]:"]
    return f"still running after {timeout:.0f} s: code cells {running} queued or running", live_bar


@pytest.fixture(scope="module")
def notebook_run(browser, jupyter_lab, lab_folder) -> NotebookRun:
    """Open the notebook in JupyterLab, choose Run > Run All Cells, wait for the end and save it."""
    context, blocked = browser
    base_url, token = jupyter_lab
    page = context.new_page()
    notebook = nbformat.read(lab_folder / NOTEBOOK, as_version=4)
    training_index = code_cell_index(notebook, "helpers.fit(")
    page.goto(f"{base_url}/lab/tree/{NOTEBOOK}?token={token}")
    page.wait_for_function(KERNEL_READY, timeout=KERNEL_START_TIMEOUT * 1000)
    cells = page.locator(".jp-Notebook .jp-Cell")
    assert cells.count() == len(notebook.cells), "JupyterLab shows another number of cells than the notebook has"
    training_cell = cells.nth(training_index) if training_index is not None else None

    started = time.monotonic()
    run_all_cells(page)
    outcome, live_bar = wait_for_every_cell(page, training_cell, lab_folder.parent / "progress_bar_live.png")
    run = NotebookRun(page, lab_folder, outcome, time.monotonic() - started, blocked, live_bar=live_bar)
    run.error_outputs = page.evaluate(ERROR_OUTPUTS)
    page.screenshot(path=lab_folder.parent / "notebook_end.png")
    if training_cell is not None and training_cell.evaluate(PROGRESS_BAR):
        training_cell.screenshot(path=lab_folder.parent / "progress_bar.png")

    # Save, and read back what JupyterLab wrote: the outputs as the kernel sent them.
    saved_path = lab_folder / NOTEBOOK
    before = saved_path.stat().st_mtime_ns
    page.locator(".lm-MenuBar-itemLabel").get_by_text("File", exact=True).click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Save Notebook", exact=True).click()
    deadline = time.monotonic() + 60
    while saved_path.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            page.screenshot(path=lab_folder.parent / "save_failed.png")
            pytest.fail("File > Save Notebook did not save the notebook within 60 s", pytrace=False)
        page.wait_for_timeout(500)
    run.saved = nbformat.read(saved_path, as_version=4)
    print(f"the notebook ran in JupyterLab in {run.seconds:.0f} s: {outcome}")
    return run


def test_every_cell_runs_in_jupyterlab_without_an_error(notebook_run):
    run = notebook_run
    saved_errors = [f"cell {index}: {output.ename}: {output.evalue}" for index, cell in enumerate(run.saved.cells)
                    if cell.cell_type == "code" for output in cell.outputs if output.output_type == "error"]
    assert not run.error_outputs and not saved_errors, (
        f"error outputs in the page: {run.error_outputs}; in the saved notebook: {saved_errors}")
    assert run.outcome == "finished", f"Run All Cells {run.outcome} (screenshot {run.folder.parent}/notebook_end.png)"
    counts = [cell.execution_count for cell in run.saved.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "the saved notebook does not hold one run of every cell"
    assert (run.folder / "outputs" / "metrics.json").is_file() and (run.folder / "images" / "curves.png").is_file()
    assert not run.blocked, f"the page asked for more than the local server: {run.blocked}"


def assert_one_line(bar: dict, when: str) -> None:
    tops = [part["top"] for part in bar["parts"]]
    assert len(bar["parts"]) == 3, f"{when}: expected label, bar and counts, got {bar['parts']}"
    assert bar["height"] < ONE_LINE_HEIGHT and max(tops) - min(tops) < 4, (
        f"{when}: the progress bar is not one line: {bar['height']:.0f} px high, "
        f"its parts start at {[round(top) for top in tops]} px, width {bar['width']:.0f} px: {bar['text']!r}")
    assert "loss=" in bar["text"] and "acc=" in bar["text"], f"{when}: no loss/accuracy shown: {bar['text']!r}"
    assert not any(part["clipped"] for part in bar["parts"]), f"{when}: text cut off: {bar['parts']}"


def test_the_training_progress_bar_is_one_line_with_loss_and_accuracy(notebook_run):
    run = notebook_run
    cells = run.page.locator(".jp-Notebook .jp-Cell")
    index = code_cell_index(run.saved, "helpers.fit(")
    training_cell = cells.nth(index) if index is not None else cells.filter(has=run.page.locator(".widget-hprogress"))
    assert training_cell.count() == 1, "no code cell of the notebook calls helpers.fit( or shows a progress bar"
    bar = training_cell.evaluate(PROGRESS_BAR)
    assert bar is not None, ("the training cell shows no progress widget (tqdm.notebook) in JupyterLab: "
                             "helpers.progress_mode() did not pick 'widget'?")
    print(f"progress bar after training: {bar['height']:.0f} px high, {bar['width']:.0f} px wide: {bar['text']}")
    assert_one_line(bar, "after training")
    if run.live_bar is not None:
        print(f"progress bar while training: {run.live_bar['height']:.0f} px high: {run.live_bar['text']}")
        assert_one_line(run.live_bar, "while training")


def draw(page, canvas, *strokes) -> None:
    """Draw each stroke, a list of (x, y) fractions of the canvas, with the mouse button held down."""
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=12)
        page.mouse.up()


def run_cell(page, cell) -> str:
    """Run `cell` in place (Ctrl+Enter) and return the text of its output once its new execution count shows."""
    prompt = cell.locator(".jp-InputArea-prompt")
    before = prompt.inner_text().strip()
    prompt.click()  # selects the cell, in command mode
    page.keyboard.press("Control+Enter")
    page.wait_for_function("""([prompt, before]) => /^\\[\\d+\\]:$/.test(prompt.innerText.trim())
                              && prompt.innerText.trim() !== before""",
                           arg=[prompt.element_handle(), before], timeout=PREDICTION_TIMEOUT)
    return cell.locator(".jp-OutputArea-output").inner_text().strip()


# The pad's layer rows: each one's label, and its channels' pixels once every map has been drawn (else null).
LAYER_ROWS = """pad => {
    const rows = [...pad.querySelectorAll('.digit-pad-layer')];
    const maps = rows.map(row => [...row.querySelectorAll('canvas')]);
    const drawn = maps.every(canvases => canvases.length
        && canvases.every(map => map.getContext('2d').getImageData(0, 0, 1, 1).data[3] > 0));
    return {labels: rows.map(row => row.querySelector('.digit-pad-layer-name').innerText),
            channels: maps.map(canvases => canvases.length),
            pixels: drawn ? maps.map(canvases => canvases.map(map => map.toDataURL()).join()) : null};
}"""
# Milliseconds from each stroke's end (the pointer lifts) to the kernel's answer on the page: the layer rows
# replaced, in the same message as the prediction.
TIME_ROUND_TRIPS = """pad => {
    window.padRoundTrips = [];
    let ended = null;
    pad.querySelector('canvas.digit-pad-canvas').addEventListener('pointerup', () => { ended = performance.now(); },
                                                                   true);
    new MutationObserver(() => {
        if (ended !== null) window.padRoundTrips.push(performance.now() - ended);
        ended = null;
    }).observe(pad.querySelector('.digit-pad-layers'), {childList: true});
}"""
COURSE_LAYERS = ["conv1: 8 × 26 × 26", "conv2: 16 × 24 × 24", "conv3: 64 × 10 × 10", "conv4: 16 × 8 × 8",
                 "conv5: 8 × 2 × 2"]


def layer_rows(pad, changed_from: list | None = None) -> dict:
    """The pad's layer rows once every map is drawn (and differs from `changed_from`, if given)."""
    pad.page.wait_for_function(f"""([pad, before]) => {{
        const pixels = ({LAYER_ROWS})(pad).pixels;
        return pixels !== null && JSON.stringify(pixels) !== JSON.stringify(before);
    }}""", arg=[pad.element_handle(), changed_from], timeout=PREDICTION_TIMEOUT)
    return pad.evaluate(LAYER_ROWS)


def test_the_drawing_pad_reads_a_drawn_one_and_seven(notebook_run):
    from playwright.sync_api import expect

    run, page = notebook_run, notebook_run.page
    assert code_cell_index(run.saved, "DigitPad(") is not None, (
        "mnist_cnn.ipynb has no cell that makes the drawing pad: expected `pad = helpers.DigitPad(model)` "
        "and `pad` in its section 7, 'Draw a digit'")
    assert run.outcome == "finished", f"the notebook did not run to the end: {run.outcome}; {run.error_outputs}"
    cells = page.locator(".jp-Notebook .jp-Cell")
    pad = page.locator(".jp-Notebook .digit-pad")
    expect(pad).to_have_count(1)
    pad_cell_index = cells.evaluate_all("cells => cells.findIndex(cell => cell.querySelector('.digit-pad'))")

    # A new code cell under the pad asks the kernel what the pad predicted.
    cells.nth(pad_cell_index).locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    question = cells.nth(pad_cell_index + 1)
    question.locator(".cm-content").click()
    page.keyboard.type("print(pad.prediction)")
    expect(question.locator(".cm-content")).to_have_text("print(pad.prediction)")

    canvas, prediction = pad.locator("canvas.digit-pad-canvas"), pad.locator(".digit-pad-prediction")
    draw(page, canvas, [(0.5, 0.15), (0.5, 0.85)])
    expect(prediction).to_contain_text("1", timeout=PREDICTION_TIMEOUT)
    one = layer_rows(pad)
    pad.screenshot(path=run.folder.parent / "digit_pad_1.png")
    assert run_cell(page, question) == "1"
    # one row per conv layer, labelled with its name and shape, with every channel's map
    assert [label.split(",")[0] for label in one["labels"]] == COURSE_LAYERS
    assert one["channels"] == [8, 16, 64, 16, 8]

    pad.locator("button.digit-pad-clear").click()
    draw(page, canvas, [(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)])
    expect(prediction).to_contain_text("7", timeout=PREDICTION_TIMEOUT)
    seven = layer_rows(pad, changed_from=one["pixels"])  # times out if the maps stay those of the 1
    pad.screenshot(path=run.folder.parent / "digit_pad_7.png")
    assert run_cell(page, question) == "7"
    assert all(a != b for a, b in zip(one["pixels"], seven["pixels"], strict=True)), "a layer's maps did not change"
    assert not run.blocked, f"the page asked for more than the local server: {run.blocked}"


def test_the_drawing_pad_reads_a_drawn_one_in_notebook_7(notebook_run, browser, jupyter_lab):
    """Notebook 7 (/notebooks/, served by the same server) shows the pad on the model the JupyterLab run saved."""
    from playwright.sync_api import expect

    run, (context, blocked), (base_url, token) = notebook_run, browser, jupyter_lab
    assert (run.folder / "outputs" / "model.pt").is_file(), f"the JupyterLab run saved no model: {run.outcome}"
    kernelspec = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}  # no kernel dialog
    pad_notebook = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec}, cells=[
        nbformat.v4.new_code_cell('import helpers\n\nmodel = helpers.load_model("outputs/model.pt", "cpu")\n'
                                  "pad = helpers.DigitPad(model)\npad"),
        nbformat.v4.new_code_cell("print(pad.prediction)"),
    ])
    nbformat.write(pad_notebook, run.folder / PAD_NOTEBOOK)

    page = context.new_page()
    page.goto(f"{base_url}/notebooks/{PAD_NOTEBOOK}?token={token}")
    page.wait_for_function(KERNEL_READY, timeout=KERNEL_START_TIMEOUT * 1000)
    assert urlsplit(page.url).path == f"/notebooks/{PAD_NOTEBOOK}" and page.locator(".jp-LabShell").count() == 0, (
        f"expected Notebook 7's interface, got {page.url}")
    run_all_cells(page)
    outcome, _ = wait_for_every_cell(page, timeout=PAD_RUN_TIMEOUT)
    if outcome != "finished":
        page.screenshot(path=run.folder.parent / "notebook7_end.png")
    assert outcome == "finished", (f"Run All Cells in Notebook 7: {outcome}; {page.evaluate(RUN_STATE)}, errors "
                                   f"{page.evaluate(ERROR_OUTPUTS)} (screenshot {run.folder.parent}/notebook7_end.png)")

    pad = page.locator(".jp-Notebook .digit-pad")
    expect(pad).to_have_count(1)
    canvas = pad.locator("canvas.digit-pad-canvas")
    pad.evaluate(TIME_ROUND_TRIPS)
    draw(page, canvas, [(0.5, 0.15), (0.5, 0.85)])
    expect(pad.locator(".digit-pad-prediction")).to_have_text("1", timeout=PREDICTION_TIMEOUT)
    assert layer_rows(pad)["channels"] == [8, 16, 64, 16, 8]
    pad.screenshot(path=run.folder.parent / "digit_pad_notebook7.png")
    assert run_cell(page, page.locator(".jp-Notebook .jp-Cell").nth(1)) == "1"

    # The round trip, measured in the page: more strokes on the same drawing, each after the last answer.
    for stroke in range(1, ROUND_TRIP_STROKES):
        x = 0.1 + 0.8 * stroke / ROUND_TRIP_STROKES
        draw(page, canvas, [(x, 0.3), (x + 0.05, 0.6)])
        page.wait_for_function(f"window.padRoundTrips.length > {stroke}", timeout=PREDICTION_TIMEOUT)
    round_trips = page.evaluate("window.padRoundTrips")
    print(f"Notebook 7: from a stroke's end to the prediction and layers on the page, {len(round_trips)} strokes: "
          f"median {statistics.median(round_trips):.0f} ms, max {max(round_trips):.0f} ms (target: median < 150 ms)")
    page.close()
    assert not blocked, f"the page asked for more than the local server: {blocked}"
