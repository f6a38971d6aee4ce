"""What `rnnrun gradcheck`, `rnnrun vanish` and `rnnrun graph` compute, apart from how they show it.

    check_cell("gru", layers=2, bidirectional=True)    finite differences vs backward(), per parameter
    step_gradient_norms(model, trainer, batch)          ||dLoss/dh_t|| for every step t (BPTT, measured)
    vanish(config)                                      those norms at initialisation and after training
    computation_graph(loss, parameters, inputs)         the graph backward() walks, as plain data
    to_dot(graph)                                       ... as Graphviz DOT

The tables and plots live in `commands/teach.py`; everything here returns plain numbers and dataclasses,
so tests and notebooks can use it directly.
"""
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from .. import random as _random
from ..errors import ConfigError
from ..function import no_grad
from ..gradcheck import gradcheck
from ..nn.recurrent import PATHS, Recurrent
from ..registry import cells
from ..regulariser import Regularizer
from ..tensor import Tensor, topological_order
from ..train import detach_state, gradient_norm


# ---- gradient check of a recurrent layer ------------------------------------------------------------
@dataclass
class TensorCheck:
    """How backward()'s gradient of one tensor compares with central differences."""
    name: str
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    ok: bool


@dataclass
class CellCheck:
    cell: str
    path: str            # "auto", "fused", "compiled" or "composed" (nn.recurrent.PATHS)
    lengths: list
    rows: list = field(default_factory=list)

    @property
    def ok(self):
        return all(r.ok for r in self.rows)


def has_fused_path(cell_class):
    return hasattr(cell_class, "sequence")


def check_cell(cell, layers=1, bidirectional=False, hidden=3, input_size=2, steps=4, batch=3, path="composed",
               seed=0, **cell_options):
    """Gradient check, in float64, of every parameter of a small `Recurrent` and of its input.

    The batch has uneven lengths (T, T-1, ...), so masking and the backward direction's per-sequence
    reversal are checked too. What is checked is everything the layer returns: all outputs and every
    final state tensor (an LSTM's c as well as h).
    """
    if path not in PATHS:
        raise ConfigError(f"unknown path {path!r}; valid paths: {', '.join(PATHS)}")
    cell = cells.get(cell) if isinstance(cell, str) else cell
    for name, value in (("steps", steps), ("batch", batch)):
        if value < 1:
            raise ConfigError(f"gradcheck: {name} must be a positive integer, got {value}")
    _random.manual_seed(seed)
    rnn = Recurrent(cell, input_size, hidden, num_layers=layers, bidirectional=bidirectional, path=path,
                    **cell_options).to(dtype=np.float64)
    rng = np.random.default_rng(seed)
    lengths = np.array([max(1, steps - i) for i in range(batch)])
    x = Tensor(rng.standard_normal((batch, steps, input_size)), requires_grad=True)

    def everything(*_):
        outputs, final = rnn(x, lengths=lengths)
        parts = [outputs.reshape(batch, -1)] + [s.reshape(batch, -1) for state in final for s in state]
        return Tensor.concatenate(parts, axis=1)

    named = [("input x", x)] + rnn.named_parameters()
    result = gradcheck(everything, [t for _, t in named])
    rows = [TensorCheck(name, report.shape, report.max_abs_error, report.max_rel_error, report.ok)
            for (name, _), report in zip(named, result.inputs)]
    name = getattr(rnn.cell_class, "plugin_name", rnn.cell_class.__name__)
    return CellCheck(name, path, lengths.tolist(), rows)


# ---- gradient norms per time step ---------------------------------------------------------------------
def step_gradient_norms(model, trainer, x, y, lengths=None, layer=None):
    """||dLoss/dh_t|| (over the batch) for every step t of the batch, as the trainer would backpropagate.

    `model` is a SequenceModel with a recurrent layer `model.rnn` (seq2vec or seq2seq tasks); the h_t
    measured are those of its top layer (or `layer`), forward direction. The recurrent layer's step
    hook calls `retain_grad()` on each h_t, which makes it take the step-by-step path. The sequence is
    cut into chunks as the trainer's regularisers ask (truncated BPTT): a step that no gradient
    reaches has norm 0. Computed in float64, so that norms of 1e-30 do not underflow to 0; the model
    is put back in its dtype afterwards. Nothing is updated.
    """
    if model.kind not in ("seq2vec", "seq2seq"):
        raise ConfigError(f"vanish measures sequence-reading models (seq2vec or seq2seq tasks); "
                          f"this dataset's task is {model.kind}")
    rnn = model.rnn
    layer = rnn.num_layers - 1 if layer is None else layer
    total = x.shape[1]
    chunks = trainer.chunks(total)
    dtype = model.parameters()[0].dtype
    seen = {}

    def hook(hook_layer, direction, t, h):
        if hook_layer == layer and direction == 0:
            seen[offset + t] = h.retain_grad()

    model.to(dtype=np.float64)
    previous_hook, rnn.step_hook = rnn.step_hook, hook
    try:
        model.zero_grad()
        state = None
        for i, (start, stop) in enumerate(chunks):
            offset = start
            xs = Tensor(np.ascontiguousarray(x[:, start:stop], dtype=np.float64))
            lens = None if lengths is None else np.clip(lengths - start, 0, stop - start)
            if model.kind == "seq2vec" and i < len(chunks) - 1:
                with no_grad():
                    _, state = model(xs, lengths=lens, state=state)
                state = detach_state(state)
                continue
            outputs, state = model(xs, lengths=lens, state=state)
            ys = y[:, start:stop] if model.kind == "seq2seq" else y
            loss = trainer.loss(outputs, ys, lens)
            if model.kind == "seq2seq" and len(chunks) > 1:
                loss = loss * ((stop - start) / total)
            loss.backward()
            state = detach_state(state)
        norms = np.zeros(total)
        for t, h in seen.items():
            if h.grad is not None:
                norms[t] = float(np.sqrt((np.asarray(h.grad, np.float64) ** 2).sum()))
        model.zero_grad()
        return norms
    finally:
        rnn.step_hook = previous_hook
        model.to(dtype=dtype)


@dataclass
class Vanish:
    """One cell's per-step gradient norms at initialisation and after training, and its training history.

    `trained` is measured at the weights the last epoch left (`trained_epoch`), not at the
    best-validation weights the trainer restores when it finishes.
    """
    cell: str
    init: np.ndarray
    trained: np.ndarray = None
    trained_epoch: int = None
    history: list = field(default_factory=list)   # the trainer's per-epoch metrics
    diverged: str = None                           # the message, when training blew up

    @staticmethod
    def summary(norms):
        """The numbers the table shows: t=1, t=T/2, t=T, the ratio t=1 / t=T, and the per-step factor.

        If every step back multiplied the norm by the same factor q, then ||dL/dh_1|| = q^(T-1) ||dL/dh_T||:
        q = (t1/tT)^(1/(T-1)) is that factor, the geometric mean of the T - 1 step-to-step ratios.
        """
        T = len(norms)
        last = norms[-1]
        ratio = float(norms[0] / last) if last > 0 else float("nan")
        per_step = ratio ** (1 / (T - 1)) if T > 1 and ratio >= 0 else float("nan")
        return {"t=1": float(norms[0]), "t=T/2": float(norms[max(T // 2, 1) - 1]), "t=T": float(last),
                "ratio": ratio, "per_step": float(per_step)}


class LastEpochWeights(Regularizer):
    """Keeps a copy of the weights as each epoch ends, so that `vanish` can measure the weights the
    last epoch left rather than the best-validation ones the trainer restores at the end of fit()."""

    def __init__(self):
        self.state, self.epoch = None, None

    def on_epoch_end(self, trainer, metrics):
        self.state, self.epoch = trainer.model.state_dict(), metrics["epoch"]


class AppliedGradientNorm(Regularizer):
    """Records the gradient norm after every other regulariser's after_backward (after clipping):
    the norm the optimiser actually applies. Reported per epoch as applied_grad_norm_mean/max."""

    def __init__(self):
        self._norms = []

    def after_backward(self, trainer):
        self._norms.append(gradient_norm(trainer.model.parameters()))

    def on_epoch_end(self, trainer, metrics):
        if self._norms:  # kept on the training backend per batch, read here once per epoch
            norms = backend.to_numpy(backend.array_module(self._norms[0]).stack(self._norms))
            metrics["applied_grad_norm_mean"] = float(np.mean(norms))
            metrics["applied_grad_norm_max"] = float(np.max(norms))
        self._norms = []


def measurement_batch(dataset, size):
    """The first `size` training sequences (x, y, lengths), trimmed to their longest real step."""
    batch = dataset.splits()["train"].subset(slice(0, size))
    x, y, lengths = batch.x, batch.y, batch.lengths
    if lengths is not None:
        longest = int(lengths.max())
        x = x[:, :longest]
        y = y[:, :longest] if dataset.kind == "seq2seq" else y
    return x, y, lengths


def vanish(config, on_epoch=None):
    """Per-step gradient norms of one resolved run config, before and after `config['epochs']` epochs
    (measured at the weights of the last epoch, whichever epoch had the best validation loss).

    The model, dataset and regularisers are built exactly as `rnnrun` builds them (`experiment.build`),
    and trained by the ordinary `Trainer`, so every `--reg` (xavier, orthogonal, clip, batchnorm,
    tbptt...) acts here as it does in a run. Nothing is stored.
    """
    from ..errors import DivergedError
    from .experiment import build
    from ..train import Trainer
    dataset, model, regs = build(config)
    last = LastEpochWeights()
    trainer = Trainer(model, dataset, optimizer=config["optimizer"], lr=config["lr"],
                      optimizer_options=config["optimizer_options"],
                      regularisers=regs + [AppliedGradientNorm(), last],
                      epochs=max(1, config["epochs"]), batch_size=config["batch_size"], on_epoch=on_epoch)
    batch = measurement_batch(dataset, config["batch_size"])
    result = Vanish(config["cell"], step_gradient_norms(model, trainer, *batch))
    if config["epochs"] < 1:
        return result
    try:
        trainer.fit()
    except DivergedError as e:
        result.diverged = str(e)
        result.history = trainer.history
        return result
    result.history = trainer.history
    model.load_state_dict(last.state)  # fit() restored the best epoch's weights; the footer names the last
    result.trained, result.trained_epoch = step_gradient_norms(model, trainer, *batch), last.epoch
    return result


# ---- the computation graph ------------------------------------------------------------------------------
@dataclass
class GraphNode:
    key: str                 # "op3" for the op backward() calls 3rd, "leaf7" for a leaf
    kind: str                # "op", "parameter", "input" or "constant"
    label: str               # the op's class name, or the leaf's name
    shape: tuple
    children: list = field(default_factory=list)  # keys of the nodes this one was computed from
    order: int = None        # for ops: its place in backward()'s walk (1 = first, the loss)


@dataclass
class Graph:
    root: str
    nodes: dict              # key -> GraphNode

    @property
    def ops(self):
        return [n for n in self.nodes.values() if n.kind == "op"]

    @property
    def leaves(self):
        return [n for n in self.nodes.values() if n.kind != "op"]


def computation_graph(output, parameters=(), inputs=()):
    """The graph that `output.backward()` walks, as plain data.

    `parameters` and `inputs` are (name, tensor) pairs that name the leaves; other leaves are
    constants (they need no gradient, e.g. the 1 in 1 - z or a zero initial state). Ops are numbered
    in the order backward() calls them: `tensor.topological_order` reversed, the very list that
    `Tensor.backward` loops over.
    """
    if output._ctx is None:
        raise ConfigError("the tensor was not computed by any op: there is no graph to show")
    names = {id(t): (name, "parameter") for name, t in parameters}
    names.update({id(t): (name, "input") for name, t in inputs})
    order = list(reversed(topological_order(output._ctx)))
    place = {id(node): i + 1 for i, node in enumerate(order)}
    nodes, leaf_keys = {}, {}
    for node in order:
        key = f"op{place[id(node)]}"
        shapes = [meta[0] for meta in node.output_meta]
        graph_node = GraphNode(key, "op", type(node).__name__, tuple(shapes[0]) if len(shapes) == 1 else
                               tuple(tuple(s) for s in shapes), order=place[id(node)])
        for parent in node.parents:
            if not isinstance(parent, Tensor):
                continue  # axes, slopes, masks as plain arrays: arguments, not graph edges
            if parent._ctx is not None:
                graph_node.children.append(f"op{place[id(parent._ctx)]}")
                continue
            if id(parent) not in leaf_keys:
                leaf_keys[id(parent)] = f"leaf{len(leaf_keys) + 1}"
                name, kind = names.get(id(parent), (None, "constant"))
                if name is None:
                    name = f"constant {parent.item():g}" if parent.size == 1 else \
                        "zeros" if not parent.data.any() else "constant"
                nodes[leaf_keys[id(parent)]] = GraphNode(leaf_keys[id(parent)], kind, name, parent.shape)
            graph_node.children.append(leaf_keys[id(parent)])
        nodes[key] = graph_node
    return Graph(f"op{place[id(output._ctx)]}", nodes)


def preorder(graph):
    """(depth, node, first_time) in depth-first order from the root, without recursion.

    An op seen before (a shared subgraph: the graph is a DAG, not a tree) is yielded again with
    first_time False and its children are not repeated; leaves are always yielded in full.
    """
    expanded = set()
    stack = [(graph.root, 0)]
    while stack:
        key, depth = stack.pop()
        node = graph.nodes[key]
        first = node.kind != "op" or key not in expanded
        yield depth, node, first
        if node.kind == "op" and first:
            expanded.add(key)
            stack.extend((child, depth + 1) for child in reversed(node.children))


def tiny_model_graph(cell, steps=3, hidden=2, input_size=1, batch=1, seed=0, **cell_options):
    """(graph, loss): a one-layer `Recurrent` on the composed path (every op shows), unrolled over
    `steps`, and the loss mean((h_T - target)^2) of its last output."""
    if steps < 1:
        raise ConfigError(f"graph: steps must be a positive integer, got {steps}")
    _random.manual_seed(seed)
    cell = cells.get(cell) if isinstance(cell, str) else cell
    rnn = Recurrent(cell, input_size, hidden, path="composed", **cell_options)
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((batch, steps, input_size)).astype(np.float32), requires_grad=True)
    target = Tensor(np.zeros((batch, hidden), np.float32))
    outputs, _ = rnn(x)
    diff = outputs[:, -1] - target
    loss = (diff * diff).mean()
    return computation_graph(loss, rnn.named_parameters(), [("input x", x), ("target", target)]), loss


def to_dot(graph, title="computation graph"):
    """Graphviz DOT: ops as boxes (numbered in backward's order), leaves as ellipses, edges along the
    forward data flow (backward() walks them the other way). Render: dot -Tpng graph.dot -o graph.png"""
    styles = {"parameter": 'shape=ellipse, style=filled, fillcolor="#cfe8ff"',
              "input": 'shape=ellipse, style=filled, fillcolor="#d8f5d0"',
              "constant": 'shape=ellipse, style=dashed, fontcolor="#777777"',
              "op": "shape=box"}
    lines = [f'digraph "{title}" {{', "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    for node in graph.nodes.values():
        text = f"[{node.order}] {node.label}" if node.kind == "op" else node.label
        extra = ", penwidth=2" if node.key == graph.root else ""
        lines.append(f'  {node.key} [label="{text}\\n{_shape_text(node.shape)}", {styles[node.kind]}{extra}];')
    for node in graph.nodes.values():
        for child in node.children:
            lines.append(f"  {child} -> {node.key};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _shape_text(shape):
    return str(tuple(shape))
