"""How long the drawing pad takes to read a drawing: from the browser's message to the prediction.

    python benchmarks/digit_pad.py            # the notebook's model, outputs/model.pt
    python benchmarks/digit_pad.py --readings 50

Each reading is what the kernel does when a stroke ends: decode the canvas (a PNG data URL
of 280 x 280 pixels), `preprocess_digit`, one forward pass, and the pad's traits updated.
The browser adds its own part (drawing, encoding the PNG, the message both ways); the
real-browser test measures the whole round trip. The budget is 100 ms.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="outputs/model.pt", help="checkpoint; an untrained Net if missing")
    parser.add_argument("--readings", type=int, default=30)
    args = parser.parse_args()
    model_path = Path(args.model)
    # the time does not depend on the weights, only on the network's shape
    model = helpers.load_model(model_path, "cpu") if model_path.exists() else helpers.Net().eval()
    pad = helpers.DigitPad(model)
    # RGBA, as the browser's canvas sends it
    drawings = [helpers.png_data_url(helpers.render_digit(digit % 10, size=220, canvas=(280, 280), stroke=6)
                                     .convert("RGBA")) for digit in range(args.readings)]
    pad.set_state({"drawing": drawings[0]})  # the first reading pays for one-time set-up
    milliseconds = []
    for drawing in drawings:
        started = time.perf_counter()
        pad.set_state({"drawing": drawing})  # what the kernel does with the browser's message
        milliseconds.append(1000 * (time.perf_counter() - started))
    print(f"Drawing pad, kernel side: {len(milliseconds)} readings of a 280 x 280 drawing "
          f"({'model ' + str(model_path) if model_path.exists() else 'untrained Net'}, "
          f"{torch.get_num_threads()} torch threads outside the pad): median {statistics.median(milliseconds):.1f} ms, "
          f"max {max(milliseconds):.1f} ms; budget 100 ms.")


if __name__ == "__main__":
    main()
