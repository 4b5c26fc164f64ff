"""Inspection and plots: the confusion matrix, the learning-rate range test and the figures, on tiny inputs."""

import dataclasses
import math

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import helpers

CHANCE = math.log(10)  # the loss of a network that guesses: ln 10 nats


@pytest.fixture(autouse=True)
def figures():
    """Draw without a screen, and close every figure a test makes."""
    backend = matplotlib.get_backend()
    plt.switch_backend("Agg")
    yield
    plt.close("all")
    plt.switch_backend(backend)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tensors this small gain nothing from a second thread, which waits for a core that other work
    may keep busy: on two busy cores a range test took ten times as long with two threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def titled_axes(figure: Figure) -> list:
    """The axes that show an image, in the order they were made (colorbars left out)."""
    return [axis for axis in figure.axes if axis.get_images()]


# --- confusion matrix -------------------------------------------------------------------------------


def test_confusion_matrix_counts_each_image_in_its_true_row_and_predicted_column():
    labels = torch.tensor([3, 3, 3, 7, 7, 0])
    predictions = torch.tensor([3, 3, 8, 7, 1, 0])
    expected = torch.zeros(10, 10, dtype=torch.int64)
    expected[3, 3], expected[3, 8], expected[7, 7], expected[7, 1], expected[0, 0] = 2, 1, 1, 1, 1
    assert torch.equal(helpers.confusion_matrix(labels, predictions), expected)  # a 3 read as 8 is row 3, not row 8


def test_confusion_matrix_rows_sum_to_the_true_digits_and_columns_to_the_predictions():
    generator = torch.Generator().manual_seed(0)
    labels, predictions = torch.randint(0, 10, (500,), generator=generator), torch.randint(0, 10, (500,),
                                                                                          generator=generator)
    matrix = helpers.confusion_matrix(labels, predictions)
    assert matrix.shape == (10, 10) and matrix.sum() == 500
    assert torch.equal(matrix.sum(dim=1), torch.bincount(labels, minlength=10))
    assert torch.equal(matrix.sum(dim=0), torch.bincount(predictions, minlength=10))
    assert matrix.trace() == (labels == predictions).sum()


# --- learning-rate range test -----------------------------------------------------------------------


def synthetic_range_test() -> tuple[list[float], list[float]]:
    """A range test as it usually looks: flat just above chance, a dip to 0.4, then a climb past chance."""
    lrs = [1e-4 * 10 ** (step / 10) for step in range(41)]  # 1e-4 to 1, ten steps per decade
    losses = [CHANCE + 0.05] * 10  # steps 0-9: the network still guesses
    losses += [CHANCE - 0.1, CHANCE - 0.3]  # 10 is within noise of chance; 11 is clearly below it
    losses += [CHANCE - 0.3 - 0.12 * k for k in range(1, 12)]  # 12-22: falling to 0.68
    losses += [0.4, 0.5, 0.8, 1.2, 1.7, 2.1, 2.25]  # 23 is the best; 24-29 climb but stay below chance
    losses += [CHANCE + 0.2, 3.5, 5.0, 9.0, math.nan]  # 30 is back above chance
    losses += [math.nan] * (len(lrs) - len(losses))
    return lrs, losses


def test_range_test_landmarks_are_where_learning_starts_and_where_the_loss_climbs_back_above_chance():
    lrs, losses = synthetic_range_test()
    assert min(range(len(losses)), key=losses.__getitem__) == 23
    starts, explodes = helpers.range_test_landmarks(lrs, losses)
    assert starts == lrs[11]  # not 10, within 0.2 of chance; and the flat start above chance is no explosion
    assert explodes == lrs[30]


def test_a_range_test_that_ends_in_nan_explodes_at_the_nan_and_one_that_never_climbs_back_at_its_end():
    lrs = [0.001, 0.01, 0.1, 1.0]
    assert helpers.range_test_landmarks(lrs, [2.3, 1.5, 0.9, math.nan]) == (0.01, 1.0)
    assert helpers.range_test_landmarks(lrs[:3], [2.3, 1.5, 0.9]) == (0.01, 0.1)


@pytest.fixture
def fake_data(fake_mnist) -> helpers.MnistTensors:
    """80 tiny fake training images, on the CPU."""
    return helpers.load_mnist(fake_mnist, "cpu")


def range_test(data: helpers.MnistTensors, *, start_lr: float, end_lr: float, steps: int, **options):
    torch.manual_seed(0)
    return helpers.lr_range_test(helpers.Net(), data, start_lr=start_lr, end_lr=end_lr, steps=steps,
                                 batch_size=16, momentum=0.9, **options)


def test_the_range_test_stops_as_soon_as_the_loss_explodes(fake_data):
    lrs, losses = range_test(fake_data, start_lr=0.1, end_lr=1e5, steps=30)  # it stops after about 10
    assert 1 < len(lrs) == len(losses) < 30
    last = losses[-1]
    assert not math.isfinite(last) or last > 4 * min(losses)  # it stopped because the loss blew up...
    for step, loss in enumerate(losses[:-1]):  # ...and not a step later than that
        assert math.isfinite(loss) and loss <= 4 * min(losses[: step + 1])
    assert lrs == sorted(lrs) and lrs[0] == pytest.approx(0.1)


class ScriptedScores(torch.nn.Module):
    """Scores that make the loss of a 0 grow by `rate` nats a step, whatever the learning rate; nan at `nan_at`."""

    def __init__(self, rate: float, nan_at: int = 0) -> None:
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))  # something for the optimizer to hold
        self.rate, self.nan_at, self.calls = rate, nan_at, 0

    def forward(self, images):
        self.calls += 1
        scores = torch.zeros(len(images), 10)
        scores[:, 0] = math.nan if self.calls == self.nan_at else -self.rate * self.calls
        return scores + 0 * self.unused


ZEROS = helpers.MnistTensors(train_images=torch.zeros(64, 1, 28, 28), train_labels=torch.zeros(64, dtype=torch.int64),
                             test_images=torch.zeros(0, 1, 28, 28), test_labels=torch.zeros(0, dtype=torch.int64),
                             mean=0.0, std=1.0)


def test_the_range_test_stops_at_the_first_loss_above_four_times_its_best():
    # a steady climb, so that stopping at 4x, 8x or never gives runs of different lengths
    lrs, losses = helpers.lr_range_test(ScriptedScores(rate=1.0), ZEROS, start_lr=1e-3, end_lr=1.0, steps=100,
                                        batch_size=16, momentum=0.9)
    assert losses == sorted(losses)
    assert 1 < len(losses) < 100
    assert losses[-1] > 4 * losses[0] >= losses[-2]


def test_the_range_test_stops_at_the_first_loss_that_is_not_a_number():
    lrs, losses = helpers.lr_range_test(ScriptedScores(rate=0.0, nan_at=5), ZEROS, start_lr=1e-3, end_lr=1.0,
                                        steps=100, batch_size=16, momentum=0.9)
    assert len(lrs) == len(losses) == 5
    assert all(math.isfinite(loss) for loss in losses[:4]) and math.isnan(losses[4])


def test_a_gentle_range_test_runs_every_step_on_a_rate_that_grows_by_the_same_factor_each_step(fake_data):
    lrs, losses = range_test(fake_data, start_lr=1e-5, end_lr=1e-4, steps=8)
    assert len(lrs) == len(losses) == 8
    assert all(math.isfinite(loss) for loss in losses)
    factors = [later / earlier for earlier, later in zip(lrs, lrs[1:], strict=False)]
    assert factors == pytest.approx([10 ** (1 / 8)] * 7)
    assert lrs[0] == pytest.approx(1e-5) and lrs[-1] < 1e-4


def test_the_range_test_measures_fits_loss_with_label_smoothing(fake_data):
    zeros = dataclasses.replace(fake_data, train_labels=torch.zeros_like(fake_data.train_labels))
    torch.manual_seed(0)
    model = helpers.Net()
    with torch.no_grad():
        model.fc2.bias[0] = 10.0  # sure that every image is a 0: right, so only smoothing makes a loss
    scores = model(zeros.train_images)
    smoothed = F.cross_entropy(scores, zeros.train_labels, label_smoothing=helpers.LABEL_SMOOTHING).item()
    assert smoothed - F.cross_entropy(scores, zeros.train_labels).item() > 0.5
    # one batch of all 80 images: its first (bias-corrected) loss is that batch's loss before any step
    _, losses = helpers.lr_range_test(model, zeros, start_lr=1e-5, end_lr=1e-4, steps=1, batch_size=80,
                                      momentum=0.9)
    assert losses == [pytest.approx(smoothed, rel=1e-5)]


# --- figures ----------------------------------------------------------------------------------------


def test_plot_grid_shows_each_image_with_its_title_on_one_shared_colour_scale():
    images = torch.arange(5 * 28 * 28, dtype=torch.float32).reshape(5, 1, 28, 28)
    titles = [f"digit {i}" for i in range(5)]
    figure = helpers.plot_grid(images, titles, columns=4, colors=["red"] * 5, suptitle="five images")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 8  # two rows of four; the last three stay empty
    shown = titled_axes(figure)
    assert [axis.get_title() for axis in shown] == titles
    assert all(len(axis.get_images()) == 1 for axis in shown)
    assert all(axis.get_title() == "" for axis in figure.axes[5:])
    assert {axis.get_images()[0].get_clim() for axis in shown} == {(0.0, 5 * 28 * 28 - 1.0)}
    assert figure.get_suptitle() == "five images"


def test_plot_grid_with_a_colorbar_label_centres_the_scale_on_zero():
    images = torch.tensor([-1.0, 3.0]).reshape(2, 1, 1, 1).expand(2, 1, 4, 4)
    figure = helpers.plot_grid(images, ["a", "b"], columns=2, colorbar_label="weight")
    assert len(figure.axes) == 3  # two images and their colorbar
    assert {axis.get_images()[0].get_clim() for axis in titled_axes(figure)} == {(-3.0, 3.0)}
    assert figure.axes[-1].get_ylabel() == "weight"


def test_plot_maps_shows_one_titled_map_per_entry_each_with_a_colorbar():
    maps = {"digit": torch.rand(28, 28), "kernel": torch.randn(3, 3), "response": torch.randn(26, 26)}
    figure = helpers.plot_maps(maps, suptitle="a kernel on a digit", signed=("kernel",),
                               colorbar_labels={"digit": "pixel value", "kernel": "weight"})
    assert isinstance(figure, Figure)
    shown = titled_axes(figure)
    assert [axis.get_title() for axis in shown] == list(maps)
    assert len(figure.axes) == 2 * len(maps)
    colorbars = [axis for axis in figure.axes if axis not in shown]
    assert [axis.get_ylabel() for axis in colorbars] == ["pixel value", "weight", "value"]  # unnamed: "value"
    low, high = shown[1].get_images()[0].get_clim()
    assert low == -high and shown[1].get_images()[0].get_cmap().name == "RdBu_r"  # signed: 0 is white
    assert shown[0].get_images()[0].get_cmap().name == "gray"


def test_feature_maps_are_the_relu_output_of_every_conv_layer():
    torch.manual_seed(0)
    maps = helpers.feature_maps(helpers.Net(), torch.randn(1, 28, 28))
    assert {name: tuple(tensor.shape) for name, tensor in maps.items()} == {
        "conv1": (8, 26, 26), "conv2": (16, 24, 24), "conv3": (64, 10, 10), "conv4": (16, 8, 8), "conv5": (8, 2, 2)}
    assert all(tensor.min() >= 0 for tensor in maps.values())


def test_plot_feature_maps_has_the_input_and_one_row_per_conv_layer():
    torch.manual_seed(0)
    image = torch.randn(1, 28, 28)
    maps = helpers.feature_maps(helpers.Net(), image)
    figure = helpers.plot_feature_maps(image, maps, columns=4)
    assert isinstance(figure, Figure)
    grid = figure.axes[: len(maps) * 5]  # five rows of the input column and four channels; colorbars after
    assert len(figure.axes) == len(grid) + len(maps)  # one colorbar per row
    assert grid[0].get_title() == "input" and len(grid[0].get_images()) == 1
    row_titles = [grid[5 * row + 1].get_title(loc="left") for row in range(len(maps))]
    assert row_titles == ["conv1: 4 of 8 channels, 26 x 26", "conv2: 4 of 16 channels, 24 x 24",
                          "conv3: 4 of 64 channels, 10 x 10", "conv4: 4 of 16 channels, 8 x 8",
                          "conv5: 4 of 8 channels, 2 x 2"]
    every_channel = helpers.plot_feature_maps(image, maps, columns=8).axes[9 * 4 + 1].get_title(loc="left")
    assert every_channel == "conv5: 8 channels, 2 x 2"  # all of them shown
    for row in range(len(maps)):
        channels = grid[5 * row + 1 : 5 * row + 5]
        assert all(len(axis.get_images()) == 1 for axis in channels)
        assert len({axis.get_images()[0].get_clim() for axis in channels}) == 1  # one colour scale per layer


def test_plot_lr_range_marks_chance_the_landmarks_and_the_chosen_rate():
    lrs, losses = synthetic_range_test()
    figure = helpers.plot_lr_range(lrs, losses, chosen_lr=0.025)
    assert isinstance(figure, Figure)
    [axis] = figure.axes
    assert axis.get_title() == "Learning-rate range test" and axis.get_xscale() == "log"
    assert axis.get_xlabel() and axis.get_ylabel()
    lines = {line.get_label(): line for line in axis.get_lines()}
    assert list(lines["chance: ln 10 = 2.30 (guessing)"].get_ydata()) == [CHANCE, CHANCE]
    starts, explodes = helpers.range_test_landmarks(lrs, losses)
    assert list(lines[f"clearly below chance (by 0.2): {starts:.3g}"].get_xdata()) == [starts, starts]
    assert list(lines[f"back above chance: {explodes:.3g}"].get_xdata()) == [explodes, explodes]
    assert list(lines["chosen peak: 0.025"].get_xdata()) == [0.025, 0.025]
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert "chance: ln 10 = 2.30 (guessing)" in legend and len(legend) == 5


def test_plot_own_digits_shows_each_image_its_network_input_and_the_predicted_probabilities():
    torch.manual_seed(0)
    model = helpers.Net()
    digits = [helpers.render_digit(3, size=60, canvas=(90, 80)),
              helpers.render_digit(7, size=60, canvas=(60, 100), dark_ink=False)]
    figure = helpers.plot_own_digits(model, digits)
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 3 * len(digits)
    assert "28 x 28" in figure.get_suptitle()  # says what the middle column is
    for row, digit in enumerate(digits):
        original, prepared, bars = figure.axes[3 * row : 3 * row + 3]
        assert original.get_title() == f"original, {digit.width} x {digit.height} px"  # a PIL image's size
        assert prepared.get_title() == "preprocessed 28 x 28"
        assert prepared.get_images()[0].get_array().shape == (28, 28)
        predicted, probabilities = helpers.predict_digit(model, digit)
        heights = [patch.get_height() for patch in bars.patches]
        assert heights == pytest.approx(probabilities.tolist())
        assert bars.get_title() == f"predicted {predicted} ({probabilities[predicted]:.0%})"
        assert bars.get_xlabel() == "digit" and bars.get_ylabel() == "probability"
        highlighted = [d for d, patch in enumerate(bars.patches)
                       if patch.get_facecolor() == matplotlib.colors.to_rgba("tab:green")]
        assert highlighted == [predicted]


def history(split: str) -> list[dict]:
    return [{"epoch": 1, "train_loss": 0.9, "train_accuracy": 80.0, f"{split}_loss": 0.3, f"{split}_accuracy": 95.0},
            {"epoch": 2, "train_loss": 0.4, "train_accuracy": 96.0, f"{split}_loss": 0.1, f"{split}_accuracy": 99.0}]


@pytest.mark.parametrize("split", ["test", "validation"])
def test_plot_history_draws_loss_and_error_rate_per_epoch(split):
    figure = helpers.plot_history(history(split))
    assert isinstance(figure, Figure)
    loss_axis, error_axis = figure.axes
    assert loss_axis.get_title() == "Loss" and error_axis.get_title() == "Errors (100% - accuracy)"
    assert error_axis.get_yscale() == "log"
    assert [line.get_label() for line in error_axis.get_lines()] == ["train", split]
    train_errors, evaluation_errors = (list(line.get_ydata()) for line in error_axis.get_lines())
    assert train_errors == pytest.approx([20.0, 4.0]) and evaluation_errors == pytest.approx([5.0, 1.0])
    train_losses, evaluation_losses = (list(line.get_ydata()) for line in loss_axis.get_lines())
    assert train_losses == [0.9, 0.4] and evaluation_losses == [0.3, 0.1]
    for axis in (loss_axis, error_axis):
        assert axis.get_xlabel() == "epoch" and axis.get_ylabel()
        assert list(axis.get_xticks()) == [1, 2]
    figure.canvas.draw()
    percents = [label.get_text() for label in error_axis.get_yticklabels() if label.get_text()]
    assert "1%" in percents and "10%" in percents  # percentages on the log axis, not powers of ten


def test_plot_confusion_matrix_writes_each_count_at_its_true_row_and_predicted_column():
    matrix = helpers.confusion_matrix(torch.tensor([3, 3, 3, 7, 0]), torch.tensor([3, 3, 8, 7, 0]))
    figure = helpers.plot_confusion_matrix(matrix)
    assert isinstance(figure, Figure)
    axis = figure.axes[0]
    assert len(figure.axes) == 2  # the matrix and its colorbar
    assert axis.get_title() == "Confusion matrix (test set)"
    assert (axis.get_xlabel(), axis.get_ylabel()) == ("predicted digit", "true digit")
    counts = {text.get_position(): text.get_text() for text in axis.texts}
    assert counts == {(3, 3): "2", (8, 3): "1", (7, 7): "1", (0, 0): "1"}  # (x = predicted, y = true)
    # the colour scale is log(count + 1), but its ticks name the counts
    colorbar = figure.axes[1]
    assert [label.get_text() for label in colorbar.get_yticklabels()] == ["0", "1"]
    assert list(colorbar.get_yticks()) == [1, 2]


def test_save_figure_writes_the_png_and_a_copy_for_the_readme_in_new_folders(tmp_path):
    from PIL import Image

    figure = helpers.plot_confusion_matrix(torch.eye(10, dtype=torch.long) * 5)
    helpers.save_figure(figure, tmp_path / "outputs" / "matrix.png")
    helpers.save_figure(figure, tmp_path / "outputs" / "curves.png", copy_to=tmp_path / "images")
    assert sorted(path.name for path in (tmp_path / "outputs").iterdir()) == ["curves.png", "matrix.png"]
    assert [path.name for path in (tmp_path / "images").iterdir()] == ["curves.png"]
    with Image.open(tmp_path / "images" / "curves.png") as copy:
        assert copy.format == "PNG" and copy.width > 300  # the figure, at 100 dpi
    assert (tmp_path / "images" / "curves.png").read_bytes() == (tmp_path / "outputs" / "curves.png").read_bytes()
