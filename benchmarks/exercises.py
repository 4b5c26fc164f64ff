"""The answers to the notebook's exercises 1-4 and 8, measured the way the exercises say to measure them.

    python benchmarks/exercises.py            # every exercise, seed 1 (10 to 25 minutes on 2 cores)
    python benchmarks/exercises.py --only momentum-0

On 2 cores, two processes of one thread each (OMP_NUM_THREADS=1, different --only)
finish sooner than one of two threads; they share the runs file.

Each run is `fit` on the validation split, as `python helpers.py --validation` and the
notebook's `validation_trial()` do: trained on 50,000 training images for 5 epochs, scored
on the 10,000 held out, with one setting changed from the defaults. The baseline (no change)
runs on the same number of threads, so each answer compares like with like.
Finished runs are kept in benchmarks/exercise_runs.json; benchmarks/exercises.md is
rewritten from it.
"""

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers  # noqa: E402

HERE = Path(__file__).resolve().parent


class PoolAfterConv1(helpers.Net):
    """Exercise 4 done: the first max-pool moved from after conv2 to after conv1, fc1 resized to fit."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(8, 64)  # conv5 now leaves 8 x 1 x 1

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = F.max_pool2d(F.relu(self.conv4(x)), 2)
        x = F.relu(self.conv5(x))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def worked_your_net() -> type:
    """Exercise 8 done: the notebook's worked YourNet, from the solution its check offers."""
    namespace = {"torch": torch, "nn": torch.nn, "F": F}
    exec(helpers.your_network_exercise.solution_code, namespace)
    return namespace["YourNet"]


# name -> (exercise, the change, network, fit() settings that differ from the defaults)
RUNS = {
    "defaults": ("baseline", "none", helpers.Net, {}),
    "momentum-0": ("1. No momentum", "MOMENTUM = 0", helpers.Net, {"momentum": 0.0}),
    "batch-64": ("2. Batch size", "BATCH_SIZE = 64", helpers.Net, {"batch_size": 64}),
    "batch-256": ("2. Batch size", "BATCH_SIZE = 256", helpers.Net, {"batch_size": 256}),
    "lr-0.1": ("3. Too hot", "LEARNING_RATE = 0.1", helpers.Net, {"lr": 0.1}),
    "pool-after-conv1": ("4. Move a max-pool", "pool after conv1", PoolAfterConv1, {}),
    "your-net": ("8. A network of your own", "the worked YourNet", worked_your_net(), {}),
}


def run(data: helpers.MnistTensors, network: type, settings: dict, seed: int) -> dict:
    helpers.set_seed(seed)
    model = helpers.prepare_model(network(), data.train_images.device)
    history = helpers.fit(model, data, seed=seed, progress=False, **settings)
    return {"parameters": helpers.count_parameters(model), "threads": torch.get_num_threads(),
            "history": history}


def write_report(results: dict, seed: int) -> str:
    lines = ["# The notebook's exercises, measured", "",
             f"Command: `python benchmarks/exercises.py`. Seed {seed}; torch {torch.__version__}. Each run: "
             "`fit` on the validation split (50,000 training images, 10,000 held out), 5 epochs, "
             "the defaults but for the change named.", "",
             "| exercise | change | parameters | threads | validation accuracy per epoch (%) "
             "| training loss per epoch |",
             "|---|---|---:|---:|---|---|"]
    for name, (exercise, change, _, _) in RUNS.items():
        if name in results:
            result = results[name]
            accuracies = ", ".join(f"{r['validation_accuracy']:.2f}" for r in result["history"])
            losses = ", ".join(f"{r['train_loss']:.2f}" for r in result["history"])
            lines.append(f"| {exercise} | {change} | {result['parameters']:,} | {result['threads']} "
                         f"| {accuracies} | {losses} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(RUNS), help="run just these")
    parser.add_argument("--seed", type=int, default=helpers.SEED)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--runs", type=Path, default=HERE / "exercise_runs.json")
    parser.add_argument("--out", type=Path, default=HERE / "exercises.md")
    args = parser.parse_args()
    results = json.loads(args.runs.read_text()) if args.runs.exists() else {}
    data = helpers.load_mnist(args.data_dir, helpers.pick_device(), validation=helpers.VALIDATION_SIZE)
    for name in args.only or list(RUNS):
        _, _, network, settings = RUNS[name]
        result = run(data, network, settings, args.seed)
        print(f"{name}: {result['history'][-1]['validation_accuracy']:.2f}%", flush=True)
        # another process may be running other exercises into the same file: merge, don't overwrite
        results = {**(json.loads(args.runs.read_text()) if args.runs.exists() else {}), name: result}
        args.runs.write_text(json.dumps(results, indent=1))
    report = write_report(results, args.seed)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
