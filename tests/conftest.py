"""Shared fixtures: small fake MNIST files, and the real ones from $MNIST_DATA_DIR."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import helpers  # noqa: E402


def write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    """Write `array` (uint8) as an IDX file with the given magic number."""
    header = np.array([magic, *array.shape], dtype=">u4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_digits(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(count, 28, 28) images and labels: digit k is a bright bar in row band k, plus noise."""
    labels = np.arange(count) % 10
    images = rng.integers(0, 40, size=(count, 28, 28))
    for image, label in zip(images, labels, strict=True):
        image[2 + 2 * label : 4 + 2 * label, 4:24] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    """A torchvision dataset root with a tiny but valid MNIST: 80 training, 40 test images."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 80), ("t10k", 40)):
        images, labels = fake_digits(count, rng)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", 2051, images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", 2049, labels)
    return tmp_path


@pytest.fixture(scope="session")
def real_mnist() -> helpers.MnistTensors:
    """The real MNIST from $MNIST_DATA_DIR (CI points it at ../shared/data)."""
    return helpers.load_mnist(device="cpu")
