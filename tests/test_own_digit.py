"""Your own digit: preprocessing, prediction, checkpoints, and every misuse failing clearly."""

import numpy as np
import pytest
import torch
from PIL import Image

import helpers


def ink_of(prepared: torch.Tensor) -> torch.Tensor:
    """Undo the normalization: (1, 1, 28, 28) -> (28, 28) ink in [0, 1]."""
    return prepared[0, 0] * helpers.MNIST_STD + helpers.MNIST_MEAN


def centre_of_mass(ink: torch.Tensor) -> tuple[float, float]:
    weights = ink.clamp(min=0)
    rows = (weights.sum(1) * torch.arange(28)).sum() / weights.sum()
    columns = (weights.sum(0) * torch.arange(28)).sum() / weights.sum()
    return rows.item(), columns.item()


@pytest.fixture
def page() -> Image.Image:
    """A small dark '5' far off-centre on a large light page."""
    return helpers.render_digit(5, size=60, canvas=(400, 300), centre=(0.8, 0.25))


def test_a_digit_is_cropped_scaled_to_20_pixels_and_centred_by_mass(page):
    ink = ink_of(helpers.preprocess_digit(page))
    rows, columns = torch.nonzero(ink > 0.05, as_tuple=True)
    height, width = rows.max() - rows.min() + 1, columns.max() - columns.min() + 1
    assert max(height, width) == 20
    assert abs(centre_of_mass(ink)[0] - 14) < 1 and abs(centre_of_mass(ink)[1] - 14) < 1
    assert ink.max() == pytest.approx(1.0, abs=1e-5) and ink.min() == pytest.approx(0.0, abs=1e-5)


def test_every_input_kind_gives_the_same_tensor(page, tmp_path):
    rgb = np.array(page)
    page.save(tmp_path / "digit.png")
    expected = helpers.preprocess_digit(page)
    assert expected.shape == (1, 1, 28, 28) and expected.dtype == torch.float32
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    for same_image in (str(tmp_path / "digit.png"), tmp_path / "digit.png", page.convert("L"),
                       rgb, rgba, torch.from_numpy(rgb).permute(2, 0, 1), rgb.astype(np.float32) / 255):
        # PIL rounds its grayscale to whole levels, so allow 3% of full ink per pixel
        torch.testing.assert_close(ink_of(helpers.preprocess_digit(same_image)), ink_of(expected), atol=0.03, rtol=0)


def test_light_ink_on_a_dark_page_is_read_like_dark_ink_on_a_light_page():
    dark_ink = helpers.preprocess_digit(helpers.render_digit(2, dark_ink=True))
    light_ink = helpers.preprocess_digit(helpers.render_digit(2, dark_ink=False))
    assert (ink_of(dark_ink) - ink_of(light_ink)).abs().mean() < 0.02


def test_a_real_mnist_digit_comes_back_almost_unchanged(real_mnist):
    for image in real_mnist.test_images[:20]:
        original = image[0] * real_mnist.std + real_mnist.mean
        prepared = ink_of(helpers.preprocess_digit((original * 255).round().to(torch.uint8).numpy()))
        assert (prepared - original).abs().mean() < 0.02


def test_predict_digit_returns_the_argmax_and_probabilities_that_sum_to_one(page):
    torch.manual_seed(0)
    digit, probabilities = helpers.predict_digit(helpers.Net(), page)
    assert probabilities.shape == (10,)
    assert probabilities.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert digit == int(probabilities.argmax())


@pytest.mark.parametrize("blank", [np.full((50, 40), 255, np.uint8), np.zeros((28, 28)),
                                   Image.new("RGB", (64, 64), "white")])
def test_a_blank_page_is_refused(blank):
    with pytest.raises(ValueError, match="no ink"):
        helpers.preprocess_digit(blank)


@pytest.mark.parametrize(("bad", "error", "message"), [
    (np.zeros((0, 28)), ValueError, "empty"),
    (np.full((28, 28), np.nan), ValueError, "NaN"),
    (np.zeros((4, 28, 28, 1)), ValueError, "2-D grayscale or 3-D"),
    (np.zeros((28, 28, 2)), ValueError, "2-D grayscale or 3-D"),
    ("no/such/digit.png", FileNotFoundError, "no/such/digit.png"),
    (42, TypeError, "int"),
    ([[0, 1], [1, 0]], TypeError, "list"),
])
def test_misuse_gets_a_clear_error(bad, error, message):
    with pytest.raises(error, match=message):
        helpers.preprocess_digit(bad)


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(ValueError, match="not an image file"):
        helpers.preprocess_digit(path)


# --- checkpoints ----------------------------------------------------------------


def test_checkpoint_round_trip_keeps_predictions(tmp_path):
    torch.manual_seed(0)
    model = helpers.Net()
    images = torch.randn(8, 1, 28, 28)
    path = helpers.save_model(model, tmp_path / "model.pt")
    reloaded = helpers.load_model(path, "cpu")
    assert not reloaded.training
    torch.testing.assert_close(reloaded(images), model.eval()(images))


def test_an_interrupted_save_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = helpers.save_model(helpers.Net(), tmp_path / "model.pt")
    before = path.read_bytes()

    def interrupted_save(state, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        helpers.save_model(helpers.Net(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_truncated_checkpoint_is_named_in_the_error(tmp_path):
    path = helpers.save_model(helpers.Net(), tmp_path / "model.pt")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(helpers.CheckpointError, match="model.pt is not a readable PyTorch checkpoint"):
        helpers.load_model(path, "cpu")


def test_weights_of_another_network_do_not_fit_net(tmp_path):
    other = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    path = helpers.save_model(other, tmp_path / "other.pt")
    with pytest.raises(helpers.CheckpointError, match="do not fit Net"):
        helpers.load_model(path, "cpu")


def test_a_checkpoint_that_is_not_a_state_dict_does_not_fit_net(tmp_path):
    path = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), path)
    with pytest.raises(helpers.CheckpointError, match="do not fit Net"):
        helpers.load_model(path, "cpu")


def test_a_missing_checkpoint_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        helpers.load_model(tmp_path / "missing.pt", "cpu")


def test_skipping_a_step_of_the_preparation_changes_what_the_network_sees():
    page = helpers.render_digit(7, size=100, canvas=(200, 180))  # dark ink on light paper
    centred = helpers.preprocess_digit(page)[0, 0]
    in_the_corner = helpers.preprocess_digit(page, centre=False)[0, 0]
    background = centred.min()
    assert (in_the_corner[0] > background).any() and (in_the_corner[:, 0] > background).any()
    assert not (centred[0] > background).any()  # centred by mass, the top row stays empty
    with pytest.raises(ValueError, match="no ink"):
        helpers.preprocess_digit(page, invert=False)  # dark ink on light paper, not inverted: nothing is bright
    torch.testing.assert_close(helpers.preprocess_digit(page, invert=True), helpers.preprocess_digit(page))
