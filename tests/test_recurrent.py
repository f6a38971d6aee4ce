"""The recurrent layer: padding, both directions, carried state, the hooks, and the cells' equations."""
import numpy as np
import pytest

from tinygrad_rnn import ConfigError, ShapeError, Tensor, manual_seed, no_grad
from tinygrad_rnn.nn import Module, Recurrent
from tinygrad_rnn.registry import cells

N, T, D, H = 4, 6, 3, 5
CELLS = cells.names()
PATHS = pytest.mark.parametrize("path", ["composed", "auto"])


def make_layer(cell, num_layers=2, bidirectional=True, path="auto", **options):
    manual_seed(0)
    return Recurrent(cells.get(cell), D, H, num_layers=num_layers, bidirectional=bidirectional, path=path,
                     **options).to(dtype=np.float64)


def random_batch(n=N, t=T, seed=0):
    return np.random.default_rng(seed).standard_normal((n, t, D))


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


# ---- variable lengths -------------------------------------------------------------------------------
@PATHS
@pytest.mark.parametrize("cell", CELLS)
def test_padding_equals_running_alone(cell, path):
    layer = make_layer(cell, path=path)
    lengths = np.array([6, 2, 4, 1])
    x = random_batch()
    x[np.arange(T)[None, :] >= lengths[:, None]] = 0.0  # padding as a dataset would give it
    out, final = layer(Tensor(x), lengths=lengths)
    for n, length in enumerate(lengths):
        alone_out, alone_final = layer(Tensor(x[n:n + 1, :length]))
        np.testing.assert_allclose(out.numpy()[n, :length], alone_out.numpy()[0], atol=1e-10)
        assert np.all(out.numpy()[n, length:] == 0), "outputs past a sequence's length must be zero"
        for state, alone in zip(final, alone_final):
            for s, a in zip(state, alone):
                np.testing.assert_allclose(s.numpy()[n], a.numpy()[0], atol=1e-10)


def test_padding_values_do_not_matter():
    layer = make_layer("lstm")
    lengths = np.array([6, 3, 5, 2])
    x = random_batch()
    noisy = x + 100 * (np.arange(T)[None, :, None] >= lengths[:, None, None])
    clean = x * (np.arange(T)[None, :, None] < lengths[:, None, None])
    a, b = layer(Tensor(noisy), lengths=lengths)[0], layer(Tensor(clean), lengths=lengths)[0]
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)


def test_zero_length_sequence_keeps_its_initial_state():
    """Truncated BPTT hands a chunk lengths of 0 for sequences that already ended."""
    layer = make_layer("gru")
    state = [tuple(Tensor(np.full((2, H), 0.5)) for _ in s) for s in layer.initial_state(2)]
    out, final = layer(Tensor(random_batch(n=2)), lengths=np.array([0, 3]), state=state)
    assert np.all(out.numpy()[0] == 0)
    for s in final:
        np.testing.assert_array_equal(s[0].numpy()[0], 0.5)


def test_lengths_outside_the_sequence_are_a_shape_error():
    with pytest.raises(ShapeError, match="lengths"):
        make_layer("rnn")(Tensor(random_batch()), lengths=np.array([7, 1, 1, 1]))


# ---- carrying state across calls ----------------------------------------------------------------------
@PATHS
@pytest.mark.parametrize("cell", CELLS)
def test_two_halves_with_carried_state_equal_one_call(cell, path):
    layer = make_layer(cell, bidirectional=False, path=path)
    x = random_batch()
    whole, whole_final = layer(Tensor(x))
    first, state = layer(Tensor(x[:, :T // 2]))
    state = [tuple(s.detach() for s in layer_state) for layer_state in state]
    second, final = layer(Tensor(x[:, T // 2:]), state=state)
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy()], axis=1), whole.numpy(), atol=1e-10)
    for state, expected in zip(final, whole_final):
        for s, e in zip(state, expected):
            np.testing.assert_allclose(s.numpy(), e.numpy(), atol=1e-10)


def test_state_with_the_wrong_number_of_entries_is_a_shape_error():
    layer = make_layer("lstm")
    with pytest.raises(ShapeError, match="one per layer and direction"):
        layer(Tensor(random_batch()), state=layer.initial_state(N)[:1])


# ---- fused and composed paths ----------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_fused_and_composed_paths_agree_with_padding(cell):
    lengths = np.array([6, 2, 4, 1])
    rng = np.random.default_rng(5)
    weights = rng.uniform(0.5, 1.5, (N, T, 2 * H))  # every entry counts, padded ones included
    results = []
    for path in ("composed", "auto"):
        layer = make_layer(cell, path=path)
        x = Tensor(random_batch(), requires_grad=True)
        out, final = layer(x, lengths=lengths)
        loss = (out * Tensor(weights)).sum()
        for k, state in enumerate(final):
            for s in state:
                loss = loss + s.sum() * (k + 1.0)
        loss.backward()
        results.append([out.numpy()] + [s.numpy() for state in final for s in state] + [x.grad] +
                       [p.grad for p in layer.parameters()])
    for composed, fused in zip(*results):
        np.testing.assert_allclose(fused, composed, atol=1e-10)


# ---- shapes, names and options --------------------------------------------------------------------
@pytest.mark.parametrize("cell", CELLS)
def test_shapes_of_outputs_and_states(cell):
    layer = make_layer(cell)
    out, final = layer(Tensor(random_batch()))
    assert out.shape == (N, T, 2 * H)
    assert len(final) == 4 and all(s.shape == (N, H) for state in final for s in state)
    assert all(s.dtype == np.float64 for state in layer.initial_state(2) for s in state)


def test_parameters_are_named_and_shaped_as_in_pytorch():
    shapes = {name: value.shape for name, value in make_layer("lstm").state_dict().items()}
    assert shapes["cells.0.weight_ih"] == (4 * H, D)
    assert shapes["cells.1.weight_hh"] == (4 * H, H)  # layer 0, backward direction
    assert shapes["cells.2.weight_ih"] == (4 * H, 2 * H)  # layer 1 sees both directions
    assert shapes["cells.3.bias_hh"] == (4 * H,)


def test_wrong_input_width_is_a_shape_error():
    with pytest.raises(ShapeError, match=r"\(N, T, 3\)"):
        make_layer("rnn")(Tensor(np.zeros((2, 4, 7))))


@pytest.mark.parametrize("cell, options, valid", [
    ("rnn", {"nonlinearity": "sigmoid"}, "tanh, relu, leaky_relu, elu"),
    ("gru", {"variant": "keras"}, "pytorch, cho"),
    ("lstm", {"peepholes": True}, "forget_bias"),
])
def test_bad_cell_options_raise_config_error_naming_the_valid_ones(cell, options, valid):
    with pytest.raises(ConfigError, match=valid):
        Recurrent(cells.get(cell), D, H, **options)


def test_a_user_cell_class_can_be_passed_directly():
    class Doubling(Module):
        def __init__(self, input_size, hidden_size):
            self.hidden_size = hidden_size

        def initial_state(self, batch_size):
            return (Tensor(np.ones((batch_size, self.hidden_size))),)

        def forward(self, x, state):
            h = state[0] * 2.0
            return h, (h,)

    out, final = Recurrent(Doubling, D, 2)(Tensor(random_batch(n=1, t=3)), lengths=np.array([2]))
    np.testing.assert_array_equal(out.numpy()[0, :, 0], [2, 4, 0])
    np.testing.assert_array_equal(final[0][0].numpy(), [[4, 4]])


def test_lstm_forget_bias_is_added_to_the_forget_gate_bias():
    manual_seed(0)
    plain = Recurrent(cells.get("lstm"), D, H).cells[0].bias_ih.numpy()
    manual_seed(0)
    shifted = Recurrent(cells.get("lstm"), D, H, forget_bias=1.0).cells[0].bias_ih.numpy()
    np.testing.assert_allclose(shifted - plain, np.repeat([0.0, 1.0, 0.0, 0.0], H), atol=1e-6)


# ---- the equations, against hand-written NumPy ----------------------------------------------------
def numpy_gru_step(cell, x, h, variant):
    W_ih, W_hh, b_ih, b_hh = (getattr(cell, n).numpy() for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    (W_ir, W_iz, W_in), (W_hr, W_hz, W_hn) = np.split(W_ih, 3), np.split(W_hh, 3)
    (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = np.split(b_ih, 3), np.split(b_hh, 3)
    r = sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    if variant == "cho":
        n = np.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
    else:
        n = np.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


@pytest.mark.parametrize("variant", ["pytorch", "cho"])
def test_gru_variants_match_their_numpy_formulas(variant):
    layer = make_layer("gru", num_layers=1, bidirectional=False, path="composed", variant=variant)
    x = random_batch()
    out, _ = layer(Tensor(x))
    h = np.zeros((N, H))
    for t in range(T):
        h = numpy_gru_step(layer.cells[0], x[:, t], h, variant)
        np.testing.assert_allclose(out.numpy()[:, t], h, atol=1e-10)


def test_gru_cho_variant_differs_from_pytorch_variant():
    x = Tensor(random_batch())
    cho = make_layer("gru", variant="cho")(x)[0].numpy()
    pytorch = make_layer("gru", variant="pytorch")(x)[0].numpy()  # same seed, so the same weights
    assert np.abs(cho - pytorch).max() > 1e-3


def test_peephole_step_matches_numpy():
    layer = make_layer("peephole", num_layers=1, bidirectional=False)
    cell = layer.cells[0]
    W_ih, W_hh, b_ih, b_hh, w_ci, w_cf, w_co = (getattr(cell, n).numpy() for n in (
        "weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ci", "weight_cf", "weight_co"))
    x = random_batch()
    out, ((h_last, c_last),) = layer(Tensor(x))
    h, c = np.zeros((N, H)), np.zeros((N, H))
    for t in range(T):
        a_i, a_f, a_g, a_o = np.split(x[:, t] @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=1)
        i = sigmoid(a_i + w_ci * c)  # i and f peek at the previous cell
        f = sigmoid(a_f + w_cf * c)
        c = f * c + i * np.tanh(a_g)
        o = sigmoid(a_o + w_co * c)  # o peeks at the new cell
        h = o * np.tanh(c)
        np.testing.assert_allclose(out.numpy()[:, t], h, atol=1e-10)
    np.testing.assert_allclose(c_last.numpy(), c, atol=1e-10)


# ---- hooks for regularisers and labs --------------------------------------------------------------
def test_step_hook_sees_every_step_and_can_retain_its_gradient():
    layer = make_layer("rnn", num_layers=2, bidirectional=False)
    seen = []

    def hook(layer_index, direction, t, h):
        seen.append((layer_index, direction, t, h.retain_grad()))

    layer.step_hook = hook
    out, _ = layer(Tensor(random_batch()))
    out[:, -1].sum().backward()
    assert [(l, d, t) for l, d, t, _ in seen] == [(l, 0, t) for l in range(2) for t in range(T)]
    norms = [np.abs(h.grad).sum() for l, _, _, h in seen if l == 0]
    assert all(n > 0 for n in norms), "every step's h lies on the path to the last output"


def test_input_transforms_see_each_layers_input_sequence():
    class Silence(Module):
        """Records the shapes it sees and replaces the sequence by zeros."""

        def __init__(self):
            self.shapes = []

        def forward(self, x):
            self.shapes.append(x.shape)
            return x * 0.0

    layer = make_layer("gru")
    layer.input_transforms = [Silence(), None]
    first, _ = layer(Tensor(random_batch(seed=1)))
    second, _ = layer(Tensor(random_batch(seed=2)))
    assert layer.input_transforms[0].shapes == [(N, T, D)] * 2
    np.testing.assert_array_equal(first.numpy(), second.numpy())  # the input never reached the cells
    layer.input_transforms = [None, Silence()]
    layer(Tensor(random_batch()))
    assert layer.input_transforms[1].shapes == [(N, T, 2 * H)]


def test_dropout_acts_only_in_training():
    layer = make_layer("lstm", num_layers=2, bidirectional=False)
    x = Tensor(random_batch())
    with no_grad():
        reference = layer(x)[0].numpy()
        layer.dropout, layer.recurrent_dropout = 0.5, 0.5
        assert np.abs(layer(x)[0].numpy() - reference).max() > 1e-3
        layer.eval()
        np.testing.assert_allclose(layer(x)[0].numpy(), reference, atol=1e-10)


def test_recurrent_dropout_alone_changes_a_single_layer():
    layer = make_layer("gru", num_layers=1, bidirectional=False)
    x = Tensor(random_batch())
    reference = layer(x)[0].numpy()
    layer.recurrent_dropout = 0.5
    dropped = layer(x)[0].numpy()
    np.testing.assert_allclose(dropped[:, 0], reference[:, 0], atol=1e-12)  # h_0 = 0: nothing to drop
    assert np.abs(dropped[:, 1:] - reference[:, 1:]).max() > 1e-3


# ---- path: how the cells run ----------------------------------------------------------------------------
def test_path_names_the_way_each_cell_runs():
    from tinygrad_rnn.tape import TapeSequence

    class NoSequence(Module):  # a cell without a fused sequence(): auto means its compiled tape
        def __init__(self, input_size, hidden_size):
            self.w = Tensor(np.ones((hidden_size, input_size), np.float32), requires_grad=True)

        def initial_state(self, n):
            return (Tensor(np.zeros((n, self.w.shape[0]), np.float32)),)

        def forward(self, x, state):
            h = (x.linear(self.w) + state[0]).tanh()
            return h, (h,)

    x = Tensor(random_batch().astype(np.float32))
    kinds = {}
    for cell in (cells.get("gru"), NoSequence):
        for path in ("auto", "fused", "compiled", "composed"):
            if path == "fused" and cell is NoSequence:
                continue
            out, _ = Recurrent(cell, D, H, path=path)(x)
            kinds[cell.__name__, path] = "tape" if isinstance(out._ctx, TapeSequence) else type(out._ctx).__name__
    gru = cells.get("gru").__name__
    assert kinds[gru, "auto"] == kinds[gru, "fused"] not in ("tape", "Stack")  # the cell's own sequence()
    assert kinds[gru, "compiled"] == kinds["NoSequence", "auto"] == kinds["NoSequence", "compiled"] == "tape"
    assert kinds[gru, "composed"] == kinds["NoSequence", "composed"] == "Stack"  # the step-by-step graph
    with pytest.raises(ConfigError, match=r"cell 'NoSequence' has no fused sequence\(\).*'auto' or 'compiled'"):
        Recurrent(NoSequence, D, H, path="fused")
    with pytest.raises(ConfigError, match="unknown path 'fast'; valid paths: 'auto', 'fused', 'compiled', 'composed'"):
        Recurrent(NoSequence, D, H, path="fast")


def test_fused_and_compiled_keywords_still_work_with_a_deprecation_warning():
    gru = cells.get("gru")
    for keywords, path in (({"fused": True}, "auto"), ({"fused": False}, "composed"), ({"compiled": True}, "compiled"),
                           ({"fused": True, "compiled": True}, "compiled")):
        with pytest.warns(DeprecationWarning, match="path="):
            assert Recurrent(gru, D, H, **keywords).path == path
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="choose one"):
        Recurrent(gru, D, H, fused=False, compiled=True)
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="disagree"):
        Recurrent(gru, D, H, path="fused", fused=False)


def test_recurrent_takes_a_cell_class_and_says_how_to_look_a_name_up():
    with pytest.raises(ConfigError, match=r"takes a cell class, got 'gru'; .*registry\.cells\.get\('gru'\)"):
        Recurrent("gru", D, H)


def test_recurrent_dropout_on_the_fused_path_is_refused_when_it_is_set():
    layer = Recurrent(cells.get("gru"), D, H, path="fused")
    with pytest.raises(ConfigError, match="recurrent dropout needs the compiled or composed path"):
        layer.recurrent_dropout = 0.3
    Recurrent(cells.get("gru"), D, H).recurrent_dropout = 0.3  # auto takes the compiled tape for it
