import io
import json
import sys
from contextlib import redirect_stdout

import pytest
import torch
from torchsummary import summary

import helpers
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from exercises import PoolAfterConv1  # noqa: E402  (exercise 4 done: the first max-pool after conv1)

# The course's architecture table: (layer, output shape, parameters).
SEED_TABLE = [
    ("Conv2d-1", "[-1, 8, 26, 26]", "80"),
    ("Conv2d-2", "[-1, 16, 24, 24]", "1,168"),
    ("Conv2d-3", "[-1, 64, 10, 10]", "9,280"),
    ("Conv2d-4", "[-1, 16, 8, 8]", "9,232"),
    ("Conv2d-5", "[-1, 8, 2, 2]", "1,160"),
    ("Linear-6", "[-1, 64]", "2,112"),
    ("Linear-7", "[-1, 10]", "650"),
]


def test_net_has_the_courses_23682_parameters():
    assert helpers.count_parameters(helpers.Net()) == 23_682


def test_forward_maps_a_batch_to_ten_raw_scores_that_softmax_makes_probabilities():
    torch.manual_seed(0)
    scores = helpers.Net()(torch.randn(5, 1, 28, 28))
    assert scores.shape == (5, 10)
    # scores, not log-probabilities: exponentiated they do not sum to 1 (log-softmax is not applied twice)
    assert not torch.allclose(scores.exp().sum(dim=1), torch.ones(5), atol=1e-3)
    probabilities = helpers.predict_probabilities(helpers.Net(), torch.randn(5, 1, 28, 28))
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(5))


def test_torchsummary_table_matches_the_seed_row_for_row():
    text = io.StringIO()
    with redirect_stdout(text):
        summary(helpers.Net(), (1, 28, 28), device="cpu")
    rows = [line.split(maxsplit=2) for line in text.getvalue().splitlines()
            if line.strip().startswith(("Conv2d-", "Linear-", "ReLU", "MaxPool"))]
    table = [(name, rest.rsplit(maxsplit=1)[0].strip(), rest.rsplit(maxsplit=1)[1])
             for name, *parts in rows for rest in [" ".join(parts)]]
    assert table == SEED_TABLE
    assert "Total params: 23,682" in text.getvalue()


def test_prepare_model_keeps_the_outputs_of_the_plain_model():
    torch.manual_seed(0)
    model = helpers.Net()
    images = torch.randn(4, 1, 28, 28)
    expected = model(images)
    prepared = helpers.prepare_model(model, torch.device("cpu"))
    torch.testing.assert_close(prepared(images), expected)


def test_the_architecture_table_follows_a_moved_max_pool():
    rows = helpers.architecture_table(PoolAfterConv1())
    assert [row["layer"] for row in rows] == ["conv1", "max-pool", "conv2", "conv3", "conv4", "max-pool",
                                              "conv5", "fc1", "fc2"]
    assert [row["output"] for row in rows[:7]] == [(8, 26, 26), (8, 13, 13), (16, 11, 11), (64, 9, 9),
                                                   (16, 7, 7), (16, 3, 3), (8, 1, 1)]
    assert [row["receptive field"] for row in rows[:7]] == [3, 4, 8, 12, 16, 18, 26]
    assert sum(row["parameters"] for row in rows) == 23_682 - 2_112 + 64 * (8 + 1)


def test_a_changed_network_is_saved_reloaded_and_counted_as_itself(tmp_path):
    torch.manual_seed(0)
    moved = PoolAfterConv1()
    path = helpers.save_model(moved, tmp_path / "moved.pt")
    reloaded = helpers.load_model(path, "cpu", model=PoolAfterConv1())
    images = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(reloaded(images), moved.eval()(images))
    with pytest.raises(helpers.CheckpointError, match="do not fit Net"):
        helpers.load_model(path, "cpu")  # the course's Net has another fc1
    helpers.write_metrics(tmp_path / "metrics.json", [], reloaded)
    assert json.loads((tmp_path / "metrics.json").read_text())["params"] == 22_146


def test_most_confident_mistakes_lists_only_mistakes_the_surest_first():
    probabilities = torch.tensor([[0.9, 0.1, 0.0],   # right (label 0)
                                  [0.2, 0.8, 0.0],   # wrong: said 1 at 0.8
                                  [0.1, 0.3, 0.6],   # wrong: said 2 at 0.6
                                  [0.05, 0.0, 0.95],  # wrong: said 2 at 0.95
                                  [0.0, 0.99, 0.01]])  # right (label 1), surer than any mistake
    labels = torch.tensor([0, 0, 1, 0, 1])
    assert helpers.most_confident_mistakes(probabilities, labels).tolist() == [3, 1, 2]
    assert helpers.most_confident_mistakes(probabilities, labels, count=2).tolist() == [3, 1]
    assert helpers.most_confident_mistakes(probabilities, torch.tensor([0, 1, 2, 2, 1])).tolist() == []
