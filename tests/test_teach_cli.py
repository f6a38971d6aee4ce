"""`rnnrun gradcheck`, `rnnrun vanish` and `rnnrun graph`, and the `teach` functions behind them."""
import json
import os
import re

import numpy as np
import pytest

from tinygrad_rnn.runner import lessons
from tinygrad_rnn.tensor import topological_order

from helpers import rnnrun

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


WRONG_BACKWARD = '''
from tinygrad_rnn import Function, Tensor, array_module, register_cell
from tinygrad_rnn.nn import Module, uniform_parameter


class BadTanh(Function):
    @staticmethod
    def forward(ctx, x):
        y = array_module(x).tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad * (1 - y)


@register_cell("bad_rnn")
class BadRNN(Module):
    def __init__(self, input_size, hidden_size):
        self.hidden_size = hidden_size
        self.weight_ih = uniform_parameter((hidden_size, input_size), 0.5)
        self.weight_hh = uniform_parameter((hidden_size, hidden_size), 0.5)

    def initial_state(self, batch_size):
        return (Tensor.zeros(batch_size, self.hidden_size, dtype=self.weight_hh.dtype),)

    def forward(self, x, state):
        h = BadTanh.apply(x @ self.weight_ih.T + state[0] @ self.weight_hh.T)
        return h, (h,)
'''


# ---- gradcheck ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["rnn", "lstm", "peephole", "gru"])
def test_every_built_in_cell_passes_on_both_paths_with_uneven_lengths(cell):
    for path in ("fused", "composed"):
        check = lessons.check_cell(cell, hidden=2, steps=3, batch=2, path=path)
        assert check.ok, [r for r in check.rows if not r.ok]
        assert check.lengths == [3, 2]
        names = [r.name for r in check.rows]
        assert names[0] == "input x" and "cells.0.weight_hh" in names


def test_gradcheck_covers_every_layer_and_direction():
    check = lessons.check_cell("rnn", layers=2, bidirectional=True, hidden=2, steps=3, batch=2, path="fused")
    assert check.ok
    assert {r.name.split(".")[1] for r in check.rows if r.name.startswith("cells.")} == {"0", "1", "2", "3"}


def test_gradcheck_command_prints_a_table_per_path_and_exits_0():
    result = rnnrun("gradcheck", "--cell", "gru", "--hidden", "2", "--steps", "3")
    assert result.exit_code == 0, result.output
    assert all(f"{path} path" in result.output for path in ("fused", "compiled", "composed"))
    assert "cells.0.weight_hh" in result.output and "(6, 2)" in result.output
    assert "all 15 gradients agree" in result.output


def test_gradcheck_json_lists_every_tensor():
    result = rnnrun("gradcheck", "--cell", "lstm", "--path", "composed", "--hidden", "2", "--steps", "2", "--json")
    doc = json.loads(result.stdout)
    assert [c["path"] for c in doc] == ["composed"] and doc[0]["ok"]
    assert len(doc[0]["tensors"]) == 5


def test_a_wrong_backward_fails_and_exits_1(tmp_path, fresh_registry):
    plugin = tmp_path / "wrong_backward.py"
    plugin.write_text(WRONG_BACKWARD)
    result = rnnrun("gradcheck", "--plugin", str(plugin), "--cell", "bad_rnn", "--hidden", "2", "--steps", "3")
    assert result.exit_code == 1
    assert "FAIL" in result.output and "disagree" in result.output
    assert "no fused sequence()" in result.output  # a user cell without sequence(): one path, said so


def test_gradcheck_path_takes_the_four_words_of_a_runs_path(fresh_registry):
    """auto is checked as the path a run takes (fused for gru, the compiled tape for a cell without
    sequence()); fused on a cell without one is a usage error naming what would work."""
    def paths(*args):
        result = rnnrun("gradcheck", *args, "--hidden", "2", "--steps", "2", "--json")
        assert result.exit_code == 0, result.output + result.stderr
        return [c["path"] for c in json.loads(result.stdout)]
    assert paths("--cell", "gru", "--path", "auto") == ["fused"]
    assert paths("--cell", "gru", "--path", "compiled") == ["compiled"]
    indrnn = ("--plugin", os.path.join(ROOT, "examples", "indrnn_cell.py"), "--cell", "indrnn")
    assert paths(*indrnn, "--path", "auto") == ["compiled"]
    assert paths(*indrnn) == paths(*indrnn, "--path", "both") == ["compiled", "composed"]
    refused = rnnrun("gradcheck", *indrnn, "--path", "fused")
    assert refused.exit_code == 2 and "has no fused sequence()" in refused.stderr and "--path" in refused.stderr


def test_gradcheck_of_an_unknown_cell_is_a_usage_error():
    result = rnnrun("gradcheck", "--cell", "lstn")
    assert result.exit_code == 2 and "did you mean 'lstm'" in result.stderr


# ---- vanish ---------------------------------------------------------------------------------------------
def vanish_json(*args):
    result = rnnrun("vanish", "--no-plot", "--json", *args)
    assert result.exit_code == 0, result.output + result.stderr
    return {c["cell"]: c for c in json.loads(result.stdout)["cells"]}


def test_at_initialisation_the_plain_rnn_gradient_at_t1_is_orders_of_magnitude_below_lstm_and_gru():
    cells = vanish_json("--cell", "rnn,lstm,gru", "--data", "adding:T=100,n_train=100", "--epochs", "0")
    t1 = {name: c["init_summary"]["t=1"] for name, c in cells.items()}
    ratio = {name: c["init_summary"]["ratio"] for name, c in cells.items()}
    assert all(v > 0 for v in t1.values()), t1  # float64: nothing underflowed to 0
    assert t1["rnn"] < t1["lstm"] / 100 and t1["rnn"] < t1["gru"] / 100, t1
    assert ratio["rnn"] < ratio["lstm"] / 100 and ratio["rnn"] < ratio["gru"] / 100, ratio
    for c in cells.values():
        norms = np.array(c["init"])
        assert len(norms) == 100 and norms[-1] > norms[50] > norms[0]  # fading back through time


def test_the_acceptance_command_shows_the_numbers(tmp_path):
    result = rnnrun("vanish", "--cell", "rnn,lstm,gru", "--data", "adding:T=100,n_train=50", "--epochs", "0",
                    "--plot", str(tmp_path / "v.png"))
    assert result.exit_code == 0, result.output
    rows = {m.group(1): float(m.group(2)) for m in
            re.finditer(r"^\s+(rnn|lstm|gru)\s+init\s+\S+\s+(\S+)", result.stdout, re.M)}
    assert set(rows) == {"rnn", "lstm", "gru"}
    assert rows["rnn"] < rows["lstm"] / 100 and rows["rnn"] < rows["gru"] / 100
    assert (tmp_path / "v.png").exists()


def test_clipping_shows_in_the_history_as_applied_norms_at_the_threshold():
    cells = vanish_json("--cell", "rnn", "--data", "adding:T=30,n_train=100", "--reg", "orthogonal:gain=2",
                        "--reg", "clip:0.5", "--epochs", "1")
    epoch = cells["rnn"]["history"][0]
    assert epoch["grad_norm_max"] > 0.5
    assert epoch["applied_grad_norm_max"] == pytest.approx(0.5, rel=1e-4)
    assert epoch["clipped_rate"] > 0
    assert cells["rnn"]["trained"] is not None


def test_truncated_bptt_leaves_no_gradient_before_the_last_chunk():
    norms = np.array(vanish_json("--cell", "gru", "--data", "adding:T=30,n_train=60", "--reg", "tbptt:k=10",
                                 "--epochs", "0")["gru"]["init"])
    assert (norms[:20] == 0).all() and (norms[20:] > 0).all()


def test_step_gradient_norms_leave_the_model_as_it_was():
    from tinygrad_rnn.runner.experiment import build, resolve
    from tinygrad_rnn.train import Trainer
    config = resolve({"cell": "lstm", "data": "adding", "data_options": {"T": 12, "n_train": 20}, "hidden": 4})
    dataset, model, regs = build(config)
    trainer = Trainer(model, dataset, regularisers=regs, epochs=1, batch_size=8)
    before = model.state_dict()
    norms = lessons.step_gradient_norms(model, trainer, *lessons.measurement_batch(dataset, 8))
    assert norms.shape == (12,) and (norms > 0).all()
    assert model.rnn.step_hook is None
    for name, value in model.state_dict().items():
        assert value.dtype == before[name].dtype and np.array_equal(value, before[name])
    assert all(p.grad is None for p in model.parameters())


def test_last_step_norm_is_the_gradient_of_the_head_input():
    """At t = T of a seq2vec model, dLoss/dh_T is what the linear head passes back: W_head^T dLoss/dy."""
    from tinygrad_rnn import Tensor
    from tinygrad_rnn.runner.experiment import build, resolve
    from tinygrad_rnn.train import Trainer
    config = resolve({"cell": "rnn", "data": "adding", "data_options": {"T": 6, "n_train": 20}, "hidden": 3})
    dataset, model, regs = build(config)
    trainer = Trainer(model, dataset, regularisers=regs, epochs=1, batch_size=4)
    x, y, lengths = lessons.measurement_batch(dataset, 4)
    norms = lessons.step_gradient_norms(model, trainer, x, y, lengths)
    out, _ = model(Tensor(x))
    dy = 2 * (out.numpy() - y) / y.size
    w = model.head.weight.numpy()
    w = w if w.shape == (1, 3) else w.T
    assert norms[-1] == pytest.approx(np.linalg.norm(dy @ w), rel=1e-4)


# ---- graph ----------------------------------------------------------------------------------------------
def test_graph_tree_names_ops_shapes_parameters_and_the_input(tmp_path):
    result = rnnrun("graph", "--cell", "gru", "--steps", "3", "--hidden", "2", "--input-size", "1",
                    "--dot", str(tmp_path / "g.dot"))
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.splitlines()[0].startswith("[1] ") and "the loss" in out.splitlines()[0]
    for text in ("cells.0.weight_hh (6, 2)", "cells.0.weight_ih (6, 1)", "input x (1, 3, 1)", "Sigmoid (1, 2)",
                 "Tanh (1, 2)", "Linear", "↑ shown above"):
        assert text in out, text
    assert (tmp_path / "g.dot").read_text().startswith("digraph")


def test_each_op_is_expanded_once_and_numbered_in_backwards_order():
    graph, loss = lessons.tiny_model_graph("lstm", steps=3)
    order = list(reversed(topological_order(loss._ctx)))
    assert len(graph.ops) == len(order)
    assert sorted(n.order for n in graph.ops) == list(range(1, len(order) + 1))
    expanded = [node.key for _, node, first in lessons.preorder(graph) if node.kind == "op" and first]
    assert sorted(expanded) == sorted(n.key for n in graph.ops)  # every op in full exactly once
    for node in graph.ops:  # an op comes before (smaller number) every op it was computed from
        assert all(graph.nodes[c].order > node.order for c in node.children if graph.nodes[c].kind == "op")
    params = {n.label for n in graph.leaves if n.kind == "parameter"}
    assert params == {"cells.0.weight_ih", "cells.0.weight_hh", "cells.0.bias_ih", "cells.0.bias_hh"}


def test_dot_has_one_node_per_graph_node_and_one_edge_per_use():
    graph, _ = lessons.tiny_model_graph("rnn", steps=2)
    dot = lessons.to_dot(graph)
    assert len(re.findall(r"^\s+(op|leaf)\d+ \[label=", dot, re.M)) == len(graph.nodes)
    assert len(re.findall(r" -> ", dot)) == sum(len(n.children) for n in graph.nodes.values())


def test_graph_of_a_long_unroll_is_refused_with_a_clear_message():
    result = rnnrun("graph", "--cell", "rnn", "--steps", "500")
    assert result.exit_code == 2 and "500" in result.stderr


def test_the_trained_row_is_measured_at_the_last_epochs_weights_and_names_that_epoch():
    one = vanish_json("--cell", "rnn", "--data", "adding:T=20,n_train=100", "--epochs", "1")["rnn"]
    two = vanish_json("--cell", "rnn", "--data", "adding:T=20,n_train=100", "--epochs", "2")["rnn"]
    assert one["trained_epoch"] == 1 and two["trained_epoch"] == 2
    # not the best-validation weights fit() restores: a second epoch moves the weights, so the norms move
    assert not np.allclose(one["trained"], two["trained"])


def test_the_per_step_factor_is_the_geometric_mean_of_the_step_ratios():
    from tinygrad_rnn.runner.lessons import Vanish
    norms = 0.5 ** np.arange(9, -1, -1.0)  # each step back halves the norm
    assert Vanish.summary(norms)["per_step"] == pytest.approx(0.5)
    result = rnnrun("vanish", "--no-plot", "--cell", "rnn", "--data", "adding:T=30,n_train=50", "--epochs", "0")
    row = re.search(r"^\s+rnn\s+init\s+\S+\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", result.stdout, re.M)
    t1, tT, ratio, per_step = (float(v) for v in row.groups())
    assert per_step == pytest.approx((t1 / tT) ** (1 / 29), abs=0.006)
    assert "per step" in result.stdout and "after epoch" not in result.stdout  # --epochs 0: no trained row
