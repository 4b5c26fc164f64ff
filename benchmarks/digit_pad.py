"""How long the drawing pad takes to read a drawing: from the browser's message to the prediction and layers.

    python benchmarks/digit_pad.py            # the notebook's model, outputs/model.pt
    python benchmarks/digit_pad.py --readings 50

Each reading is what the kernel does when a stroke ends: take the browser's message (the
canvas as a PNG data URL of 280 x 280 pixels and the strokes, 300 points), draw the strokes
again for the network with each of its two pens (`render_strokes`, `NETWORK_PENS`),
`preprocess_digit`, one forward pass of the two images, every conv layer's maps as five PNGs,
and the pad's traits updated. The browser adds its own part
(drawing, encoding the PNG, the message both ways); the real-browser test measures the whole
round trip. The budget is 50 ms.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers  # noqa: E402

BUDGET_MS = 50


def seven(shift: float, points: int = 300) -> list:
    """A 7 drawn in one stroke of `points` pointer positions (canvas px), `shift` px to the right."""
    across = np.linspace([60 + shift, 50], [220 + shift, 50], points // 2)
    down = np.linspace([220 + shift, 50], [120 + shift, 240], points - points // 2)
    return [np.concatenate([across, down]).round(1).tolist()]


def time_readings(pad, messages: list[dict]) -> list[float]:
    """Milliseconds the kernel takes for each message, after one that pays for one-time set-up."""
    pad.set_state(messages[-1])
    milliseconds = []
    for message in messages:
        started = time.perf_counter()
        pad.set_state(message)  # what the kernel does with the browser's message
        milliseconds.append(1000 * (time.perf_counter() - started))
    return milliseconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/model.pt", help="checkpoint; an untrained Net if missing")
    parser.add_argument("--readings", type=int, default=30)
    args = parser.parse_args()
    model_path = Path(args.model)
    # the time does not depend on the weights, only on the network's shape
    model = helpers.load_model(model_path, "cpu") if model_path.exists() else helpers.Net().eval()
    # RGBA, as the browser's canvas sends it
    messages = [{"strokes": seven(shift=reading % 20),
                 "drawing": helpers.png_data_url(helpers.render_digit(reading % 10, size=220, canvas=(280, 280),
                                                                      stroke=6).convert("RGBA"))}
                for reading in range(args.readings)]
    where = f"{'model ' + str(model_path) if model_path.exists() else 'untrained Net'}, " \
            f"{torch.get_num_threads()} torch threads outside the pad"
    for layers in (True, False):
        milliseconds = time_readings(helpers.DigitPad(model, layers=layers), messages)
        print(f"Drawing pad, kernel side, layers={layers}: {len(milliseconds)} readings of a 280 x 280 drawing "
              f"({where}): median {statistics.median(milliseconds):.1f} ms, max {max(milliseconds):.1f} ms; "
              f"budget {BUDGET_MS} ms.")


if __name__ == "__main__":
    main()
