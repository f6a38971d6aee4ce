"""`Recurrent`: a stack of recurrent cells run over batches of sequences, in one or both directions.

It works like torch.nn.RNN/LSTM/GRU(batch_first=True), with the cell given as a class (the library
looks names up: `registry.cells.get("gru")`, or `SequenceModel` and the runner, which take a name).

The cell protocol (every built-in cell in plugins/cells/ follows it, and so must a user's cell):

    cell = Cell(input_size, hidden_size, **options)    # a Module; bad options raise ConfigError
    state = cell.initial_state(batch_size)             # a tuple of zero Tensors, state[0] is h
    h_t, state = cell(x_t, state)                      # x_t (N, D) → h_t (N, H); state[0] is h_t

Parameters are named as PyTorch names them, so weights copy straight over (`tinygrad_rnn.interop`):
`weight_ih` (G*H, D) multiplies the input, `weight_hh` (G*H, H) the previous h, plus `bias_ih` and
`bias_hh` (G*H,), where G is the number of gates. Regularisers rely on these names: they find the
input weights by the prefix `weight_ih` and the recurrent weights by the prefix `weight_hh`.

Optionally a cell may also define `sequence(x, state, mask=None) -> (outputs (N, T, H), final state)`,
a faster whole-sequence version of the same maths; `forward` stays the readable reference. A cell
without one is compiled (`tinygrad_rnn/tape.py`): one step of its `forward` is traced into a tape that is
replayed for every step, so a new cell is fast without a hand-written backward.

Variable lengths: with `lengths`, step t of sequence n is real when t < lengths[n]. A padded step
leaves the state unchanged and outputs zeros, so every sequence of a padded batch gets exactly what it
would get if run alone. The backward direction runs each sequence reversed within its own length, so
it starts at that sequence's last real step, not at the padding.
"""
import inspect
import warnings

import numpy as np

from .. import backend
from ..errors import ConfigError, ShapeError
from ..tape import compile_cell
from ..tensor import Tensor
from ..unroll import unroll
from .layers import dropout_mask
from .module import Module


class Recurrent(Module):
    """A multi-layer, optionally bidirectional recurrent layer over batch-first sequences (N, T, D).

    Layer l's input is layer l-1's outputs (both directions side by side when bidirectional).
    Hooks used by regularisers and labs (all off by default):
      dropout            dropout between layers, in training (Zaremba et al. 2014)
      recurrent_dropout  variational dropout on the h fed back, one mask per sequence (Gal & Ghahramani 2016)
      input_transforms   per layer, a Module applied to that layer's input sequence (e.g. BatchNorm)
      step_hook          step_hook(layer, direction, t, h_t) sees each step's hidden state
    `path` is how a cell runs over a sequence (PATHS):
      "auto"      (the default) the cell's own fused `sequence()` if it has one, else its compiled
                  tape; the tape also when recurrent dropout is on, which `sequence()` lacks
      "fused"     the cell's `sequence()`, always (a ConfigError for a cell without one)
      "compiled"  one step of the cell's `forward` traced and replayed for every step (tinygrad_rnn/tape.py)
      "composed"  the step-by-step graph of `forward`, op by op (tinygrad_rnn/unroll.py)
    A step hook needs the composed path and gets it on every path. `fused=` and `compiled=`, the two
    booleans `path` replaced, still work for one release, with a DeprecationWarning.
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bidirectional=False, dropout=0.0,
                 path="auto", fused=None, compiled=None, **cell_options):
        if isinstance(cell, str) or not isinstance(cell, type):
            raise ConfigError(f"Recurrent takes a cell class, got {cell!r}; look a name up with "
                              f"tinygrad_rnn.registry.cells.get({cell!r})" if isinstance(cell, str) else
                              f"Recurrent takes a cell class, got {type(cell).__name__}")
        for name, value in (("input size", input_size), ("hidden size", hidden_size), ("layers", num_layers)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"Recurrent: {name} must be a positive integer, got {value!r}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"Recurrent: dropout must be in [0, 1), got {dropout}")
        path = path_from_booleans(path, fused, compiled)
        if path == "fused" and not hasattr(cell, "sequence"):
            raise ConfigError(f"cell {_name(cell)!r} has no fused sequence(), which path 'fused' runs; "
                              "use path 'auto' or 'compiled' (its compiled tape) or 'composed'")
        _check_options(cell, cell_options)
        self.cell_class, self.cell_options = cell, dict(cell_options)
        self.input_size, self.hidden_size, self.num_layers = int(input_size), int(hidden_size), int(num_layers)
        self.num_directions = 2 if bidirectional else 1
        self.dropout, self.path = float(dropout), path
        self.recurrent_dropout = 0.0
        self.input_transforms = [None] * self.num_layers
        self.step_hook = None
        # cells[layer * num_directions + direction], the order of PyTorch's h_n
        self.cells = [cell(self.input_size if layer == 0 else self.hidden_size * self.num_directions,
                                 self.hidden_size, **cell_options)
                      for layer in range(self.num_layers) for _ in range(self.num_directions)]

    @property
    def recurrent_dropout(self):
        return self._recurrent_dropout

    @recurrent_dropout.setter
    def recurrent_dropout(self, p):
        if p and self.path == "fused":  # said when a regulariser sets it, before anything runs
            raise ConfigError("recurrent dropout needs the compiled or composed path: the cell's fused "
                              "sequence() has none; use path 'auto' (it takes the compiled tape then)")
        self._recurrent_dropout = p

    def initial_state(self, batch_size):
        """One zero state tuple per layer and direction."""
        return [cell.initial_state(batch_size) for cell in self.cells]

    def forward(self, x, lengths=None, state=None):
        """(outputs (N, T, H * directions), final state: a list of state tuples, one per layer*direction).

        `lengths` (N,) ints: the real steps of each padded sequence. `state`: where to start (e.g. the
        previous call's final state, detached, to carry it across calls); zeros by default.
        """
        n, t = self._check_input(x)
        lengths = _check_lengths(lengths, n, t)
        mask = reverse = None
        if lengths is not None:
            steps = np.arange(t)[None, :]
            mask = backend.convert((steps < lengths[:, None]).astype(x.dtype), x.backend)
            reverse = _reverse_index(lengths, t, x.backend)
        states = self.initial_state(n) if state is None else list(state)
        if len(states) != len(self.cells):
            raise ShapeError(f"Recurrent: state has {len(states)} entries; it needs one per layer and "
                             f"direction ({len(self.cells)})")
        layer_input, final = x, []
        for layer in range(self.num_layers):
            if layer > 0 and self.training and self.dropout > 0:
                layer_input = layer_input * dropout_mask(layer_input.shape, self.dropout, layer_input)
            if self.input_transforms[layer] is not None:
                layer_input = self.input_transforms[layer](layer_input)
            outputs = []
            for direction in range(self.num_directions):
                index = layer * self.num_directions + direction
                backwards = direction == 1
                sequence = _reverse(layer_input, reverse) if backwards else layer_input
                out, last = self._run(self.cells[index], sequence, states[index], mask, layer, direction)
                outputs.append(_reverse(out, reverse) if backwards else out)
                final.append(last)
            layer_input = outputs[0] if len(outputs) == 1 else Tensor.concatenate(outputs, axis=2)
        return layer_input, final

    def _run(self, cell, sequence, state, mask, layer, direction):
        """One layer and direction over the whole sequence, on the path the class docstring describes."""
        variational = self.training and self.recurrent_dropout > 0
        feedback = dropout_mask(state[0].shape, self.recurrent_dropout, state[0]) if variational else None
        path = "composed" if self.step_hook is not None else self.path
        if path == "auto":
            path = "fused" if hasattr(cell, "sequence") and not variational else "compiled"
        if path == "fused":
            return cell.sequence(sequence, state, mask)
        if path == "compiled":
            return compile_cell(cell).sequence(sequence, state, mask, feedback)
        hook = self.step_hook
        on_step = None if hook is None else (lambda t, h: hook(layer, direction, t, h))
        return unroll(cell, sequence, state, mask, on_step, feedback)

    def _check_input(self, x):
        if not isinstance(x, Tensor) or x.ndim != 3 or x.shape[2] != self.input_size:
            got = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"Recurrent expects a batch-first Tensor (N, T, {self.input_size}), got {got}")
        return x.shape[0], x.shape[1]

    def extra_repr(self):
        options = "".join(f", {k}={v!r}" for k, v in self.cell_options.items())
        path = "" if self.path == "auto" else f", path={self.path!r}"
        return (f"{_name(self.cell_class)!r}, {self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bidirectional={self.num_directions == 2}, dropout={self.dropout}{path}{options}")


PATHS = ("auto", "fused", "compiled", "composed")


def path_from_booleans(path="auto", fused=None, compiled=None):
    """`path`, checked; or the path that the deprecated booleans `fused` and `compiled` meant:
    fused=True (their default) "auto", compiled=True "compiled", fused=False "composed"."""
    if path not in PATHS:
        raise ConfigError(f"unknown path {path!r}; valid paths: {', '.join(map(repr, PATHS))}")
    if fused is None and compiled is None:
        return path
    warnings.warn("Recurrent(fused=..., compiled=...) is deprecated: write path='auto', 'fused', 'compiled' "
                  "or 'composed'", DeprecationWarning, stacklevel=3)
    if compiled and fused is False:
        raise ConfigError("compiled=True runs the compiled tape and fused=False the composed graph; "
                          "choose one: path='compiled' or path='composed'")
    meant = "compiled" if compiled else "composed" if fused is False else "auto"
    if path not in ("auto", meant):
        raise ConfigError(f"path={path!r} and the deprecated fused={fused}, compiled={compiled} disagree; "
                          "keep only path")
    return meant


def _name(cell_class):
    return getattr(cell_class, "plugin_name", cell_class.__name__)


def _check_options(cell_class, options):
    """Unknown cell options are a ConfigError that lists the valid ones (not a TypeError deep inside)."""
    params = inspect.signature(cell_class.__init__).parameters.values()
    if any(p.kind == p.VAR_KEYWORD for p in params):
        return
    valid = [p.name for p in params if p.name not in ("self", "input_size", "hidden_size")
             and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"cell {_name(cell_class)!r} has no option {', '.join(map(repr, unknown))}; "
                          f"its options: {', '.join(valid) or '(none)'}")


def _check_lengths(lengths, n, t):
    """Lengths as a host int array, or None when every sequence uses all T steps (no masking needed)."""
    if lengths is None:
        return None
    lengths = backend.to_numpy(lengths.data if isinstance(lengths, Tensor) else np.asarray(lengths))
    lengths = np.asarray(lengths).astype(np.int64)
    if lengths.shape != (n,) or lengths.min(initial=0) < 0 or lengths.max(initial=0) > t:
        raise ShapeError(f"Recurrent: lengths must be {n} integers in [0, {t}], got {lengths.tolist()}")
    return None if (lengths == t).all() else lengths


def _reverse_index(lengths, t, backend_name):
    """Gather index that reverses each sequence's first lengths[n] steps and leaves its padding in place.

    Applying it twice gives the original order back, so the same index undoes the reversal.
    """
    steps = np.arange(t)[None, :]
    source = np.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)
    rows = np.broadcast_to(np.arange(len(lengths))[:, None], source.shape)
    return backend.convert(rows, backend_name), backend.convert(source, backend_name)


def _reverse(sequence, index):
    """The sequence (N, T, F) in reverse time order, each within its own length when `index` is given."""
    return sequence[:, ::-1] if index is None else sequence[index]
