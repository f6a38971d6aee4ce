"""Every cell on the CuPy stand-in, in every way it can run over a sequence: the fused sequence
Function, its per-step Function and the composed cell through autograd; with padding masks, stacked
and bidirectional. Values and gradients equal NumPy's; the forward and backward passes never read the
device."""
import contextlib

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend
from tinygrad_rnn.nn import Recurrent

import test_fused_cells as cells_spec

from . import standin

# The ways a cell runs over a sequence, as Recurrent's options. A new path is one line here.
PATHS = {"fused": {"path": "auto"}, "composed": {"path": "composed"}, "compiled": {"path": "compiled"}}
CELLS = {"rnn-tanh": ("rnn", {"nonlinearity": "tanh"}), "rnn-relu": ("rnn", {"nonlinearity": "relu"}),
         "lstm": ("lstm", {}), "peephole": ("peephole", {}), "gru-pytorch": ("gru", {"variant": "pytorch"}),
         "gru-cho": ("gru", {"variant": "cho"})}
SHAPES = {"one layer": (1, False, None), "padded": (1, False, [4, 2, 3]),
          "stacked bidirectional padded": (2, True, [4, 1, 3])}


def host(grads):
    return {k: None if v is None else backend.to_numpy(v) for k, v in grads.items()}


# ---- the Functions, as tests/test_fused_cells.py drives them ------------------------------------------------
@pytest.mark.parametrize("impl", ["fused", "stepwise", "composed"])
@pytest.mark.parametrize("masked", [False, True], ids=["full", "padded"])
@pytest.mark.parametrize("cell,option", cells_spec.CASES, ids=cells_spec.IDS)
def test_cell_functions_on_the_device_equal_numpy(cupy, cell, option, masked, impl):
    run = getattr(cells_spec, impl)
    mask = cells_spec.padding_mask() if masked else None
    want_out, want_final, want_grads = cells_spec.run_with_grads(run, cell, option, mask)
    backend.set_backend("cupy")  # the problem's tensors (and the composed cell's module) are made on the device

    def on_device(cell, x, state, params, mask, option):
        return run(cell, x, state, params, None if mask is None else cupy.asarray(mask), option)
    out, final, grads = cells_spec.run_with_grads(on_device, cell, option, mask)  # (reads its results back)
    np.testing.assert_allclose(out, want_out, rtol=1e-10, atol=1e-12)
    for got, want in zip(final, want_final):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    grads = host(grads)
    for name, want in want_grads.items():
        np.testing.assert_allclose(grads[name], want, rtol=1e-9, atol=1e-11, err_msg=name)


# ---- the recurrent layer: every path, stacked, bidirectional, padded ---------------------------------------
def layer_run(cell, options, path, shape, where, syncs=None):
    """Outputs, final states and gradients of a second forward and backward pass (the first one may
    prepare the path, e.g. compile a cell); `syncs` (a list) collects the second pass's device reads."""
    layers, bidirectional, lengths = SHAPES[shape]
    tg.manual_seed(0)
    layer = Recurrent(tg.registry.cells.get(cell), 2, 3, num_layers=layers, bidirectional=bidirectional, **PATHS[path],
                      **options)
    layer.to(where)
    for warm in (True, False):
        layer.zero_grad()
        with (standin.SYNCS.counting() if syncs is not None and not warm else contextlib.nullcontext()) as seen:
            x = Tensor(np.random.default_rng(0).standard_normal((3, 4, 2)).astype(np.float32), requires_grad=True)
            x = x.to(where)
            out, final = layer(x, lengths=None if lengths is None else np.array(lengths))
            weights = Tensor(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)).to(where)
            loss = (out * weights).sum() + sum((s * s).sum() for state in final for s in state)
            loss.backward()
        if seen is not None:
            syncs.extend(seen)
    results = {"out": out.data, "x": x.grad, **{f"final{i}": s.data for i, state in enumerate(final) for s in state}}
    results.update({name: p.grad for name, p in layer.named_parameters()})
    return results


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cell", CELLS)
def test_recurrent_layer_on_the_device_equals_numpy(cupy, cell, path, shape):
    name, options = CELLS[cell]
    want = layer_run(name, options, path, shape, "numpy")
    syncs = []
    got = layer_run(name, options, path, shape, "cupy", syncs)
    assert not syncs, f"{cell} ({path}, {shape}) read the device: {cupy.SYNCS.summary(syncs)}"
    assert all(backend.name_of(v) == "cupy" for v in got.values())
    for key in want:
        np.testing.assert_allclose(backend.to_numpy(got[key]), want[key], rtol=1e-5, atol=1e-6, err_msg=key)
