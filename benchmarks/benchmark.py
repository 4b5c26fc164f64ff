"""Speed and accuracy of this tutorial's pipeline against the original one, in one run.

    python benchmarks/benchmark.py                      # full: 5 epochs, seeds 1 2 3 (about 15 min on 2 cores)
    python benchmarks/benchmark.py --epochs 1 --seeds 1 # a quick look

Ours also runs once without augmentation, to show what augmentation costs.

Each pipeline runs in its own process, so its peak resident memory is its own.
Prints a markdown table and writes it to benchmarks/results.md (--out).
"""

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import helpers  # noqa: E402

# The physical-limit line counts 2 FLOPs per multiply-add of each conv and linear
# layer (biases, ReLU and pooling are too cheap to matter) and takes a training step
# as 3 forward passes: the backward pass computes gradients for both the inputs and
# the weights, each costing about one forward pass.
BACKWARD_TO_FORWARD = 2
PEAK_MATRIX_SIZE = 2048  # large enough that the product runs at the CPU's arithmetic limit
VECTOR_BITS = {"AVX512": 512, "AVX2": 256, "SVE256": 256}  # torch's CPU capability -> vector register width


def forward_flops(model: nn.Module, image_shape: tuple[int, ...] = (1, 28, 28)) -> int:
    """FLOPs of one image through `model`'s nn.Conv2d and nn.Linear layers, from the shapes they produce."""
    multiply_adds = 0

    def count(layer: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal multiply_adds
        if isinstance(layer, nn.Conv2d):  # every output value sums over its input channels and the kernel
            per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        else:
            per_output = layer.in_features
        multiply_adds += output.numel() * per_output

    hooks = [layer.register_forward_hook(count) for layer in model.modules()
             if isinstance(layer, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model(torch.zeros(1, *image_shape))
    finally:
        for hook in hooks:
            hook.remove()
    return 2 * multiply_adds


def measured_peak_flops(threads: int, size: int = PEAK_MATRIX_SIZE, repeats: int = 5) -> float:
    """fp32 FLOP/s of the fastest of `repeats` (size x size) matrix products on `threads` threads."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        left, right = torch.randn(size, size), torch.randn(size, size)
        torch.mm(left, right)  # warm-up: the first call also allocates and starts the thread pool
        fastest = math.inf
        for _ in range(repeats):
            started = time.perf_counter()
            torch.mm(left, right)
            fastest = min(fastest, time.perf_counter() - started)  # other work on the machine only slows it
    finally:
        torch.set_num_threads(previous_threads)
    return 2 * size**3 / fastest


def vector_width() -> str:
    """The CPU's vector instructions as PyTorch uses them, e.g. "AVX512 (512-bit)"."""
    capability = torch.backends.cpu.get_cpu_capability()
    return f"{capability} ({VECTOR_BITS[capability]}-bit)" if capability in VECTOR_BITS else capability


def peak_memory_mib() -> float:
    """Peak resident memory of this process plus its largest child (DataLoader workers), MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024


def run_baseline(args) -> dict:
    """The original pipeline: per-image PIL transforms through a DataLoader, plain SGD at 0.01."""
    from torchvision import datasets, transforms

    root = helpers.resolve_data_dir(args.data_dir)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(root, train=True, download=True, transform=transform)
    test_set = datasets.MNIST(root, train=False, transform=transform)
    if args.train_subset:
        train_set = torch.utils.data.Subset(train_set, range(args.train_subset))
    torch.manual_seed(args.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=16, shuffle=True, num_workers=2)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=16, num_workers=2)
    model = helpers.Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    epochs = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        model.train()
        for images, labels in train_loader:
            optimizer.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()
        trained = time.perf_counter()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in test_loader:
                correct += (model(images).argmax(1) == labels).sum().item()
        epochs.append({"train_seconds": trained - started, "eval_seconds": time.perf_counter() - trained,
                       "test_accuracy": 100 * correct / len(test_set)})
    return {"train_images": len(train_set), "epochs": epochs, "peak_mib": peak_memory_mib()}


def run_ours(args, augment: bool = helpers.AUGMENT) -> dict:
    """This tutorial's pipeline: tensors in memory, channels-last, Nesterov SGD with one-cycle."""
    device = helpers.pick_device()
    data = helpers.load_mnist(args.data_dir, device)
    if args.train_subset:
        data = helpers.MnistTensors(data.train_images[: args.train_subset], data.train_labels[: args.train_subset],
                                    data.test_images, data.test_labels, data.mean, data.std)
    helpers.set_seed(args.seed)
    model = helpers.prepare_model(helpers.Net(), device)
    generator = torch.Generator().manual_seed(args.seed)
    steps = -(-len(data.train_labels) // helpers.BATCH_SIZE)
    optimizer, scheduler = helpers.make_optimizer(model, lr=helpers.LEARNING_RATE, momentum=helpers.MOMENTUM,
                                                  total_steps=args.epochs * steps)
    epochs = []
    for _ in range(args.epochs):
        started = time.perf_counter()
        batches = helpers.shuffled_batches(len(data.train_labels), helpers.BATCH_SIZE, generator, device)
        images = helpers.augment_images(data.train_images, generator) if augment else data.train_images
        helpers.train_one_epoch(model, optimizer, scheduler, images, data.train_labels, batches,
                                helpers.Tally(device), label_smoothing=helpers.LABEL_SMOOTHING)
        trained = time.perf_counter()
        _, accuracy = helpers.evaluate(model, data.test_images, data.test_labels)
        epochs.append({"train_seconds": trained - started, "eval_seconds": time.perf_counter() - trained,
                       "test_accuracy": accuracy})
    return {"train_images": len(data.train_labels), "epochs": epochs, "peak_mib": peak_memory_mib(),
            "threads": torch.get_num_threads()}


def in_subprocess(pipeline: str, args, seed: int) -> dict:
    command = [sys.executable, __file__, "--run", pipeline, "--seed", str(seed), "--epochs", str(args.epochs),
               "--train-subset", str(args.train_subset)]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    print(f"running {pipeline}, seed {seed}, {args.epochs} epoch(s)...", file=sys.stderr, flush=True)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"error: the {pipeline} run failed:\n{result.stderr}")
    return json.loads(result.stdout.splitlines()[-1])


def mean(values) -> float:
    return sum(values) / len(values)


def summarize(name: str, run: dict) -> dict:
    train = mean([epoch["train_seconds"] for epoch in run["epochs"]])
    evaluation = mean([epoch["eval_seconds"] for epoch in run["epochs"]])
    return {"name": name, "train": train, "eval": evaluation, "per_second": run["train_images"] / train,
            "peak": run["peak_mib"], "accuracies": [epoch["test_accuracy"] for epoch in run["epochs"]]}


def time_to(run: dict, target: float) -> str:
    """A sentence: when `run` first reached `target`% test accuracy, or that it did not."""
    elapsed = 0.0
    for number, epoch in enumerate(run["epochs"], start=1):
        elapsed += epoch["train_seconds"] + epoch["eval_seconds"]
        if epoch["test_accuracy"] >= target:
            return (f"Ours reached {target:g}% test accuracy after {elapsed:.0f} s (epoch {number}) "
                    "of training and evaluation.")
    return f"Ours did not reach {target:g}% test accuracy in {len(run['epochs'])} epoch(s)."


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return f"{os.cpu_count()} cores, {cpu}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def report(args, baseline: dict | None, ours_by_seed: dict[int, dict], unaugmented: dict | None) -> str:
    first_seed = args.seeds[0]
    rows = ([summarize("original (DataLoader, plain SGD 0.01)", baseline)] if baseline else []) + [
        summarize("this tutorial (in memory, Nesterov, one-cycle, label smoothing, augmentation)",
                  ours_by_seed[first_seed])]
    if unaugmented:
        rows.append(summarize("this tutorial without augmentation (the recipe before v2)", unaugmented))
    lines = [
        f"Machine: {machine()}. Command: `python benchmarks/benchmark.py "
        f"--epochs {args.epochs} --seeds {' '.join(map(str, args.seeds))}`"
        + (f" --train-subset {args.train_subset}" if args.train_subset else "") + ".",
        "",
        "| pipeline | s / training epoch | s / evaluation | training images / s | peak memory (MiB) "
        "| test accuracy per epoch (%) |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {row['train']:.1f} | {row['eval']:.2f} | {row['per_second']:,.0f} "
                     f"| {row['peak']:,.0f} | {', '.join(f'{a:.2f}' for a in row['accuracies'])} |")
    if baseline:
        lines += ["", f"Speed-up per training epoch (original ÷ ours): **{rows[0]['train'] / rows[1]['train']:.2f}×**;"
                  f" per evaluation pass: {rows[0]['eval'] / rows[1]['eval']:.1f}×."]
    if unaugmented:
        lines.append(f"Augmentation costs {100 * (rows[-2]['train'] / rows[-1]['train'] - 1):+.1f}% per training epoch "
                     "(ours ÷ ours without augmentation, same run).")
    lines.append(time_to(ours_by_seed[first_seed], 99.0))
    finals = {seed: run["epochs"][-1]["test_accuracy"] for seed, run in ours_by_seed.items()}
    lines += ["", f"Accuracy after {args.epochs} epochs over seeds {', '.join(map(str, finals))}: "
              + ", ".join(f"{value:.2f}%" for value in finals.values())
              + f"; mean {mean(list(finals.values())):.2f}%, min {min(finals.values()):.2f}%, "
              f"max {max(finals.values()):.2f}%."]
    ours = rows[int(bool(baseline))]
    step_flops = helpers.BATCH_SIZE * (1 + BACKWARD_TO_FORWARD) * forward_flops(helpers.Net())
    step_seconds = ours["train"] / -(-ours_by_seed[first_seed]["train_images"] // helpers.BATCH_SIZE)
    achieved = step_flops / step_seconds
    threads = ours_by_seed[first_seed]["threads"]
    peak = measured_peak_flops(threads)
    lines += ["", f"Physical limit: one training step of {helpers.BATCH_SIZE} images costs about "
              f"{step_flops / 1e6:.0f} MFLOP ({step_flops / helpers.BATCH_SIZE / 1e6:.1f} MFLOP per image, "
              f"forward and backward, counted from the conv and linear layers); ours takes "
              f"{step_seconds * 1e3:.2f} ms per step, {achieved / 1e9:.0f} GFLOP/s: {100 * achieved / peak:.0f}% "
              f"of the {peak / 1e9:.0f} GFLOP/s a {PEAK_MATRIX_SIZE} x {PEAK_MATRIX_SIZE} fp32 matrix product "
              f"reached on the same {threads} threads in this run (vector width: {vector_width()}). "
              f"Batches of {helpers.BATCH_SIZE} small images leave most of the time to per-layer overheads, "
              "not arithmetic."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--data-dir", default=None, help="torchvision dataset root (default: $MNIST_DATA_DIR)")
    parser.add_argument("--train-subset", type=int, default=0, help="train on the first N images only")
    parser.add_argument("--skip-baseline", action="store_true", help="measure only this tutorial's pipeline")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results.md")))
    parser.add_argument("--skip-unaugmented", action="store_true", help="leave out ours without augmentation")
    parser.add_argument("--run", choices=["baseline", "ours", "ours-unaugmented"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        runs = {"baseline": run_baseline, "ours": run_ours, "ours-unaugmented": lambda a: run_ours(a, augment=False)}
        print(json.dumps(runs[args.run](args)))
        return
    baseline = None if args.skip_baseline else in_subprocess("baseline", args, args.seeds[0])
    ours_by_seed = {seed: in_subprocess("ours", args, seed) for seed in args.seeds}
    unaugmented = None if args.skip_unaugmented else in_subprocess("ours-unaugmented", args, args.seeds[0])
    table = report(args, baseline, ours_by_seed, unaugmented)
    Path(args.out).write_text(table)
    print(table)


if __name__ == "__main__":
    main()
