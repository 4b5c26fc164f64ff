import dataclasses
import math
import warnings

import pytest
import torch
from torch import nn

import helpers


class FixedPredictions(nn.Module):
    """A 'model' whose scores have the given probabilities as their softmax, one row per input image."""

    def __init__(self, probabilities: list[list[float]]) -> None:
        super().__init__()
        self.scores = torch.tensor(probabilities).log() + 5.0  # any constant shift: softmax ignores it

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scores[images[:, 0, 0, 0].long()]  # pixel (0, 0) holds the row index


def test_evaluate_returns_the_mean_loss_per_sample_and_accuracy_in_percent():
    probabilities = [
        [0.5, 0.5, 0.0],  # label 0: loss ln 2, a tie that argmax breaks towards 0 (correct)
        [0.25, 0.75, 0.0],  # label 0: loss ln 4, wrong
        [0.0, 0.0, 1.0],  # label 2: loss 0, right
    ]
    images = torch.arange(3.0).reshape(3, 1, 1, 1).expand(3, 1, 28, 28)
    labels = torch.tensor([0, 0, 2])
    # batch size 2 leaves a partial batch: the mean must still divide by 3 samples
    loss, accuracy = helpers.evaluate(FixedPredictions(probabilities), images, labels, batch_size=2)
    assert loss == pytest.approx((math.log(2) + math.log(4) + 0) / 3)
    assert accuracy == pytest.approx(200 / 3)


def test_a_few_steps_lower_the_training_loss(fake_mnist):
    data = helpers.load_mnist(fake_mnist)
    helpers.set_seed(0)
    model = helpers.Net()
    before, _ = helpers.evaluate(model, data.train_images, data.train_labels)
    # Adam starts this deep, narrow network faster than SGD: 30 steps are enough
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        batches = helpers.shuffled_batches(len(data.train_labels), 16, generator)
        helpers.train_one_epoch(model, optimizer, constant, data.train_images, data.train_labels, batches,
                                helpers.Tally())
    after, _ = helpers.evaluate(model, data.train_images, data.train_labels)
    assert after < 0.5 * before


def fit_fake(data, seed, **options):
    helpers.set_seed(seed)
    model = helpers.prepare_model(helpers.Net(), torch.device("cpu"))
    history = helpers.fit(model, data, epochs=2, seed=seed, progress=False, **options)
    return model, history


def without_seconds(history):
    return [{key: value for key, value in record.items() if key != "seconds"} for record in history]


def test_the_same_seed_gives_identical_weights_and_history(fake_mnist):
    data = helpers.load_mnist(fake_mnist)
    first_model, first_history = fit_fake(data, seed=7)
    second_model, second_history = fit_fake(data, seed=7)
    _, other_history = fit_fake(data, seed=8)
    assert without_seconds(first_history) == without_seconds(second_history)
    second_weights = second_model.state_dict()
    for name, weight in first_model.state_dict().items():
        assert torch.equal(weight, second_weights[name]), name
    assert without_seconds(first_history) != without_seconds(other_history)


def test_history_has_one_record_per_epoch_with_every_metric(fake_mnist):
    _, history = fit_fake(helpers.load_mnist(fake_mnist), seed=0)
    assert [record["epoch"] for record in history] == [1, 2]
    for record in history:
        assert set(record) == {"epoch", "train_loss", "train_accuracy", "test_loss",
                               "test_accuracy", "lr", "seconds"}  # no validation split: the test set
        assert 0 <= record["test_accuracy"] <= 100 and record["seconds"] > 0


def test_a_diverging_loss_stops_training_and_names_the_learning_rate(fake_mnist):
    with pytest.raises(helpers.TrainingDiverged, match="learning rate") as caught:
        fit_fake(helpers.load_mnist(fake_mnist), seed=0, lr=1e4)
    assert caught.value.history == []


def test_an_interrupt_keeps_the_history_of_the_completed_epochs(fake_mnist):
    data = helpers.load_mnist(fake_mnist)
    real_train_one_epoch = helpers.train_one_epoch
    calls = []

    def interrupted_in_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_one_epoch(*args, **kwargs)

    _, history = fit_fake(data, seed=0, train_one_epoch=interrupted_in_second_epoch)
    assert [record["epoch"] for record in history] == [1]


def test_fit_refuses_settings_that_cannot_train(fake_mnist):
    data = helpers.load_mnist(fake_mnist)
    for options, named in (({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch size"), ({"lr": 0.0}, "learning rate"),
                           ({"lr": -1.0}, "learning rate"), ({"momentum": 0.97}, "momentum"),
                           ({"label_smoothing": 1.0}, "label smoothing")):
        with pytest.raises(ValueError, match=named):
            helpers.fit(helpers.Net(), data, progress=False, **options)


def test_one_short_epoch_on_real_mnist_is_far_above_chance(real_mnist):
    subset = helpers.MnistTensors(
        train_images=real_mnist.train_images[:8000], train_labels=real_mnist.train_labels[:8000],
        test_images=real_mnist.test_images[:2000], test_labels=real_mnist.test_labels[:2000],
        mean=real_mnist.mean, std=real_mnist.std,
    )
    helpers.set_seed(1)
    model = helpers.prepare_model(helpers.Net(), torch.device("cpu"))
    history = helpers.fit(model, subset, epochs=1, seed=1, progress=False)
    assert history[0]["test_accuracy"] > 80.0  # chance is 10%


def test_the_loop_the_notebook_shows_trains_exactly_like_fit(fake_mnist):
    data = helpers.load_mnist(fake_mnist)
    fitted, _ = fit_fake(data, seed=3)  # two epochs, with augmentation and label smoothing
    # The notebook shows train_one_epoch; written out by hand around it, it must give fit's weights.
    helpers.set_seed(3)
    model = helpers.prepare_model(helpers.Net(), torch.device("cpu"))
    generator = torch.Generator().manual_seed(3)
    steps_per_epoch = math.ceil(len(data.train_labels) / helpers.BATCH_SIZE)
    optimizer, scheduler = helpers.make_optimizer(model, lr=helpers.LEARNING_RATE, momentum=helpers.MOMENTUM,
                                                  total_steps=2 * steps_per_epoch)
    for _ in range(2):
        batches = helpers.shuffled_batches(len(data.train_labels), helpers.BATCH_SIZE, generator)
        augmented = helpers.augment_images(data.train_images, generator)
        helpers.train_one_epoch(model, optimizer, scheduler, augmented, data.train_labels, batches,
                                helpers.Tally(), label_smoothing=helpers.LABEL_SMOOTHING)
    by_hand = model.state_dict()
    for name, weight in fitted.state_dict().items():
        assert torch.equal(weight, by_hand[name]), name


def test_with_a_validation_split_fit_reports_on_it_and_never_reads_the_test_set(fake_mnist):
    data = helpers.load_mnist(fake_mnist, validation=20)
    unreadable = torch.full_like(data.test_images, float("nan"))  # any use of it would poison the metrics
    data = dataclasses.replace(data, test_images=unreadable, test_labels=data.test_labels * 0 - 1)
    _, history = fit_fake(data, seed=0)
    assert set(history[0]) == {"epoch", "train_loss", "train_accuracy", "validation_loss",
                               "validation_accuracy", "lr", "seconds"}
    assert all(math.isfinite(record["validation_loss"]) for record in history)
    assert "validation loss" in helpers.format_epoch(history[0])


def test_a_network_stuck_at_chance_level_warns_and_names_dead_relus(fake_mnist):
    data = helpers.load_mnist(fake_mnist)
    helpers.set_seed(0)
    model = helpers.Net()
    with torch.no_grad():
        model.fc1.bias.fill_(-100.0)  # every unit of fc1 outputs 0: no gradient reaches the layers below
    with pytest.warns(RuntimeWarning, match="dead ReLUs.*Lower the peak learning rate"):
        helpers.fit(model, data, epochs=1, progress=False)


def test_a_network_still_at_chance_but_alive_does_not_warn(fake_mnist):
    # Ten steps on noise leave the network at chance level, but its outputs still depend on the image.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, history = fit_fake(helpers.load_mnist(fake_mnist), seed=0)
    assert history[-1]["train_accuracy"] < helpers.CHANCE_WARNING_ACCURACY


class FakeShell:
    pass


@pytest.mark.parametrize(("shell", "environment", "expected"), [
    (None, {}, "text"),  # a terminal
    ("TerminalInteractiveShell", {}, "text"),  # an IPython console
    ("ZMQInteractiveShell", {}, "off"),  # a kernel nobody watches: nbconvert, papermill, CI
    ("ZMQInteractiveShell", {"JPY_SESSION_NAME": "mnist_cnn.ipynb"}, "widget"),  # JupyterLab, Notebook 7
    ("ZMQInteractiveShell", {"VSCODE_PID": "1"}, "widget"),
    ("ZMQInteractiveShell", {"KAGGLE_KERNEL_RUN_TYPE": "Batch"}, "off"),  # Kaggle's "save and run all"
    ("ZMQInteractiveShell", {"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "widget"),
])
def test_progress_is_a_widget_when_watched_text_in_a_terminal_and_off_when_headless(
        monkeypatch, shell, environment, expected):
    import IPython

    for name in ("JPY_SESSION_NAME", "VSCODE_PID", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    instance = type(shell, (FakeShell,), {})() if shell else None
    monkeypatch.setattr(IPython, "get_ipython", lambda: instance)
    monkeypatch.setitem(__import__("sys").modules, "IPython", IPython)
    assert helpers.progress_mode("auto") == expected
    assert helpers.progress_mode(False) == "off" and helpers.progress_mode("text") == "text"


def test_colab_gets_the_widget_though_its_shell_is_a_subclass_with_another_name(monkeypatch):
    import types

    import IPython

    jupyter_shell = type("ZMQInteractiveShell", (FakeShell,), {})
    colab_shell = type("Shell", (jupyter_shell,), {})()  # google.colab._shell.Shell
    monkeypatch.setattr(IPython, "get_ipython", lambda: colab_shell)
    monkeypatch.setitem(__import__("sys").modules, "google.colab", types.ModuleType("google.colab"))
    for name in ("JPY_SESSION_NAME", "VSCODE_PID", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(name, raising=False)
    assert helpers.progress_mode("auto") == "widget"
