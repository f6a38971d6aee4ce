"""Optimisers and learning-rate schedules against PyTorch's: same start, same gradients, same steps.

Each optimiser plugin, for several option combinations, is fed one fixed sequence of gradients
beside the same torch.optim optimiser; the parameters must agree to 1e-6 (float64) after every step.
"""
import inspect

import numpy as np
import pytest

from tinygrad_rnn import ConfigError, Tensor
from tinygrad_rnn.optim import CosineAnnealingLR, Optimizer, StepLR
from tinygrad_rnn.registry import optimizers

SHAPES = [(3, 4), (4,)]
STEPS = 5


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def _start_and_gradients(seed=0):
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    return start, grads


CASES = [
    ("sgd", "SGD", {}),
    ("sgd", "SGD", {"momentum": 0.9}),
    ("sgd", "SGD", {"momentum": 0.9, "nesterov": True}),
    ("sgd", "SGD", {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.05}),
    ("sgd", "SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("rmsprop", "RMSprop", {}),
    ("rmsprop", "RMSprop", {"alpha": 0.9, "eps": 1e-6}),
    ("rmsprop", "RMSprop", {"centered": True}),
    ("rmsprop", "RMSprop", {"momentum": 0.9}),
    ("rmsprop", "RMSprop", {"centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("adam", "Adam", {}),
    ("adam", "Adam", {"amsgrad": True}),
    ("adam", "Adam", {"weight_decay": 0.1}),
    ("adam", "Adam", {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05, "amsgrad": True}),
    ("adamw", "AdamW", {}),
    ("adamw", "AdamW", {"weight_decay": 0.1, "amsgrad": True}),
    ("adamw", "AdamW", {"betas": (0.5, 0.9), "weight_decay": 0.0}),
]


@pytest.mark.parametrize("name, torch_name, options", CASES,
                         ids=[f"{n}-{','.join(f'{k}={v}' for k, v in o.items()) or 'defaults'}" for n, _, o in CASES])
def test_optimizer_follows_torch_step_by_step(torch, name, torch_name, options):
    start, grads = _start_and_gradients()
    ours = [Tensor(a.copy(), requires_grad=True) for a in start]
    theirs = [torch.tensor(a, requires_grad=True) for a in start]
    opt = optimizers.get(name)(ours, lr=0.05, **options)
    reference = getattr(torch.optim, torch_name)(theirs, lr=0.05, **options)
    for step, gs in enumerate(grads):
        for p, t, g in zip(ours, theirs, gs):
            p.grad, t.grad = g.copy(), torch.tensor(g)
        opt.step()
        reference.step()
        for p, t in zip(ours, theirs):
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-6, atol=1e-6,
                                       err_msg=f"after step {step + 1}")


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam", "adamw"])
def test_parameters_without_a_gradient_are_left_alone(name):
    used, unused = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    opt = optimizers.get(name)([used, unused], lr=0.1)
    used.grad = np.ones(3)
    opt.step()
    assert not np.allclose(used.data, 1.0)
    np.testing.assert_array_equal(unused.data, np.ones(3))
    assert opt.state[1] == {}


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam", "adamw"])
def test_update_keeps_the_parameter_array_and_its_float32_dtype(name):
    p = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    array = p.data
    opt = optimizers.get(name)([p], lr=0.1, **({"momentum": 0.9} if name == "sgd" else {}))
    for _ in range(2):
        p.grad = np.full((2, 2), 0.5, np.float64)
        opt.step()
    assert p.data is array and p.data.dtype == np.float32


def test_zero_grad_clears_every_gradient():
    params = [Tensor(np.ones(2), requires_grad=True) for _ in range(2)]
    for p in params:
        p.grad = np.ones(2)
    opt = optimizers.get("sgd")(params, lr=0.1)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_resuming_from_state_dict_continues_exactly():
    start, grads = _start_and_gradients(seed=1)

    def run(split):
        params = [Tensor(a.copy(), requires_grad=True) for a in start]
        opt = optimizers.get("adam")(params, lr=0.05, amsgrad=True)
        for i, gs in enumerate(grads):
            if i == split:
                saved = opt.state_dict()
                opt = optimizers.get("adam")(params, lr=1.0, amsgrad=True).load_state_dict(saved)
            for p, g in zip(params, gs):
                p.grad = g.copy()
            opt.step()
        return [p.data for p in params]

    for a, b in zip(run(split=None), run(split=2)):
        np.testing.assert_array_equal(a, b)


def test_every_optimizer_plugin_is_an_optimizer_with_a_described_update():
    for name in ("sgd", "rmsprop", "adam", "adamw"):
        cls = optimizers.get(name)
        assert issubclass(cls, Optimizer)
        assert optimizers.describe(name)
        # the learning rate is the runner's --lr, so it is not listed among the plugin's own options
        assert "lr" not in optimizers.options(name)
        assert "lr" in inspect.signature(cls.__init__).parameters


@pytest.mark.parametrize("name, options, named", [
    ("sgd", {"nesterov": True}, "nesterov"),
    ("sgd", {"momentum": -0.5}, "momentum"),
    ("sgd", {"weight_decay": "lots"}, "weight_decay"),
    ("rmsprop", {"alpha": 1.5}, "alpha"),
    ("adam", {"betas": (1.0, 0.999)}, "beta1"),
    ("adam", {"betas": (0.9,)}, "betas"),
    ("adam", {"betas": "0.9/x"}, "betas"),
    ("adamw", {"eps": -1.0}, "eps"),
    ("adam", {"lr": -0.1}, "lr"),
])
def test_bad_options_raise_config_error_naming_the_option(name, options, named):
    options = {"lr": 0.01, **options}
    with pytest.raises(ConfigError, match=named):
        optimizers.get(name)([Tensor(np.ones(2), requires_grad=True)], **options)


def test_adam_betas_may_be_written_as_a_command_line_pair():
    opt = optimizers.get("adam")([Tensor(np.ones(2), requires_grad=True)], lr=0.01, betas="0.8/0.99")
    assert opt.betas == (0.8, 0.99)


def test_an_empty_parameter_list_is_a_config_error():
    with pytest.raises(ConfigError, match="no parameters"):
        optimizers.get("sgd")([], lr=0.1)


# ---- schedules ---------------------------------------------------------------------------------------
def _lr_sequences(torch, ours_cls, torch_cls, epochs, **kwargs):
    opt = optimizers.get("sgd")([Tensor(np.ones(1), requires_grad=True)], lr=0.1)
    schedule = ours_cls(opt, **kwargs)
    reference_opt = torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=0.1)
    reference = torch_cls(reference_opt, **kwargs)
    ours, theirs = [opt.lr], [reference_opt.param_groups[0]["lr"]]
    for _ in range(epochs):
        opt.step()
        reference_opt.step()
        schedule.step()
        reference.step()
        ours.append(opt.lr)
        theirs.append(reference_opt.param_groups[0]["lr"])
    assert opt.scheduler is schedule
    return ours, theirs


def test_step_lr_matches_torch_sequence(torch):
    ours, theirs = _lr_sequences(torch, StepLR, torch.optim.lr_scheduler.StepLR, 10, step_size=3, gamma=0.5)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_cosine_annealing_matches_torch_sequence_past_t_max(torch):
    ours, theirs = _lr_sequences(torch, CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, 14,
                                 T_max=5, eta_min=0.01)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_schedules_reject_non_positive_periods():
    opt = optimizers.get("sgd")([Tensor(np.ones(1), requires_grad=True)], lr=0.1)
    with pytest.raises(ConfigError, match="step_size"):
        StepLR(opt, step_size=0)
    with pytest.raises(ConfigError, match="T_max"):
        CosineAnnealingLR(opt, T_max=0)


def test_every_registered_optimiser_is_a_class_of_the_optim_module_as_in_torch_optim():
    import tinygrad_rnn.optim as optim
    from tinygrad_rnn.optim import Adam, SGD  # noqa: F401  (the names users reach for)
    assert Adam is optimizers.get("adam") and SGD is optimizers.get("sgd")
    for name in optimizers.names():
        cls = optimizers.get(name)
        assert getattr(optim, cls.__name__) is cls and cls.__name__ in dir(optim)
    with pytest.raises(AttributeError, match="the optimisers are Adam, AdamW"):
        optim.Adamm


def test_an_optimiser_class_steps_a_parameter_as_its_registered_name_does():
    from tinygrad_rnn.optim import Adam
    p = Tensor(np.ones(3), requires_grad=True)
    (p * p).sum().backward()
    Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, 0.9)  # Adam's first step moves every weight by lr
