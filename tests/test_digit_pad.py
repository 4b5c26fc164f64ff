"""The drawing pad from the kernel's side: what the browser sends, and what the pad makes of it.

The browser sends the canvas as a PNG data URL in `drawing`; these tests send the same,
so they need no browser (tests/test_browser.py draws in a real one).
"""

import base64
import io
import json
import re
import shutil
import subprocess

import comm
import numpy as np
import pytest
import torch
from PIL import Image

import helpers

PAD_SIZE = 280  # px, the pad's canvas
LIVE_MARKS = ("JPY_SESSION_NAME", "VSCODE_PID", "KAGGLE_KERNEL_RUN_TYPE")


def as_drawing(image: Image.Image) -> str:
    """An image as the pad's JavaScript sends its canvas: a PNG data URL."""
    file = io.BytesIO()
    image.save(file, format="PNG")
    return "data:image/png;base64," + base64.b64encode(file.getvalue()).decode()


def drawn(digit: int) -> str:
    """A typed digit nearly as tall as the pad, dark on light paper, with a pen as thick as the pad's."""
    return as_drawing(helpers.render_digit(digit, size=220, canvas=(PAD_SIZE, PAD_SIZE), stroke=6).convert("RGBA"))


def picture(data_url: str) -> np.ndarray:
    """The pixels of a PNG data URL."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.removeprefix("data:image/png;base64,")))))


@pytest.fixture(scope="module")
def reader(real_mnist) -> helpers.Net:
    """A network trained for a few seconds on 3,000 real digits: enough to read clean typed ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this small network trains faster on one thread than on two busy cores
    try:
        helpers.set_seed(0)
        model = helpers.prepare_model(helpers.Net(), torch.device("cpu"))
        # Adam starts this network faster than SGD, as in test_training.py
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
        batches = helpers.shuffled_batches(3000, 32, torch.Generator().manual_seed(0))
        helpers.train_one_epoch(model, optimizer, constant, real_mnist.train_images[:3000],
                                real_mnist.train_labels[:3000], batches, helpers.Score())
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture
def pad(monkeypatch) -> helpers.DigitPad:
    """A pad on an untrained network, in a kernel nobody watches (as under pytest anywhere)."""
    for mark in LIVE_MARKS:
        monkeypatch.delenv(mark, raising=False)
    torch.manual_seed(0)
    return helpers.DigitPad(helpers.Net())


@pytest.mark.parametrize("digit", [0, 3, 7])
def test_a_drawn_digit_is_read_when_the_stroke_ends(reader, digit):
    pad = helpers.DigitPad(reader)
    assert pad.prediction is None and pad.probabilities is None
    pad.drawing = drawn(digit)
    assert pad.prediction == digit and type(pad.prediction) is int
    assert len(pad.probabilities) == 10 and min(pad.probabilities) >= 0
    assert sum(pad.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert pad.probabilities[digit] == max(pad.probabilities)


def test_the_pad_shows_the_28_by_28_image_the_network_read(pad):
    pad.drawing = drawn(7)
    page = Image.open(io.BytesIO(base64.b64decode(drawn(7).split(",")[1])))
    expected = helpers.preprocess_digit(page)[0, 0] * helpers.MNIST_STD + helpers.MNIST_MEAN
    shown = picture(pad.network_input)
    assert shown.shape == (28, 28) and shown.dtype == np.uint8
    np.testing.assert_allclose(shown / 255, expected.clamp(0, 1).numpy(), atol=1 / 255 + 1e-6)
    # and the probabilities are those of helpers.predict_digit for the same image
    torch.testing.assert_close(torch.tensor(pad.probabilities), helpers.predict_digit(pad.model, page)[1])


def test_each_stroke_replaces_the_reading(reader):
    pad = helpers.DigitPad(reader)
    pad.drawing = drawn(7)
    seven = pad.probabilities
    pad.drawing = drawn(0)
    assert pad.prediction == 0 and pad.probabilities != seven


@pytest.mark.parametrize("blank", [
    "",  # the canvas was cleared
    as_drawing(Image.new("RGBA", (PAD_SIZE, PAD_SIZE), "white")),  # a drawing without ink
    as_drawing(Image.new("RGBA", (PAD_SIZE, PAD_SIZE), (0, 0, 0, 0))),  # a canvas never painted: transparent
])
def test_an_empty_or_blank_drawing_reads_as_none_without_a_warning(pad, blank, caplog):
    pad.drawing = drawn(7)
    assert pad.prediction is not None
    pad.drawing = blank
    assert (pad.prediction, pad.probabilities, pad.network_input) == (None, None, "")
    assert not caplog.records


def damaged_png() -> str:
    """A PNG of the pad's size cut off halfway: its header reads well, its pixels do not."""
    png = base64.b64decode(drawn(7).split(",")[1])
    return "data:image/png;base64," + base64.b64encode(png[: len(png) // 2]).decode()


def jpeg_as_png() -> str:
    file = io.BytesIO()
    helpers.render_digit(7, canvas=(PAD_SIZE, PAD_SIZE)).save(file, format="JPEG")
    return "data:image/png;base64," + base64.b64encode(file.getvalue()).decode()


@pytest.mark.parametrize(("malformed", "reason"), [
    (as_drawing(helpers.render_digit(7, canvas=(100, PAD_SIZE))), "100 x 280 pixels, not the pad's 280 x 280"),
    ("a drawing", "not a PNG data URL"),
    (b"\x89PNG\r\n\x1a\n", "not a PNG data URL"),
    (42, "not a PNG data URL"),
    ("data:image/png;base64,this is not base64!", "not a PNG image"),
    ("data:image/png;base64," + base64.b64encode(b"garbage bytes" * 20).decode(), "not a PNG image"),
    (jpeg_as_png(), "not a PNG image"),
    (damaged_png(), "damaged"),
])
def test_a_malformed_drawing_is_ignored_with_a_logged_warning(pad, malformed, reason, caplog):
    pad.drawing = drawn(7)
    before = (pad.prediction, pad.probabilities, pad.network_input)
    pad.drawing = malformed
    assert (pad.prediction, pad.probabilities, pad.network_input) == before
    [record] = caplog.records
    assert record.name == "helpers" and record.levelname == "WARNING"
    assert "DigitPad ignored a drawing" in record.getMessage() and reason in record.getMessage()


def test_clear_forgets_the_drawing_and_the_reading(pad):
    pad.drawing = drawn(7)
    pad.clear()
    assert (pad.drawing, pad.prediction, pad.probabilities, pad.network_input) == ("", None, None, "")


class RecordingComm(comm.base_comm.BaseComm):
    """A comm that keeps what the kernel would send to the browser."""

    def __init__(self, **options) -> None:
        self.sent = []
        super().__init__(**options)

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        self.sent.append((msg_type, data))


@pytest.fixture
def opened(monkeypatch) -> list[RecordingComm]:
    """The comms that widgets open, recorded instead of sent."""
    comms = []

    def create_comm(**options):
        comms.append(RecordingComm(**options))
        return comms[-1]

    monkeypatch.setattr(comm, "create_comm", create_comm)
    return comms


def test_clear_from_python_tells_the_browser_to_clear_its_canvas(monkeypatch, opened):
    monkeypatch.setenv("JPY_SESSION_NAME", "a JupyterLab session")
    pad = helpers.DigitPad(helpers.Net())
    pad.drawing = drawn(7)
    pad.comm.sent.clear()
    pad.clear()
    updates = [data["state"] for msg_type, data in pad.comm.sent if msg_type == "comm_msg"]
    assert {"drawing": ""} in updates
    assert {"network_input": "", "probabilities": None, "prediction": None} in updates  # in one message


def test_a_headless_run_opens_no_connection_and_shows_one_line_of_text(pad, opened):
    assert not opened and pad.comm is None  # so nbclient saves no widget state with the notebook
    assert pad._repr_mimebundle_() == {"text/plain": helpers.DIGIT_PAD_NEEDS_A_KERNEL}
    assert "\n" not in helpers.DIGIT_PAD_NEEDS_A_KERNEL and "live kernel" in helpers.DIGIT_PAD_NEEDS_A_KERNEL
    pad.drawing = drawn(7)  # it still reads drawings set from Python
    assert pad.prediction is not None


def test_a_live_front_end_gets_the_widget(monkeypatch, opened):
    monkeypatch.setenv("JPY_SESSION_NAME", "a JupyterLab session")
    pad = helpers.DigitPad(helpers.Net())
    assert pad.comm in opened
    data, _ = pad._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == pad.comm.comm_id


# Runs the pad's browser code (`_esm`) in Node against a stand-in for the page and the widget's model,
# plays a user's stroke and the kernel's answer, and prints what the page did, as JSON.
PAGE_IN_NODE = """
import { pathToFileURL } from "node:url";

// Any part of the page the pad touches and this script does not watch: callable, constructible,
// and each property it reads is more of the same.
function anything(known = {}) {
  return new Proxy(Object.assign(function () {}, known), {
    get(target, key) {
      if (key === Symbol.toPrimitive) return () => "";
      if (!(key in target)) target[key] = anything();
      return target[key];
    },
    apply: () => anything(),
    construct: () => anything(),
  });
}
const painted = [];  // the canvas's fillRect calls: each is a repaint of the whole canvas
const elements = {};  // by the selector the pad looked them up with
const element = () => {
  const handlers = {};
  return anything({
    handlers,
    addEventListener: (type, handler) => (handlers[type] ??= []).push(handler),
    getContext: () => anything({ fillRect: (...rectangle) => painted.push(rectangle) }),
    toDataURL: () => "data:image/png;base64,A-STROKE",
  });
};
const el = anything({ querySelector: (selector) => (elements[selector] ??= element()) });
globalThis.document = anything();
globalThis.Image = anything();

// The widget's model as anywidget gives it: set() fires "change:<name>" at once, as Backbone's does.
const state = JSON.parse(process.argv[3]);
const listeners = {};
const sent = [];  // the drawing at each save_changes(): what goes to the kernel
const model = {
  get: (name) => state[name],
  set(name, value) {
    if (state[name] === value) return;
    state[name] = value;
    (listeners[`change:${name}`] ?? []).forEach((listener) => listener());
  },
  save_changes: () => sent.push(state.drawing),
  on: (events, listener) => events.split(" ").forEach((event) => (listeners[event] ??= []).push(listener)),
};

const { default: widget } = await import(pathToFileURL(process.argv[2]));
widget.render({ model, el });
const report = { markup: el.innerHTML, selectors: Object.keys(elements), paintedAtStart: painted.length };
const canvas = Object.values(elements).find((element) => element.handlers.pointerdown);
const clearButton = Object.values(elements).find((element) => element.handlers.click);
const fire = (target, type, event) => (target.handlers[type] ?? []).forEach((handler) => handler(
  { button: 0, pointerId: 1, offsetX: 140, offsetY: 140, preventDefault() {}, ...event }));

fire(canvas, "pointerdown", { pointerId: 1 });
fire(canvas, "pointermove", { pointerId: 1, offsetX: 150, offsetY: 200 });
fire(canvas, "pointerup", { pointerId: 2 });  // another finger lifts: the stroke goes on
report.sentWhileDrawing = [...sent];
fire(canvas, "pointerleave", { pointerId: 1 });
fire(canvas, "pointerdown", { pointerId: 3, button: 2 });  // a right click draws nothing
fire(canvas, "pointerup", { pointerId: 3, button: 2 });
report.sentAfterStroke = [...sent];
report.paintedAfterStroke = painted.length;

const probabilities = Array.from({ length: 10 }, (_, digit) => (digit === 7 ? 0.91 : 0.01));
model.set("network_input", "data:image/png;base64,THE-INPUT");  // the kernel's answer
model.set("probabilities", probabilities);
model.set("prediction", 7);
report.shownPrediction = elements[".digit-pad-prediction"]?.textContent;
report.shownInput = elements[".digit-pad-input"]?.src;

fire(clearButton, "click", {});
report.sentAfterClear = [...sent];
report.paintedAfterClear = painted.length;
model.set("drawing", "data:image/png;base64,FROM-ANOTHER-VIEW");  // drawn in another view of the pad
report.paintedAfterAnotherView = painted.length;
console.log(JSON.stringify(report));
"""

# What tests/test_browser.py looks for on the page: (tag, class)
BROWSER_TEST_ELEMENTS = [("div", "digit-pad"), ("canvas", "digit-pad-canvas"), ("div", "digit-pad-prediction"),
                         ("button", "digit-pad-clear")]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> dict:
    """What the pad's browser code did in Node, from rendering to a stroke, an answer and Clear."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs Node.js to run the pad's JavaScript (apt-get install nodejs)")
    folder = tmp_path_factory.mktemp("page")
    (folder / "pad.mjs").write_text(helpers.DigitPad._esm)
    (folder / "page.mjs").write_text(PAGE_IN_NODE)
    state = {name: getattr(helpers.DigitPad, name).default_value
             for name in ("canvas_size", "pen_width", "drawing", "network_input", "prediction", "probabilities")}
    result = subprocess.run([node, str(folder / "page.mjs"), str(folder / "pad.mjs"), json.dumps(state)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_pads_javascript_renders_the_elements_the_browser_test_looks_for(page):
    classes = {(tag, name) for tag, names in re.findall(r'<(\w+)[^>]*\bclass="([^"]*)"', page["markup"])
               for name in names.split()}
    for wanted in BROWSER_TEST_ELEMENTS:
        assert wanted in classes
    for selector in page["selectors"]:  # every element the code looks up is in its markup
        assert {name for _, name in classes} >= set(re.findall(r"\.([\w-]+)", selector)), selector


def test_the_pads_javascript_sends_a_stroke_once_when_the_pointer_that_drew_it_lifts_or_leaves(page):
    assert page["sentWhileDrawing"] == []
    assert page["sentAfterStroke"] == ["data:image/png;base64,A-STROKE"]
    assert page["paintedAtStart"] == page["paintedAfterStroke"] == 1  # white paper, not repainted over the stroke


def test_the_pads_javascript_shows_the_kernels_prediction_and_network_input(page):
    assert str(page["shownPrediction"]) == "7"  # the page turns what it is given into text
    assert page["shownInput"] == "data:image/png;base64,THE-INPUT"


def test_the_pads_clear_button_sends_an_empty_drawing_and_repaints_the_paper(page):
    assert page["sentAfterClear"] == ["data:image/png;base64,A-STROKE", ""]
    assert page["paintedAfterClear"] == page["paintedAfterStroke"] + 1
    assert page["paintedAfterAnotherView"] == page["paintedAfterClear"] + 1


def test_reading_a_drawing_leaves_the_number_of_torch_threads_as_it_was(pad):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the pad reads on one thread, then must give training its two back
    try:
        pad.drawing = drawn(7)
        assert pad.prediction is not None and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)

