"""How the training defaults were chosen: candidate recipes compared on a validation split.

    python benchmarks/recipe.py                 # every candidate, seeds 1 2 3 (half an hour on 2 cores, see below)
    python benchmarks/recipe.py --only augment  # one candidate
    python benchmarks/recipe.py --test          # the chosen recipe (helpers' defaults) on test, seeds 1-5

On 2 cores, two processes of one thread each (OMP_NUM_THREADS=1, different
--only) finish sooner than one of two threads; they share the runs file.

Candidates train on 50,000 training images and are scored on the other
10,000 (`helpers.validation_indices`); the test set is never read. Only
`--test` trains the defaults on all 60,000 images and reports test accuracy.
Every finished run is kept in benchmarks/recipe_runs.json, so an interrupted
comparison resumes where it stopped; benchmarks/recipe.md is rewritten from it.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers  # noqa: E402

HERE = Path(__file__).resolve().parent
# name -> (what changes against the first row, fit() settings). Batch size 16, 5 epochs and SGD are fixed.
FIRST = {"lr": 0.015, "momentum": 0.9, "label_smoothing": 0.1, "augment": False}
CANDIDATES = {
    "no-augmentation": ("Nesterov 0.9, one-cycle to 0.015, label smoothing 0.1 (the recipe before these)", FIRST),
    "augmentation": ("+ augmentation (±10°, ±2 px, ±10% scale)", {**FIRST, "augment": True}),
    "augmentation-peak-0.025": ("+ augmentation, peak 0.025", {**FIRST, "augment": True, "lr": 0.025}),
    "augmentation-no-smoothing": ("+ augmentation, no label smoothing",
                                  {**FIRST, "augment": True, "label_smoothing": 0.0}),
}
HELPERS = HERE.parent / "helpers.py"
# helpers.py carries the validation table, so the notebook shows it with nothing but helpers.py beside it
TABLE_START, TABLE_END = "VALIDATION_RUNS = [", "]  # end of VALIDATION_RUNS"


def defaults() -> dict:
    return {"lr": helpers.LEARNING_RATE, "momentum": helpers.MOMENTUM,
            "label_smoothing": helpers.LABEL_SMOOTHING, "augment": helpers.AUGMENT}


def run(data: helpers.MnistTensors, settings: dict, seed: int, epochs: int) -> dict:
    helpers.set_seed(seed)
    model = helpers.prepare_model(helpers.Net(), data.train_images.device)
    history = helpers.fit(model, data, epochs=epochs, seed=seed, progress=False, **settings)
    split = "validation" if data.validation_images is not None else "test"
    return {"accuracy": history[-1][f"{split}_accuracy"], "epochs": len(history),
            "seconds_per_epoch": statistics.mean(record["seconds"] for record in history)}


def accuracies(runs: list[dict]) -> str:
    return " / ".join(f"{r['accuracy']:.2f}" for r in runs)


def table(results: dict, seeds: list[int]) -> list[str]:
    lines = ["| candidate | change | validation accuracy (%), seeds " + ", ".join(map(str, seeds))
             + " | mean | s / epoch |", "|---|---|---|---:|---:|"]
    for name, (change, _) in CANDIDATES.items():
        runs = [results[f"{name}/{seed}"] for seed in seeds if f"{name}/{seed}" in results]
        if runs:
            mean = statistics.mean(r["accuracy"] for r in runs)
            seconds = statistics.mean(r["seconds_per_epoch"] for r in runs)
            lines.append(f"| {name} | {change} | {accuracies(runs)} | {mean:.2f} | {seconds:.1f} |")
    return lines


def validation_runs(results: dict) -> list[dict]:
    """Per candidate that ran: its fit() settings and validation accuracy by seed, as in helpers.VALIDATION_RUNS."""
    rows = []
    for name, (_, settings) in CANDIDATES.items():
        seeds = sorted(int(key.split("/")[1]) for key in results if key.split("/")[0] == name)
        if seeds:
            rows.append({"candidate": name, "lr": settings["lr"], "label_smoothing": settings["label_smoothing"],
                         "augment": settings["augment"],
                         "accuracy": {seed: results[f"{name}/{seed}"]["accuracy"] for seed in seeds}})
    return rows


def write_into_helpers(rows: list[dict]) -> None:
    """Replace the VALIDATION_RUNS list in helpers.py with `rows`, one line per candidate."""
    text = HELPERS.read_text()
    start, end = text.index(TABLE_START), text.index(TABLE_END)
    body = "".join(f"    {{{', '.join(f'{key!r}: {value!r}' for key, value in row.items() if key != 'accuracy')},\n"
                   f"     'accuracy': {row['accuracy']!r}}},\n".replace("'", '"') for row in rows)
    HELPERS.write_text(text[:start] + TABLE_START + "\n" + body + text[end:])


def write_report(results: dict) -> str:
    # the seeds the candidates ran with, whatever this invocation's --seeds (--test uses 1-5)
    seeds = sorted({int(key.split("/")[1]) for key in results if not key.startswith("test/")})
    lines = ["# How the training defaults were chosen", "",
             f"Command: `python benchmarks/recipe.py`. Machine: {torch.get_num_threads()} threads, "
             f"torch {torch.__version__}. Each run: 5 epochs, batch size 16, SGD; trained on 50,000 "
             "training images, scored on the 10,000 held out (`helpers.validation_indices`). "
             "The test set is not read.", "", *table(results, seeds)]
    test_keys = sorted((key for key in results if key.startswith("test/")), key=lambda key: int(key.split("/")[1]))
    test_runs = [results[key] for key in test_keys]
    if test_runs:
        values = [r["accuracy"] for r in test_runs]
        lines += ["", "## The chosen recipe on the test set", "",
                  f"Command: `python benchmarks/recipe.py --test`. The defaults "
                  f"({json.dumps(defaults())}) trained on all 60,000 training images, "
                  f"seeds {', '.join(key.split('/')[1] for key in test_keys)}: "
                  f"test accuracy {accuracies(test_runs)}%; mean {statistics.mean(values):.2f}%, "
                  f"min {min(values):.2f}%, max {max(values):.2f}%; "
                  f"{statistics.mean(r['seconds_per_epoch'] for r in test_runs):.1f} s per epoch."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=helpers.EPOCHS)
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), help="run just these candidates")
    parser.add_argument("--test", action="store_true",
                        help="train the defaults on all 60,000 images and report test accuracy (seeds 1-5)")
    parser.add_argument("--train-subset", type=int, default=0, help="train on the first N images (a quick check)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--runs", type=Path, default=HERE / "recipe_runs.json")
    parser.add_argument("--out", type=Path, default=HERE / "recipe.md")
    args = parser.parse_args()

    results = json.loads(args.runs.read_text()) if args.runs.exists() else {}
    device = helpers.pick_device()
    data = helpers.load_mnist(args.data_dir, device, validation=0 if args.test else helpers.VALIDATION_SIZE)
    if args.train_subset:
        data = helpers.dataclasses.replace(data, train_images=data.train_images[: args.train_subset],
                                           train_labels=data.train_labels[: args.train_subset])
    if args.test:
        seeds = args.seeds if args.seeds != [1, 2, 3] else [1, 2, 3, 4, 5]
        jobs = [(f"test/{seed}", defaults(), seed) for seed in seeds]
    else:
        names = args.only or list(CANDIDATES)
        jobs = [(f"{name}/{seed}", CANDIDATES[name][1], seed) for name in names for seed in args.seeds]
    for key, settings, seed in jobs:
        if args.runs.exists() and key in json.loads(args.runs.read_text()):
            continue  # done earlier, or by another process meanwhile
        started = time.perf_counter()
        results[key] = run(data, settings, seed, args.epochs)
        print(f"{key}: {results[key]['accuracy']:.2f}% ({time.perf_counter() - started:.0f} s)", flush=True)
        # other processes may be running other candidates into the same file: merge, don't overwrite
        saved = json.loads(args.runs.read_text()) if args.runs.exists() else {}
        results = {**saved, key: results[key]}
        args.runs.write_text(json.dumps(results, indent=1))
    results = json.loads(args.runs.read_text()) if args.runs.exists() else results
    report = write_report(results)
    args.out.write_text(report)
    write_into_helpers(validation_runs(results))
    print(report)


if __name__ == "__main__":
    main()
