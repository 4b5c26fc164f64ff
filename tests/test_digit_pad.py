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
                                real_mnist.train_labels[:3000], batches, helpers.Tally())
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
    assert {"network_input": "", "probabilities": None, "prediction": None, "layer_maps": []} in updates  # one message


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
const created = [];  // by document.createElement
const element = (tag) => {
  const handlers = {};
  const made = anything({
    tag,
    handlers,
    addEventListener: (type, handler) => (handlers[type] ??= []).push(handler),
    getContext: () => anything({ fillRect: (...rectangle) => painted.push(rectangle) }),
    toDataURL: () => "data:image/png;base64,A-STROKE",
    clientWidth: 280,  // shown at its own size: the pointer's offsets are canvas pixels
    clientHeight: 280,
    replaceChildren: (...children) => (made.shownChildren = children),
  });
  return made;
};
const el = anything({ querySelector: (selector) => (elements[selector] ??= element()) });
globalThis.document = anything({ createElement: (tag) => created[created.push(element(tag)) - 1] });
globalThis.Image = anything();

// The widget's model as anywidget gives it: set() fires "change:<name>" at once, as Backbone's does.
const state = JSON.parse(process.argv[3]);
const listeners = {};
const sent = [];  // the drawing at each save_changes(): what goes to the kernel
const sentStrokes = [];  // and its strokes
const sentLayers = [];  // and whether the layers are shown
const model = {
  get: (name) => state[name],
  set(name, value) {
    if (state[name] === value) return;
    state[name] = value;
    (listeners[`change:${name}`] ?? []).forEach((listener) => listener());
  },
  save_changes: () => [sent.push(state.drawing), sentStrokes.push(state.strokes), sentLayers.push(state.layers)],
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
report.strokesSent = sentStrokes[0];
report.paintedAfterStroke = painted.length;

const probabilities = Array.from({ length: 10 }, (_, digit) => (digit === 7 ? 0.91 : 0.01));
model.set("network_input", "data:image/png;base64,THE-INPUT");  // the kernel's answer
model.set("probabilities", probabilities);
model.set("prediction", 7);
report.shownPrediction = elements[".digit-pad-prediction"]?.textContent;
report.shownInput = elements[".digit-pad-input"]?.src;
const before = created.length;
model.set("layer_maps", [{ name: "conv1", shape: [8, 26, 26], scale: 1.5, image: "data:image/png;base64,MAPS" },
                         { name: "conv5", shape: [8, 2, 2], scale: 0.25, image: "data:image/png;base64,MORE" }]);
report.layerRows = elements[".digit-pad-layers"].shownChildren.length;
const made = created.slice(before);
report.channelMaps = made.filter((one) => one.tag === "canvas")
  .map(({ width, height, title }) => [width, height, title]);
report.channelNumbers = made.filter((one) => one.tag === "figcaption").map((one) => String(one.textContent));

fire(clearButton, "click", {});
report.sentAfterClear = [...sent];
report.paintedAfterClear = painted.length;
model.set("drawing", "data:image/png;base64,FROM-ANOTHER-VIEW");  // drawn in another view of the pad
report.paintedAfterAnotherView = painted.length;
const toggle = elements[".digit-pad-show-layers"];
toggle.checked = false;
fire(toggle, "change", {});
report.layersSent = sentLayers.at(-1);
report.layersShown = elements[".digit-pad-layers"].style.display;
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
    state = helpers.DigitPad(helpers.Net()).get_state(
        ["canvas_size", "pen_width", "drawing", "strokes", "network_input", "prediction", "probabilities", "layers",
         "layer_maps"])
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


def test_the_pads_javascript_sends_the_strokes_path_with_the_drawing(page):
    assert page["strokesSent"] == [[[140, 140], [150, 200]]]  # canvas pixels, one stroke from down to up


def test_the_pads_javascript_shows_each_layers_channels_numbered_from_zero(page):
    assert page["layerRows"] == 2
    assert page["channelMaps"] == ([[26, 26, f"conv1, channel {channel}"] for channel in range(8)]
                                   + [[2, 2, f"conv5, channel {channel}"] for channel in range(8)])
    assert page["channelNumbers"] == [str(channel) for channel in range(8)] * 2


def test_the_pads_layers_box_switches_the_layers_off(page):
    assert page["layersSent"] is False and page["layersShown"] == "none"


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



# The layers, live: every conv layer's ReLU maps of the drawing, as `helpers.feature_maps` computes them.
COURSE_LAYERS = {"conv1": [8, 26, 26], "conv2": [16, 24, 24], "conv3": [64, 10, 10], "conv4": [16, 8, 8],
                 "conv5": [8, 2, 2]}


def channels(layer: dict) -> np.ndarray:
    """A layer's maps as the browser cuts them from its image: (C, H, W) colour levels 0-255."""
    strip = Image.open(io.BytesIO(base64.b64decode(layer["image"].removeprefix("data:image/png;base64,"))))
    assert strip.mode == "P"  # one byte a pixel: a level of the palette, not three floats
    count, height, width = layer["shape"]
    return np.asarray(strip).reshape(height, count, width).transpose(1, 0, 2)


def test_the_pad_shows_every_conv_layers_maps_of_the_drawing(pad):
    pad.drawing = drawn(7)
    assert {layer["name"]: layer["shape"] for layer in pad.layer_maps} == COURSE_LAYERS
    expected = helpers.feature_maps(pad.model, helpers.preprocess_digit(Image.open(io.BytesIO(
        base64.b64decode(drawn(7).split(",")[1]))))[0])
    for layer in pad.layer_maps:
        maps = expected[layer["name"]]
        assert channels(layer).shape == tuple(layer["shape"])
        assert layer["scale"] == pytest.approx(maps.max().item())


def test_a_layers_channels_share_one_colour_scale_from_zero_to_its_largest_value(pad):
    pad.drawing = drawn(3)
    maps = helpers.feature_maps(pad.model, pad._network_input[0])
    for layer in pad.layer_maps:
        levels = maps[layer["name"]] / layer["scale"] * 255  # one scale for all channels, not one per channel
        np.testing.assert_allclose(channels(layer), levels.numpy(), atol=0.51)
    conv1 = channels(pad.layer_maps[0])
    assert conv1.max() == 255 and sorted(channel.max() for channel in conv1)[0] < 255  # a weaker channel stays dim


class NetPoolingEarlier(helpers.Net):
    """The course's CNN with its first max-pool moved from after conv2 to after conv1, as a student might."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 64)  # conv5 now gives 8 x 1 x 1

    def forward(self, x):
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)  # 26 -> 13
        x = torch.relu(self.conv3(torch.relu(self.conv2(x))))  # 13 -> 11 -> 9
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv4(x)), 2)  # 9 -> 7 -> 3
        return self.fc2(torch.relu(self.fc1(torch.flatten(torch.relu(self.conv5(x)), 1))))  # 3 -> 1


def test_the_layers_are_those_of_the_network_the_pad_was_given():
    pad = helpers.DigitPad(NetPoolingEarlier())
    pad.drawing = drawn(7)
    assert {layer["name"]: layer["shape"] for layer in pad.layer_maps} == {
        "conv1": [8, 26, 26], "conv2": [16, 11, 11], "conv3": [64, 9, 9], "conv4": [16, 7, 7], "conv5": [8, 1, 1]}


def test_layers_false_leaves_the_maps_out_until_they_are_switched_on(monkeypatch):
    for mark in LIVE_MARKS:
        monkeypatch.delenv(mark, raising=False)
    pad = helpers.DigitPad(helpers.Net(), layers=False)
    pad.drawing = drawn(7)
    assert pad.prediction is not None and pad.layer_maps == []
    pad.layers = True  # as the pad's "layers" box does: the maps of the drawing already there
    assert [layer["name"] for layer in pad.layer_maps] == list(COURSE_LAYERS)
    pad.layers = False
    assert pad.layer_maps == []


def test_an_empty_pad_shows_no_layers(pad):
    pad.drawing = drawn(7)
    pad.clear()
    assert pad.layer_maps == []


def test_a_reading_reaches_the_browser_as_one_small_message_with_its_layers(monkeypatch, opened):
    monkeypatch.setenv("JPY_SESSION_NAME", "a JupyterLab session")
    pad = helpers.DigitPad(helpers.Net())
    pad.comm.sent.clear()
    pad.set_state({"strokes": SEVEN, "drawing": drawn(7)})  # as the browser's message at the end of a stroke
    [reading] = [data["state"] for msg_type, data in pad.comm.sent
                 if msg_type == "comm_msg" and "prediction" in data.get("state", {})]
    assert set(reading) == {"network_input", "probabilities", "prediction", "layer_maps"}
    assert len(json.dumps(reading)) < 40_000  # bytes: the 112 maps travel as five small PNGs, not 9,000 floats


# Readable at any size: the network reads the pointer's strokes, drawn again in MNIST's proportions.
SEVEN = [[[60, 50], [220, 50], [120, 240]]]  # canvas px: one stroke, across and down
ONE = [[[140, 30], [140, 250]]]


def shrunk(strokes: list, factor: float, corner: tuple[float, float]) -> list:
    """The same strokes drawn `factor` times as large, from `corner` of the canvas."""
    points = np.concatenate([np.array(stroke, dtype=float) for stroke in strokes])
    low = points.min(axis=0)
    return [((np.array(stroke) - low) * factor + corner).tolist() for stroke in strokes]


def read_strokes(pad, strokes: list) -> np.ndarray:
    """What the network read of a drawing sent as the browser sends it, 0-255."""
    pad.set_state({"strokes": strokes, "drawing": drawn(8)})  # the picture must not matter
    return picture(pad.network_input).astype(float)


@pytest.mark.parametrize("strokes", [SEVEN, ONE])
def test_a_digit_drawn_small_in_a_corner_reaches_the_network_as_one_drawn_large(pad, strokes):
    large = read_strokes(pad, strokes)
    pad.clear()
    small = read_strokes(pad, shrunk(strokes, 0.3, (10, 10)))
    assert large.sum() > 0 and np.abs(large - small).mean() < 2  # of 255


@pytest.mark.parametrize("pen", helpers.NETWORK_PENS)
def test_the_strokes_are_drawn_for_the_network_with_a_pen_in_proportion_to_the_digit(pen):
    for height in (300, 30):  # px on the canvas: the same line, drawn large and small
        line = np.asarray(helpers.render_strokes([[[0, 0], [0, height]]], pen)) > 127
        rows, columns = np.nonzero(line)
        assert np.ptp(rows) + 1 == pytest.approx(112 * (1 + pen), abs=2)
        assert np.ptp(columns) + 1 == pytest.approx(112 * pen, abs=2)  # px


def test_the_strokes_are_read_with_each_pen_and_the_probabilities_averaged(pad):
    pad.set_state({"strokes": SEVEN, "drawing": drawn(8)})
    readings = torch.cat([helpers.preprocess_digit(helpers.render_strokes(SEVEN, pen)) for pen in helpers.NETWORK_PENS])
    torch.testing.assert_close(pad._network_input, readings)
    expected = helpers.predict_probabilities(pad.model, readings).mean(dim=0)
    torch.testing.assert_close(torch.tensor(pad.probabilities), expected)
    assert pad.prediction == int(expected.argmax())
    shown = picture(pad.network_input)  # the readings side by side, 2 px apart
    assert shown.shape == (28, 30 * len(helpers.NETWORK_PENS) - 2)
    thin, thick = shown[:, :28], shown[:, 30:58]
    assert (thin > 127).sum() < (thick > 127).sum()  # the thick pen's reading has more ink


@pytest.mark.parametrize(("strokes", "digit"), [(SEVEN, 7), (shrunk(SEVEN, 0.3, (190, 10)), 7),
                                                 (ONE, 1), (shrunk(ONE, 0.3, (10, 190)), 1)])
def test_a_digit_drawn_at_any_size_and_place_is_read_from_its_strokes(reader, strokes, digit):
    pad = helpers.DigitPad(reader, layers=False)
    pad.set_state({"strokes": strokes, "drawing": drawn(8)})
    assert pad.prediction == digit


def test_a_drawing_set_from_python_without_strokes_is_read_from_its_picture(pad):
    pad.set_state({"strokes": SEVEN, "drawing": drawn(0)})
    from_strokes = pad.network_input
    pad.clear()
    pad.drawing = drawn(0)
    assert pad.network_input != from_strokes
    assert pad.strokes == []


@pytest.mark.parametrize(("strokes", "reason"), [
    (42, "not a list of strokes"),
    ([[["a", 1]]], "not lists of [x, y] numbers"),
    ([[[1, 2, 3]]], "not lists of [x, y] numbers"),
    ([[]], "not lists of [x, y] numbers"),
    ([[[1, 2], [3]]], "not lists of [x, y] numbers"),
    ([[[float("nan"), 1]]], "NaN or infinite"),
    ([[[1, 2]] * (helpers.MAX_STROKE_POINTS + 1)], f"more than {helpers.MAX_STROKE_POINTS} points"),
])
def test_malformed_strokes_are_ignored_with_a_logged_warning(pad, strokes, reason, caplog):
    pad.set_state({"strokes": SEVEN, "drawing": drawn(7)})
    before = (pad.prediction, pad.probabilities, pad.network_input, pad.layer_maps)
    pad.set_state({"strokes": strokes, "drawing": drawn(1)})
    assert (pad.prediction, pad.probabilities, pad.network_input, pad.layer_maps) == before
    [record] = caplog.records
    assert "DigitPad ignored a drawing" in record.getMessage() and reason in record.getMessage()
