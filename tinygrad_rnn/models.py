"""The models the runner builds: a recurrent layer and a linear head, shaped by the dataset's kind.

    seq2vec   x (N, T, D) → Recurrent → output at each sequence's last real step → Linear → (N, O)
              (bidirectional: the forward direction's last step and the backward direction's first)
    seq2seq   x (N, T, D) → Recurrent → Linear on every step → (N, T, O)
    vec2seq   v (N, D) → Linear + tanh → decoder's initial h → decoder unrolled one token a step
    encdec    x (N, T, D) → encoder Recurrent → its final state → decoder, one token a step

A decoder's input at step t is the one-hot of token t-1 (zeros at t = 0): the true token while
training (teacher forcing), its own previous prediction when generating (`predict`).
"""
import numpy as np

from . import backend
from .data import KINDS
from .errors import ConfigError
from .nn import Linear, Module
from .nn.recurrent import Recurrent
from .registry import cells
from .tensor import Tensor


class SequenceModel(Module):
    """`cell` is a cell class or a registered cell's name; `path` is how it runs (see `Recurrent`)."""

    def __init__(self, kind, cell, input_size, hidden_size, output_size, num_layers=1,
                 bidirectional=False, dropout=0.0, path="auto", **cell_options):
        cell = cells.get(cell) if isinstance(cell, str) else cell
        if kind not in KINDS:
            raise ConfigError(f"unknown task kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        for name, value in (("hidden size", hidden_size), ("layers", num_layers), ("input size", input_size),
                            ("output size", output_size)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        self.kind, self.output_size = kind, output_size
        directions = 2 if bidirectional else 1
        if kind in ("seq2vec", "seq2seq", "encdec"):
            self.rnn = Recurrent(cell, input_size, hidden_size, num_layers, bidirectional, dropout,
                                 path=path, **cell_options)
        if kind in ("seq2vec", "seq2seq"):
            self.head = Linear(hidden_size * directions, output_size)
            return
        # decoder tasks: the decoder is unidirectional; with a bidirectional encoder its hidden size
        # is 2H, so the two directions' final states can be joined side by side
        decoder_hidden = hidden_size * (directions if kind == "encdec" else 1)
        if kind == "vec2seq":
            self.encode = Linear(input_size, decoder_hidden * num_layers)
        self.decoder = Recurrent(cell, output_size, decoder_hidden, num_layers, False, dropout,
                                 path=path, **cell_options)
        self.head = Linear(decoder_hidden, output_size)

    # ---- the four shapes of task ------------------------------------------------------------------
    def forward(self, x, lengths=None, state=None, targets=None):
        """(outputs, state). `targets` (N, T_out) token ids are needed by decoder tasks in training."""
        if self.kind == "seq2seq":
            out, state = self.rnn(x, lengths=lengths, state=state)
            return self.head(out), state
        if self.kind == "seq2vec":
            out, state = self.rnn(x, lengths=lengths, state=state)
            return self.head(last_step(out, lengths, self.rnn.num_directions)), state
        if targets is None:
            return self.predict(x, lengths), None
        context = self._decoder_state(x, lengths)
        inputs = shifted_one_hot(targets, self.output_size, x)
        out, state = self.decoder(inputs, state=context)
        return self.head(out), state

    def predict(self, x, lengths=None, steps=None):
        """Outputs for evaluation; decoder tasks generate greedily, feeding back their own tokens."""
        if self.kind in ("seq2vec", "seq2seq"):
            return self(x, lengths)[0]
        steps = steps or self.target_length
        state = self._decoder_state(x, lengths)
        xp = backend.array_module(x.data)
        token_input = Tensor(xp.zeros((x.shape[0], 1, self.output_size), x.dtype))
        logits = []
        for _ in range(steps):
            out, state = self.decoder(token_input, state=state)
            step_logits = self.head(out)
            logits.append(step_logits)
            chosen = step_logits.data[:, 0, :].argmax(axis=-1)
            token_input = Tensor(xp.eye(self.output_size, dtype=x.dtype)[chosen][:, None, :])
        return Tensor.concatenate(logits, axis=1)

    def _decoder_state(self, x, lengths):
        layers = self.decoder.num_layers
        if self.kind == "vec2seq":
            hs = self.encode(x).tanh()
            size = hs.shape[1] // layers
            states = []
            for layer in range(layers):
                zeros = self.decoder.cells[layer].initial_state(x.shape[0])
                states.append((hs[:, layer * size:(layer + 1) * size],) + tuple(zeros[1:]))
            return states
        _, final = self.rnn(x, lengths=lengths)
        directions = self.rnn.num_directions
        if directions == 1:
            return final
        # join each layer's forward and backward states side by side for the 2H-wide decoder
        return [tuple(Tensor.concatenate([f, b], axis=1) for f, b in zip(final[2 * l], final[2 * l + 1]))
                for l in range(layers)]

    target_length = None  # set by the trainer for decoder tasks (the dataset's output length)


def last_step(outputs, lengths, directions):
    """Each sequence's summary: the forward direction at its last real step, the backward at step 0."""
    n, t, width = outputs.shape
    hidden = width // directions
    last = (np.full(n, t - 1) if lengths is None else np.asarray(backend.to_numpy(lengths)) - 1).astype(np.int64)
    forward = outputs[np.arange(n), last][:, :hidden] if directions == 2 else outputs[np.arange(n), last]
    if directions == 1:
        return forward
    return Tensor.concatenate([forward, outputs[:, 0, hidden:]], axis=1)


def shifted_one_hot(targets, size, like):
    """Decoder inputs for teacher forcing: zeros, then the one-hot of each target token but the last."""
    xp = backend.array_module(like.data)
    ids = targets.data if isinstance(targets, Tensor) else xp.asarray(targets)
    one_hot = xp.eye(size, dtype=like.dtype)[ids]
    start = xp.zeros((ids.shape[0], 1, size), like.dtype)
    return Tensor(xp.concatenate([start, one_hot[:, :-1]], axis=1))


def summary_rows(model):
    """(name, type, shape, parameter count) for the model summary table."""
    rows = []
    for name, module in model.named_modules():
        own = [(n, t) for n, t in vars(module).items() if isinstance(t, Tensor) and t.requires_grad]
        if own:
            rows.append((name or type(model).__name__, type(module).__name__,
                         ", ".join(f"{n} {tuple(t.shape)}" for n, t in own), sum(t.size for _, t in own)))
    return rows


