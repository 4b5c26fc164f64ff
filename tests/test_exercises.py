"""The notebook's exercises check themselves: right answers pass, typical mistakes are named, nothing raises."""

import ast
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import helpers

EXERCISES = [helpers.max_pool_exercise, helpers.conv_parameters_exercise, helpers.output_size_exercise,
             helpers.nesterov_exercise, helpers.your_network_exercise, helpers.training_step_exercise]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The checks run networks on two images, which a second thread only slows down when the cores are busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def exercise_ids(exercises):
    return [exercise.name for exercise in exercises]


# PyTorch's own answers: that they pass shows the checks expect what PyTorch computes.


def pytorch_max_pool(grid):
    return F.max_pool2d(grid[None, None], 2)[0, 0]


def pytorch_conv_parameters(in_channels, out_channels, kernel_size):
    return helpers.count_parameters(nn.Conv2d(in_channels, out_channels, kernel_size))


def pytorch_output_size(size, kernel_size, padding=0, stride=1):
    convolution = nn.Conv2d(1, 1, kernel_size, stride=stride, padding=padding)
    return convolution(torch.zeros(1, 1, size, size)).shape[-1]


def pytorch_nesterov_step(weight, velocity, gradient, lr, momentum):
    parameter = torch.tensor(weight, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=lr, momentum=momentum, nesterov=True)
    optimizer.state[parameter]["momentum_buffer"] = torch.tensor(velocity, dtype=torch.float64)
    parameter.grad = torch.tensor(gradient, dtype=torch.float64)
    optimizer.step()
    return parameter.item(), optimizer.state[parameter]["momentum_buffer"].item()


def pytorch_training_step(model, optimizer, images, labels):
    """The step of helpers.train_one_epoch, without label smoothing."""
    loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize("exercise, answer", [
    (helpers.max_pool_exercise, pytorch_max_pool),
    (helpers.conv_parameters_exercise, pytorch_conv_parameters),
    (helpers.output_size_exercise, pytorch_output_size),
    (helpers.nesterov_exercise, pytorch_nesterov_step),
    (helpers.your_network_exercise, helpers.Net),
    (helpers.training_step_exercise, pytorch_training_step),
], ids=exercise_ids(EXERCISES))
def test_pytorchs_own_answer_passes(exercise, answer):
    passed, message = exercise.feedback(answer)
    assert passed, message


def test_pytorchs_first_nesterov_step_starts_from_a_velocity_of_zero():
    parameter = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=0.1, momentum=0.9, nesterov=True)
    parameter.grad = torch.tensor(0.5, dtype=torch.float64)
    optimizer.step()  # no momentum buffer yet: PyTorch starts it at the gradient
    assert (parameter.item(), optimizer.state[parameter]["momentum_buffer"].item()) == pytest.approx(
        pytorch_nesterov_step(1.0, 0.0, 0.5, 0.1, 0.9))


@pytest.mark.parametrize("exercise", EXERCISES, ids=exercise_ids(EXERCISES))
def test_each_solution_passes_its_own_check(exercise):
    namespace = {"torch": torch, "nn": nn, "F": F}
    exec(exercise.solution_code, namespace)
    passed, message = exercise.feedback(namespace[exercise.name])
    assert passed, message


# Wrong answers a student might write.


def forgot_return(grid):
    pytorch_max_pool(grid)


def stride_one_max_pool(grid):
    return F.max_pool2d(grid[None, None], 2, stride=1)[0, 0]


def max_pool_starting_from_zero(grid):
    return pytorch_max_pool(grid).clamp(min=0)


def classic_momentum_step(weight, velocity, gradient, lr, momentum):
    velocity = momentum * velocity + gradient
    return weight - lr * velocity, velocity


def step_without_updating_velocity(weight, velocity, gradient, lr, momentum):
    return weight - lr * (gradient + momentum * velocity), velocity


def step_up_the_gradient(weight, velocity, gradient, lr, momentum):
    velocity = momentum * velocity + gradient
    return weight + lr * (gradient + momentum * velocity), velocity


class SoftmaxNet(helpers.Net):
    def forward(self, x):
        return F.softmax(super().forward(x), dim=1)


class LogSoftmaxNet(helpers.Net):
    def forward(self, x):
        return F.log_softmax(super().forward(x), dim=1)


class ReluScoresNet(helpers.Net):
    def forward(self, x):
        return F.relu(super().forward(x))


class UnusedLayerNet(helpers.Net):
    def __init__(self):
        super().__init__()
        self.spare = nn.Linear(10, 10)


class WrongLinearSizeNet(helpers.Net):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(50, 64)  # the flattened features are 8 * 2 * 2 = 32


class FiveScoresNet(helpers.Net):
    def __init__(self):
        super().__init__()
        self.fc2 = nn.Linear(64, 5)


class DetachedNet(helpers.Net):
    def forward(self, x):
        return super().forward(x).detach()


class LayersInAListNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = [nn.Linear(28 * 28, 10)]  # a plain list: nn.Module does not see the layer

    def forward(self, x):
        return self.layers[0](torch.flatten(x, 1))


class NeedsArgumentsNet(helpers.Net):
    def __init__(self, width):
        super().__init__()


def step_without_zero_grad(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def step_before_backward(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    optimizer.step()  # with the gradients the previous step left
    optimizer.zero_grad()
    loss.backward()
    return loss.item()


def step_without_step(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    optimizer.zero_grad()
    loss.backward()
    return loss.item()


def step_clearing_the_gradients_too_late(model, optimizer, images, labels):
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.zero_grad()  # clears the gradients backward just computed
    optimizer.step()
    return loss.item()


def step_on_probabilities(model, optimizer, images, labels):
    return pytorch_training_step(lambda x: F.softmax(model(x), dim=1), optimizer, images, labels)


def step_on_another_loss(model, optimizer, images, labels):
    loss = model(images).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def step_returning_nothing(model, optimizer, images, labels):
    pytorch_training_step(model, optimizer, images, labels)


def step_returning_the_loss_after(model, optimizer, images, labels):
    pytorch_training_step(model, optimizer, images, labels)
    return F.cross_entropy(model(images), labels).item()


MISTAKES = [
    # exercise, wrong answer, what the feedback must say
    pytest.param(helpers.max_pool_exercise, lambda grid: F.avg_pool2d(grid[None, None], 2)[0, 0],
                 ["average pooling", "mean"], id="max_pool-average-pooling"),
    pytest.param(helpers.max_pool_exercise, stride_one_max_pool, ["shape (3, 3)", "expected (2, 2)", "stride 1"],
                 id="max_pool-stride-1"),
    pytest.param(helpers.max_pool_exercise, lambda grid: grid, ["shape (4, 4)", "expected (2, 2)"],
                 id="max_pool-wrong-shape"),
    pytest.param(helpers.max_pool_exercise, lambda grid: pytorch_max_pool(grid).tolist(), ["list", "not a tensor"],
                 id="max_pool-list"),
    pytest.param(helpers.max_pool_exercise, forgot_return, ["returned None", "forget `return`"],
                 id="max_pool-no-return"),
    pytest.param(helpers.max_pool_exercise, max_pool_starting_from_zero, ["all negative", "not from 0"],
                 id="max_pool-maximum-from-zero"),
    pytest.param(helpers.max_pool_exercise, pytorch_max_pool(torch.zeros(4, 4)),
                 ["pass the function max_pool_2x2 itself", "Tensor"], id="max_pool-result-not-function"),
    pytest.param(helpers.conv_parameters_exercise, lambda i, o, k: o * i * k * k,
                 ["returned 9,216, expected 9,280", "biases are missing", "off by 64"], id="conv-no-bias"),
    pytest.param(helpers.conv_parameters_exercise, lambda i, o, k: o * (k * k + 1),
                 ["returned 640, expected 9,280", "16 input channels"], id="conv-no-input-channels"),
    pytest.param(helpers.conv_parameters_exercise, lambda i, o, k: o * i * (k * k + 1),
                 ["returned 10,240, expected 9,280", "one bias, not one per input channel"], id="conv-bias-per-input"),
    pytest.param(helpers.conv_parameters_exercise, lambda i, o, k: float(o * (i * k * k + 1)),
                 ["9280.0, a float", "the int 9,280"], id="conv-float"),
    pytest.param(helpers.output_size_exercise, lambda size, kernel_size, padding=0, stride=1:
                 (size + 2 * padding - kernel_size) // stride, ["returned 25, expected 26", "off by one"],
                 id="output_size-no-plus-one"),
    pytest.param(helpers.output_size_exercise, lambda size, kernel_size, padding=0, stride=1:
                 (size + padding - kernel_size) // stride + 1, ["returned 27, expected 28", "both sides"],
                 id="output_size-padding-once"),
    pytest.param(helpers.output_size_exercise, lambda size, kernel_size, padding=0, stride=1:
                 math.ceil((size + 2 * padding - kernel_size) / stride) + 1,
                 ["stride=2) returned 14, expected 13", "round down"], id="output_size-rounds-up"),
    pytest.param(helpers.output_size_exercise, lambda size, kernel_size, padding=0, stride=1:
                 (size + 2 * padding - kernel_size) / stride + 1, ["returned 26.0, a float", "the int 26", "//"],
                 id="output_size-float"),
    pytest.param(helpers.output_size_exercise, lambda size, kernel_size, padding=0, stride=1:
                 size + 2 * padding - kernel_size + 1, ["returned 26, expected 13", "stride is left out"],
                 id="output_size-no-stride"),
    pytest.param(helpers.nesterov_exercise, classic_momentum_step,
                 ["returned (0.95, 0.5), expected (0.905, 0.5)", "classic momentum"], id="nesterov-classic"),
    pytest.param(helpers.nesterov_exercise, step_without_updating_velocity, ["velocity came back unchanged"],
                 id="nesterov-velocity-not-updated"),
    pytest.param(helpers.nesterov_exercise, step_up_the_gradient,
                 ["returned (1.095, 0.5), expected (0.905, 0.5)", "up the gradient"], id="nesterov-sign"),
    pytest.param(helpers.nesterov_exercise, lambda weight, velocity, gradient, lr, momentum: weight - lr * gradient,
                 ["two numbers", "(new_weight, new_velocity)"], id="nesterov-one-number"),
    pytest.param(helpers.your_network_exercise, SoftmaxNet, ["sums to 1", "softmax", "raw scores"],
                 id="network-softmax"),
    pytest.param(helpers.your_network_exercise, LogSoftmaxNet, ["ends in log_softmax", "raw scores"],
                 id="network-log-softmax"),
    pytest.param(helpers.your_network_exercise, ReluScoresNet, ["ReLU after the last layer"], id="network-relu"),
    pytest.param(helpers.your_network_exercise, UnusedLayerNet, ["spare.weight, spare.bias", "unused layer"],
                 id="network-unused-layer"),
    pytest.param(helpers.your_network_exercise, WrongLinearSizeNet,
                 ["mat1 and mat2", "torch.flatten(x, 1)", "in_features"], id="network-linear-input-size"),
    pytest.param(helpers.your_network_exercise, FiveScoresNet, ["shape (2, 5)", "expected (2, 10)"],
                 id="network-five-scores"),
    pytest.param(helpers.your_network_exercise, DetachedNet, ["no gradient flows back"], id="network-detached"),
    pytest.param(helpers.your_network_exercise, LayersInAListNet, ["no trainable parameters", "nn.ModuleList"],
                 id="network-layers-in-a-list"),
    pytest.param(helpers.your_network_exercise, NeedsArgumentsNet, ["no arguments", "TypeError"],
                 id="network-needs-arguments"),
    pytest.param(helpers.your_network_exercise, torch.zeros(2, 10), ["network's class", "not a Tensor"],
                 id="network-not-a-module"),
    pytest.param(helpers.training_step_exercise, step_without_zero_grad, ["added to the previous step's",
                 "optimizer.zero_grad()"], id="step-no-zero-grad"),
    pytest.param(helpers.training_step_exercise, step_before_backward, ["before loss.backward()"],
                 id="step-before-backward"),
    pytest.param(helpers.training_step_exercise, step_without_step, ["did not move", "optimizer.step()"],
                 id="step-no-step"),
    pytest.param(helpers.training_step_exercise, step_clearing_the_gradients_too_late,
                 ["gradients were empty", "then loss.backward(), then optimizer.step()"], id="step-zero-grad-late"),
    pytest.param(helpers.training_step_exercise, step_on_probabilities, ["probabilities", "raw scores"],
                 id="step-softmax"),
    pytest.param(helpers.training_step_exercise, step_on_another_loss, ["not as one SGD step"], id="step-mse"),
    pytest.param(helpers.training_step_exercise, step_returning_nothing, ["returned None", "loss.item()"],
                 id="step-no-return"),
    pytest.param(helpers.training_step_exercise, step_returning_the_loss_after, ["returned", "before the step"],
                 id="step-loss-after"),
]


@pytest.mark.parametrize("exercise, answer, words", MISTAKES)
def test_a_typical_mistake_fails_with_feedback_that_names_it(exercise, answer, words):
    passed, message = exercise.feedback(answer)
    assert not passed
    for word in words:
        assert word in message


def raise_value_error(*args, **kwargs):
    raise ValueError("something went wrong")


class RaisingNet(helpers.Net):
    def forward(self, x):
        raise_value_error()


@pytest.mark.parametrize("exercise, answer", [
    (helpers.max_pool_exercise, raise_value_error),
    (helpers.conv_parameters_exercise, raise_value_error),
    (helpers.output_size_exercise, raise_value_error),
    (helpers.nesterov_exercise, raise_value_error),
    (helpers.your_network_exercise, RaisingNet),
    (helpers.training_step_exercise, raise_value_error),
], ids=exercise_ids(EXERCISES))
def test_an_answer_that_raises_is_reported_not_raised(exercise, answer):
    passed, message = exercise.feedback(answer)
    assert not passed
    assert "raised ValueError: something went wrong" in message


def test_check_prints_correct_or_not_yet_and_returns_nothing(capsys):
    assert helpers.max_pool_exercise.check(pytorch_max_pool) is None
    assert capsys.readouterr().out.startswith("Correct: ")
    assert helpers.max_pool_exercise.check(stride_one_max_pool) is None
    assert capsys.readouterr().out.startswith("Not yet: ")


@pytest.mark.parametrize("exercise", EXERCISES, ids=exercise_ids(EXERCISES))
def test_hint_and_solution_print_text(exercise, capsys):
    exercise.hint()
    assert capsys.readouterr().out.startswith("Hint: ")
    exercise.solution()
    assert exercise.name in capsys.readouterr().out


def test_a_working_network_is_told_its_parameter_count_next_to_the_courses():
    class SmallNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(28 * 28, 10)  # 7,850 parameters

        def forward(self, x):
            return self.fc(torch.flatten(x, 1))

    passed, message = helpers.your_network_exercise.feedback(SmallNet)
    assert passed
    assert "7,850 trainable parameters" in message
    assert "Net has 23,682" in message


def test_checking_a_network_leaves_the_random_numbers_and_the_model_as_they_were():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    state = {name: value.clone() for name, value in model.state_dict().items()}
    torch.manual_seed(0)
    expected_draw = torch.rand(3)
    torch.manual_seed(0)
    passed, message = helpers.your_network_exercise.feedback(model)
    assert passed, message
    assert torch.equal(torch.rand(3), expected_draw)
    for name, value in model.state_dict().items():
        assert torch.equal(value, state[name]), name  # batch-norm statistics untouched
    assert all(parameter.grad is None for parameter in model.parameters())


# The worked solutions in the notebook step in only while the student's cell is still empty.


def empty_stub(grid):
    """As an exercise cell gives it."""
    ...  # your code here


def answered_but_wrong(grid):
    ...  # the stub's line, left in
    return grid


class EmptyNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        ...  # your layers here

    def forward(self, x):
        ...  # (N, 1, 28, 28) images -> (N, 10) scores


class LayersButNoForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        ...


@pytest.mark.parametrize("answer, empty", [
    (empty_stub, True), (EmptyNetwork, True), (forgot_return, False), (answered_but_wrong, False),
    (pytorch_max_pool, False), (LayersButNoForward, False), (helpers.Net, False), (None, False),
])
def test_unanswered_is_true_only_for_an_empty_stub(answer, empty):
    assert helpers.unanswered(answer) is empty


def test_still_empty_says_whose_code_the_check_will_run(capsys):
    assert helpers.still_empty(EmptyNetwork) is True
    assert capsys.readouterr().out == (
        "Your EmptyNetwork above is still empty, so the check below runs this worked solution.\n")
    assert helpers.still_empty(answered_but_wrong) is False
    assert capsys.readouterr().out == ""  # a student's answer, even a wrong one, is theirs: nothing to say


def notebook_exercise_cells():
    """(exercise, its stub cell's source, its worked-solution cell's source) for each of the notebook's exercises."""
    import nbformat

    from conftest import ROOT

    cells = nbformat.read(ROOT / "mnist_cnn.ipynb", as_version=4).cells
    by_name = {exercise.name: exercise for exercise in EXERCISES}
    found = []
    for index, cell in enumerate(cells):
        if "exercise" in cell.metadata.get("tags", []):
            name = ast.parse(cell.source).body[0].name  # the stub's def or class
            solution = cells[index + 1]
            assert "solution" in solution.metadata.get("tags", []), f"no worked solution under {name}'s cell"
            found.append(pytest.param(by_name[name], cell.source, solution.source, id=name))
    assert sorted(param.id for param in found) == sorted(by_name)
    return found


@pytest.mark.parametrize("exercise, stub, solution", notebook_exercise_cells())
def test_a_worked_solution_cell_fills_an_empty_stub_and_keeps_a_students_answer(exercise, stub, solution, capsys):
    namespace = {"torch": torch, "nn": nn, "F": F, "helpers": helpers}
    exec(stub, namespace)
    assert helpers.unanswered(namespace[exercise.name]), "the exercise cell's stub should count as empty"
    exec(solution, namespace)  # stub, then solution: the saved run, whose check passes
    assert capsys.readouterr().out.startswith(f"Your {exercise.name} above is still empty")
    passed, message = exercise.feedback(namespace[exercise.name])
    assert passed, message

    def students_answer(*args, **kwargs):  # written, if wrong
        return 0

    namespace[exercise.name] = students_answer
    exec(solution, namespace)  # Shift-Enter through the solution cell: the answer stays
    assert namespace[exercise.name] is students_answer
    assert capsys.readouterr().out == ""
