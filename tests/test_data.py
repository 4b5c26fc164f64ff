import socket
import urllib.error

import pytest
import torch
import torchvision

import helpers
from conftest import write_idx


def test_shuffled_batches_cover_every_sample_exactly_once_and_keep_the_last_partial_batch():
    batches = helpers.shuffled_batches(50, 16, torch.Generator().manual_seed(0))
    assert [len(batch) for batch in batches] == [16, 16, 16, 2]
    assert sorted(torch.cat(batches).tolist()) == list(range(50))


def test_shuffled_batches_differ_between_epochs_but_repeat_with_the_seed():
    generator = torch.Generator().manual_seed(3)
    first, second = (torch.cat(helpers.shuffled_batches(100, 16, generator)) for _ in range(2))
    assert not torch.equal(first, second)
    again = torch.cat(helpers.shuffled_batches(100, 16, torch.Generator().manual_seed(3)))
    assert torch.equal(first, again)


def test_data_dir_comes_from_the_argument_then_the_environment_then_data(monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", "/from/env")
    assert str(helpers.resolve_data_dir("/from/arg")) == "/from/arg"
    assert str(helpers.resolve_data_dir()) == "/from/env"
    monkeypatch.delenv("MNIST_DATA_DIR")
    assert str(helpers.resolve_data_dir()) == "data"


def test_fake_mnist_loads_normalized_with_the_training_sets_statistics(fake_mnist):
    data = helpers.load_mnist(fake_mnist)
    assert data.train_images.shape == (80, 1, 28, 28)
    assert data.test_images.shape == (40, 1, 28, 28)
    assert data.train_images.dtype == torch.float32
    assert data.train_labels.dtype == torch.int64
    assert data.train_images.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert data.train_images.std().item() == pytest.approx(1.0, abs=1e-4)
    assert data.test_labels.tolist() == [i % 10 for i in range(40)]


@pytest.fixture
def offline(monkeypatch):
    """Make torchvision's download fail at once, as on a machine with no network."""
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])


def test_missing_files_offline_give_one_error_naming_the_folder_the_files_and_both_fixes(tmp_path, offline):
    with pytest.raises(helpers.MnistDataError) as caught:
        helpers.load_mnist(tmp_path)
    message = str(caught.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in helpers.MNIST_FILES:
        assert name in message
    assert "connect to the internet" in message and "copy the four" in message
    assert "\n" not in message


@pytest.mark.parametrize("failure", [
    urllib.error.URLError("[Errno 111] Connection refused"),  # no network
    TimeoutError("timed out"),  # a network that drops packets
    RuntimeError("Error downloading train-images-idx3-ubyte.gz"),  # torchvision, after every mirror failed
], ids=lambda failure: type(failure).__name__)
def test_a_failed_download_becomes_one_mnist_error_with_a_timeout_that_is_then_restored(tmp_path, monkeypatch,
                                                                                         failure):
    timeouts = []

    def download(root, train, download):
        timeouts.append(socket.getdefaulttimeout())
        raise failure

    monkeypatch.setattr(torchvision.datasets, "MNIST", download)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(7.0)
    try:
        with pytest.raises(helpers.MnistDataError) as caught:
            helpers.load_mnist(tmp_path)
        after = socket.getdefaulttimeout()
    finally:
        socket.setdefaulttimeout(previous)
    assert timeouts == [helpers.DOWNLOAD_TIMEOUT_SECONDS]  # a download that hangs ends in an error
    assert after == 7.0  # and the rest of the program gets its own timeout back
    message = str(caught.value)
    assert str(tmp_path / "MNIST" / "raw") in message and "connect to the internet" in message
    assert str(failure) not in message  # the network's words stay out of the one-line message...
    assert caught.value.__cause__ is failure  # ...but its reason stays in the traceback, for whoever debugs it


def test_truncated_file_is_named_in_the_error(fake_mnist):
    path = fake_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(helpers.MnistDataError, match="train-images-idx3-ubyte is truncated"):
        helpers.load_mnist(fake_mnist)


def test_file_with_a_bad_header_is_named_in_the_error(fake_mnist):
    path = fake_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03" + path.read_bytes()[4:])  # an image file's magic
    with pytest.raises(helpers.MnistDataError, match="t10k-labels-idx1-ubyte is not an MNIST file"):
        helpers.load_mnist(fake_mnist)


def test_empty_file_is_named_in_the_error(fake_mnist):
    (fake_mnist / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(helpers.MnistDataError, match="train-labels-idx1-ubyte"):
        helpers.load_mnist(fake_mnist)


def test_labels_outside_zero_to_nine_are_refused(fake_mnist):
    path = fake_mnist / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    labels = torch.arange(80, dtype=torch.uint8) % 10
    labels[7] = 12
    write_idx(path, 2049, labels.numpy())
    with pytest.raises(helpers.MnistDataError, match="train-labels-idx1-ubyte holds labels outside 0-9"):
        helpers.load_mnist(fake_mnist)


def test_images_and_labels_of_different_lengths_are_refused(fake_mnist):
    path = fake_mnist / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    write_idx(path, 2049, (torch.arange(39) % 10).to(torch.uint8).numpy())
    with pytest.raises(helpers.MnistDataError, match="40 t10k images but 39 labels"):
        helpers.load_mnist(fake_mnist)


def test_real_mnist_has_the_published_sizes_and_statistics(real_mnist):
    assert real_mnist.train_images.shape == (60_000, 1, 28, 28)
    assert real_mnist.test_images.shape == (10_000, 1, 28, 28)
    assert round(real_mnist.mean, 4) == helpers.MNIST_MEAN
    assert round(real_mnist.std, 4) == helpers.MNIST_STD
    assert torch.bincount(real_mnist.train_labels).tolist()[:2] == [5923, 6742]


def test_the_validation_split_is_fixed_and_held_out_of_the_training_images(fake_mnist):
    full = helpers.load_mnist(fake_mnist)
    split = helpers.load_mnist(fake_mnist, validation=20)
    held_out = helpers.validation_indices(20, total=80)
    assert torch.equal(held_out, helpers.validation_indices(20, total=80))  # the same every run
    assert len(held_out.unique()) == 20
    assert torch.equal(split.validation_images, full.train_images[held_out])
    assert torch.equal(split.validation_labels, full.train_labels[held_out])
    kept = [index for index in range(80) if index not in set(held_out.tolist())]
    assert torch.equal(split.train_images, full.train_images[kept])
    assert torch.equal(split.test_images, full.test_images)  # the test set stays whole and apart
    assert split.evaluation_split()[0] == "validation" and full.evaluation_split()[0] == "test"


def test_the_real_validation_split_keeps_every_digit_and_leaves_50000_to_train(real_mnist):
    held_out = helpers.validation_indices()
    counts = torch.bincount(real_mnist.train_labels[held_out], minlength=10)
    assert len(held_out) == 10_000 and counts.min() > 850  # about 1,000 of each digit
    assert len(set(held_out.tolist())) == 10_000


def test_a_validation_split_outside_the_training_set_is_refused():
    for size in (0, 80, 100):
        with pytest.raises(ValueError, match="validation split"):
            helpers.validation_indices(size, total=80)


def test_augmentation_moves_the_ink_but_keeps_shape_background_and_seed(real_mnist):
    images = real_mnist.train_images[:64]
    augmented = helpers.augment_images(images, torch.Generator().manual_seed(0), chunk=20)
    again = helpers.augment_images(images, torch.Generator().manual_seed(0))
    assert augmented.shape == images.shape
    assert torch.allclose(augmented, again, atol=1e-6)  # the chunk size changes nothing
    background = images.min()
    assert torch.allclose(augmented[:, :, 0, 0], background.expand(64))  # empty corners stay empty, not grey
    moved = (augmented - images).abs().amax(dim=(1, 2, 3))
    assert (moved > 0.5).all()  # every image changed
    # a small turn, shift and scale keeps about the same amount of ink
    ink_before, ink_after = ((x - background).sum(dim=(1, 2, 3)) for x in (images, augmented))
    assert torch.allclose(ink_after, ink_before, rtol=0.3)
    unchanged = helpers.augment_images(images, torch.Generator(), degrees=0, shift=0, scale=0)
    assert torch.allclose(unchanged, images, atol=1e-4)
