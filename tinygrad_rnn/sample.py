"""Generating text from a trained character-level language model, one character at a time.

    text = sample(model, dataset, prompt="ROMEO:", length=300, temperature=0.8, seed=1)

The prompt is read first, to warm the recurrent state up; then each step turns the last logits z
into a character and feeds it back, carrying the state:

    p_i = softmax(z / τ)_i          τ = temperature: < 1 sharper, > 1 flatter
    τ = 0 means greedy decoding:    c = argmax_i z_i  (no randomness)

A NumPy generator seeded with `seed` draws the characters, so one seed gives one text.
"""
import numpy as np

from . import backend
from .data import one_hot
from .errors import ConfigError
from .function import no_grad
from .tensor import Tensor


def is_text_dataset(dataset):
    """A character language model's dataset: per-step classification over a vocabulary it can encode."""
    return dataset.kind == "seq2seq" and dataset.problem == "classification" and dataset.vocab is not None


def next_char(logits, temperature, rng):
    """Draw one id from (V,) logits at `temperature` (0: the argmax)."""
    if temperature == 0:
        return int(np.argmax(logits))
    z = np.asarray(logits, np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    # inverse CDF with one uniform draw: the same seed gives the same character on every platform
    return int(min(np.searchsorted(np.cumsum(p), rng.random(), side="right"), len(p) - 1))


def sample(model, dataset, prompt="\n", length=200, temperature=1.0, seed=0, on_char=None):
    """The `length` characters generated after `prompt` (not included); `on_char(c)` sees each at once.

    An empty prompt starts from a newline, as if at the start of a speech."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0 (0 means greedy), got {temperature!r}")
    if length < 0:
        raise ConfigError(f"length must be >= 0, got {length!r}")
    ids = dataset.encode(prompt or "\n")
    size = len(dataset.vocab)
    rng = np.random.default_rng(seed)
    on_device = backend.get_backend()

    def step(char_ids, state):
        x = Tensor(backend.convert(one_hot(char_ids, size)[None], on_device))
        out, state = model.rnn(x, state=state)
        return backend.to_numpy(model.head(out[:, -1]).data)[0], state

    model.eval()
    generated = []
    with no_grad():
        logits, state = step(ids, None)
        for _ in range(length):
            c = next_char(logits, temperature, rng)
            generated.append(c)
            if on_char:
                on_char(dataset.decode([c]))
            logits, state = step(np.array([c]), state)
    return dataset.decode(generated)
