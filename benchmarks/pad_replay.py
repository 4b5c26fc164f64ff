"""How well the drawing pad reads real handwriting drawn at any size and place on it.

    python benchmarks/pad_replay.py --model outputs/model.pt
    python benchmarks/pad_replay.py --model outputs/model.pt --choose-pen   # NETWORK_PENS's choice

Each MNIST test digit is thinned to its strokes (a one-pixel skeleton, Zhang and Suen's method),
and the pointer draws them again on the pad: its 28 px pen on its 280 px canvas, at several
sizes and places. The pad reads each drawing twice, the way it once did and the way it does now:

- canvas: the picture on the canvas, through `preprocess_digit`;
- strokes: the pointer's path, drawn again with a thin and a thick pen in proportion to the digit
  (`render_strokes`, `NETWORK_PENS`), the two readings' probabilities averaged.

Prints a markdown table and writes it to benchmarks/pad_replay.md (--out). With --choose-pen
it reads the validation split's digits with each pen of PEN_FRACTIONS and each pair of them
instead, and the canvas's picture beside them: the choice never sees the test set (a model trained
with `python helpers.py --validation` has not seen those digits either).
"""

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers  # noqa: E402

PAD_SIZE = 280  # px, the pad's canvas
PEN_WIDTH = 28  # px, the pad's pen
CORNER_MARGIN = 14  # px between a digit drawn in a corner and the canvas's edges
# (row of the table, height of the drawing as a fraction of the pad's, where it is drawn)
DRAWINGS = [
    ("redrawn, as tall as the pad (80%)", 0.8, "centre"),
    ("redrawn, half the pad's height", 0.5, "centre"),
    ("redrawn, 30% of the pad's height, centred", 0.3, "centre"),
    ("redrawn, 30%, in a corner", 0.3, "corner"),
]
PEN_FRACTIONS = (0.06, 0.08, 0.10, 0.13, 0.16, 0.20, 0.24)  # tried by --choose-pen, alone and in pairs


def thin(images: np.ndarray) -> np.ndarray:
    """(N, H, W) bool images -> their skeletons, one pixel wide (Zhang and Suen, CACM 1984)."""
    image = np.pad(images, ((0, 0), (1, 1), (1, 1))).astype(np.uint8)
    inside = image[:, 1:-1, 1:-1]  # a view: removing a pixel here removes it from `image`
    while True:
        removed = 0
        for step in (0, 1):
            # the eight neighbours, clockwise from north: P2 ... P9 in the paper
            p2, p3, p4, p5 = image[:, :-2, 1:-1], image[:, :-2, 2:], image[:, 1:-1, 2:], image[:, 2:, 2:]
            p6, p7, p8, p9 = image[:, 2:, 1:-1], image[:, 2:, :-2], image[:, 1:-1, :-2], image[:, :-2, :-2]
            ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
            neighbours = sum(p.astype(int) for p in ring[:-1])
            crossings = sum(((a == 0) & (b == 1)).astype(int) for a, b in zip(ring, ring[1:], strict=False))
            # step 0 peels south-east boundary pixels and north-west corners, step 1 the opposite
            first, second = (p2 * p4 * p6, p4 * p6 * p8) if step == 0 else (p2 * p4 * p8, p2 * p6 * p8)
            remove = (inside == 1) & (neighbours >= 2) & (neighbours <= 6) & (crossings == 1) & (first == 0) & (
                second == 0)
            inside[remove] = 0
            removed += int(remove.sum())
        if not removed:
            return inside.astype(bool)


def skeleton_strokes(skeleton: np.ndarray) -> list[list[list[float]]]:
    """A (H, W) skeleton -> strokes in pixel units: a segment between each two neighbouring pixels, a dot if alone."""
    on = set(zip(*np.nonzero(skeleton), strict=True))
    strokes = []
    for row, column in sorted(on):
        centre = [column + 0.5, row + 0.5]
        after = [(row + dr, column + dc) for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1))
                 if (row + dr, column + dc) in on]
        strokes += [[centre, [c + 0.5, r + 0.5]] for r, c in after]
        alone = not any((row + dr, column + dc) in on for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc)
        if alone:
            strokes.append([centre])
    return strokes


def place(strokes: list, height: float, where: str) -> list:
    """Strokes scaled so that, drawn with the pad's pen, the digit's longer side is `height` of the pad's."""
    points = np.concatenate([np.array(stroke) for stroke in strokes])
    low, extent = points.min(axis=0), np.ptp(points, axis=0)
    scale = (height * PAD_SIZE - PEN_WIDTH) / max(extent.max(), 1.0)
    drawn = extent * scale + PEN_WIDTH  # the ink's box, width and height
    corner = (PAD_SIZE - drawn) / 2 if where == "centre" else np.array([CORNER_MARGIN, CORNER_MARGIN])
    return [((np.array(stroke) - low) * scale + corner + PEN_WIDTH / 2).round(1).tolist() for stroke in strokes]


def canvas_drawing(strokes: list) -> str:
    """The strokes as the pad's canvas shows them and sends them: the round 28 px pen, dark on white, as PNG."""
    canvas = Image.new("RGBA", (PAD_SIZE, PAD_SIZE), "white")
    pen = ImageDraw.Draw(canvas)
    ink, radius = (29, 29, 40), PEN_WIDTH / 2
    for stroke in strokes:
        if len(stroke) > 1:
            pen.line([tuple(point) for point in stroke], fill=ink, width=PEN_WIDTH)
        for x, y in stroke:
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)
    return helpers.png_data_url(canvas)


def mnist_strokes(images: torch.Tensor) -> list[list]:
    """Normalized (N, 1, 28, 28) MNIST images -> each one's strokes, in pixel units."""
    ink = images[:, 0] * helpers.MNIST_STD + helpers.MNIST_MEAN > 0.5
    return [skeleton_strokes(skeleton) for skeleton in thin(ink.numpy())]


def replay(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    """Accuracy (%) of the pad's two readings, of the canvas and of the strokes, for each of DRAWINGS."""
    pad = helpers.DigitPad(model, layers=False)  # the layers change no reading
    strokes = mnist_strokes(images)
    as_given = (helpers.predict_probabilities(model, images).argmax(1) == labels).float().mean().item()
    rows = [{"drawing": "MNIST digits as given", "canvas": 100 * as_given, "strokes": 100 * as_given}]
    for name, height, where in DRAWINGS:
        right = {"canvas": 0, "strokes": 0}
        for digit_strokes, label in zip(strokes, labels.tolist(), strict=True):
            placed = place(digit_strokes, height, where)
            drawing = canvas_drawing(placed)
            for path, sent in (("canvas", []), ("strokes", placed)):
                pad.clear()
                pad.set_state({"strokes": sent, "drawing": drawing})  # as the browser's message sets them
                right[path] += pad.prediction == label
        rows.append({"drawing": name, **{path: 100 * count / len(labels) for path, count in right.items()}})
    return rows


def choose_pen(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> list[dict]:
    """Accuracy (%) of the strokes read with each pen of PEN_FRACTIONS, and with each pair averaged, best first.

    The strokes' reading does not depend on the drawing's size; the canvas's picture does, and is
    read at the pad's largest size, "as tall as the pad", where it does best.
    """
    strokes = [place(digit, DRAWINGS[0][1], DRAWINGS[0][2]) for digit in mnist_strokes(images)]
    readings = {pen: helpers.predict_probabilities(model, torch.cat(
        [helpers.preprocess_digit(helpers.render_strokes(digit, pen)) for digit in strokes])) for pen in PEN_FRACTIONS}
    readings |= {pair: (readings[pair[0]] + readings[pair[1]]) / 2
                 for pair in itertools.combinations(PEN_FRACTIONS, 2)}
    canvas = torch.cat([helpers.preprocess_digit(helpers._drawing_to_image(canvas_drawing(digit), PAD_SIZE))
                        for digit in strokes])
    readings["the canvas's picture, as tall as the pad"] = helpers.predict_probabilities(model, canvas)
    accuracy = {name: 100 * (probabilities.argmax(1) == labels).float().mean().item()
                for name, probabilities in readings.items()}
    return [{"reading": f"pens {' and '.join(map(str, name))}, averaged" if isinstance(name, tuple)
             else f"pen {name}" if isinstance(name, float) else name, "read correctly": f"{value:.2f}%"}
            for name, value in sorted(accuracy.items(), key=lambda item: -item[1])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/model.pt", help="a checkpoint from `python helpers.py`")
    parser.add_argument("--digits", type=int, default=10_000, help="how many test digits (the first ones)")
    parser.add_argument("--choose-pen", action="store_true", help="compare pen widths on the validation digits")
    parser.add_argument("--out", default=str(Path(__file__).with_name("pad_replay.md")))
    args = parser.parse_args()
    if not Path(args.model).is_file():
        print(f"No model at {args.model}: train one with `python helpers.py --save-model {args.model}`",
              file=sys.stderr)
        return 1
    torch.set_num_threads(1)  # as the pad reads: one small image at a time
    model = helpers.load_model(args.model, "cpu")
    if args.choose_pen:
        held_out = helpers.load_mnist(device="cpu", validation=helpers.VALIDATION_SIZE)
        print(f"{args.digits} digits of the validation split, read from their strokes ({args.model}):")
        helpers.print_table(choose_pen(model, held_out.validation_images[: args.digits],
                                       held_out.validation_labels[: args.digits]))
        return 0
    data = helpers.load_mnist(device="cpu")
    rows = replay(model, data.test_images[: args.digits], data.test_labels[: args.digits])
    table = [
        "| drawing | read from the canvas (before) | read from the strokes (now) |",
        "|---|---|---|",
        *(f"| {row['drawing']} | {row['canvas']:.1f}% | {row['strokes']:.1f}% |" for row in rows),
    ]
    report = "\n".join([
        "# The drawing pad on replayed handwriting",
        "",
        f"The first {args.digits:,} MNIST test digits, thinned to their strokes and drawn again on the pad "
        f"with its {PEN_WIDTH} px pen on its {PAD_SIZE} px canvas (model `{args.model}`). "
        "Before, the network read the canvas's picture; now it reads the strokes twice, drawn again with pens "
        f"{' and '.join(map(str, helpers.NETWORK_PENS))} of their longer side, and averages the two readings. "
        "`python benchmarks/pad_replay.py` writes this file.",
        "",
        *table,
        "",
    ])
    print(report)
    Path(args.out).write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
