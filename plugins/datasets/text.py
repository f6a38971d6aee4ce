"""Character-level language modelling of Shakespeare: predict each next character (bits per character).

Source: the "tiny Shakespeare" corpus, 1,115,394 characters of Shakespeare's plays (public domain)
in the arrangement of Andrej Karpathy's char-rnn (github.com/karpathy/char-rnn, data/tinyshakespeare,
2015), shipped whole in `data/tinyshakespeare.txt`. The vocabulary is the corpus's 65 distinct
characters, sorted (newline, space, punctuation, 3, A–Z, a–z), so it is the same for every slice.

The first `chars` characters are used: the first 90% for training, the next 5% for validation, the
last 5% for testing, three disjoint stretches in reading order (held-out text is always later text).
With c_i the id of character i,

    x_t = one_hot(c_t)  (V,),    y_t = c_{t+1}          (seq2seq classification, V ≈ 65 classes)

Training text is one long stream cut into `streams` equal parallel streams, each cut into chunks of
T steps; the train split's rows [b·streams : (b+1)·streams] are chunk b of every stream, so row j of
a batch continues row j of the batch before and the trainer carries the recurrent state across
batches (`stateful`): the net reads each stream from its start to its end, as in char-rnn. Validation
and test text are cut into independent windows of T steps, each read from a zero state.

The metric is bits per character, the mean of −log2 softmax(logits)[next char]; the baseline is the
unigram model: each character's frequency in the training text (add-one smoothed), which knows
nothing of order (≈ 4.8 bits per character on this corpus). The corpus is fixed, so the seed
changes only the weights, never the data.
"""
from importlib.resources import files

import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, one_hot

CORPUS = "tinyshakespeare.txt"


def load_corpus():
    """The whole shipped corpus as one string."""
    return (files("tinygrad_rnn_plugins.datasets") / "data" / CORPUS).read_text(encoding="utf-8")


def bits_per_char(logits, targets):
    """Mean −log2 p(target) under softmax(logits): (..., V) logits, (...) integer targets."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, np.asarray(targets)[..., None], axis=-1)
    return float(-picked.mean() / np.log(2))


@register_dataset("text")
class Text(Dataset):
    """Tiny Shakespeare, character by character: next-character prediction (bits per char)."""

    kind, problem = "seq2seq", "classification"
    metric_name, higher_is_better = "bpc", False
    baseline_name = "unigram"
    stateful = True
    synthetic = False              # a fixed corpus: the seed changes nothing in the data
    # docs/05-text-generation.md: `rnnrun --cell lstm --data text --layers 2 --reg tbptt:k=100` with
    # these defaults reads 2.7M characters in a few CPU minutes and ends near 2.7 bits per character
    defaults = {"hidden": 64, "epochs": 5, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=100, chars=600_000, streams=32):
        super().__init__(seed)
        if not isinstance(T, int) or T < 2:
            raise ConfigError(f"text option T (characters per chunk) must be an integer >= 2, got {T!r}")
        if not isinstance(streams, int) or streams < 1:
            raise ConfigError(f"text option streams (parallel streams = batch size) must be a positive "
                              f"integer, got {streams!r}")
        corpus = load_corpus()
        need = max(20 * (T + 1), 10 * streams * (T + 1))  # a chunk per stream, a window per held-out split
        if not isinstance(chars, int) or not need <= chars <= len(corpus):
            raise ConfigError(f"text option chars (characters of the corpus to use) must be an integer from "
                              f"{need} (for T={T}, streams={streams}) to {len(corpus)}, got {chars!r}")
        self.T, self.chars, self.streams = T, chars, streams
        self.vocab = sorted(set(corpus))
        self._ids = {c: i for i, c in enumerate(self.vocab)}
        self.input_size = self.output_size = len(self.vocab)
        n_train = chars * 9 // 10
        n_val = (chars - n_train) // 2
        # half-open character ranges of the corpus each split reads (inputs and targets)
        self.ranges = {"train": (0, n_train), "val": (n_train, n_train + n_val),
                       "test": (n_train + n_val, chars)}
        self.text = {name: corpus[a:b] for name, (a, b) in self.ranges.items()}

    def encode(self, text):
        """Character ids of `text`; a character outside the vocabulary is a ConfigError naming it."""
        unknown = sorted(set(text) - set(self._ids))
        if unknown:
            raise ConfigError(f"characters {', '.join(map(repr, unknown))} are not in the text vocabulary; "
                              f"it has these {len(self.vocab)}: {''.join(self.vocab)!r}")
        return np.array([self._ids[c] for c in text], np.int64)

    def decode(self, ids):
        return "".join(self.vocab[int(i)] for i in ids)

    def _windows(self, ids, starts):
        """Rows of T inputs (one-hot) and their T next-character targets, starting at `starts`."""
        index = np.asarray(starts)[:, None] + np.arange(self.T)[None, :]
        return Split(one_hot(ids[index], len(self.vocab)), ids[index + 1])

    def make_splits(self):
        ids = {name: self.encode(text) for name, text in self.text.items()}
        # train: `streams` streams of `per_stream` inputs each; row b*streams + j is chunk b of stream j
        per_stream = (len(ids["train"]) - 1) // self.streams
        chunks = per_stream // self.T
        starts = np.arange(chunks)[:, None] * self.T + np.arange(self.streams)[None, :] * per_stream
        splits = {"train": self._windows(ids["train"], starts.ravel())}
        for name in ("val", "test"):
            windows = (len(ids[name]) - 1) // self.T
            splits[name] = self._windows(ids[name], np.arange(windows) * self.T)
        return splits

    def metric(self, outputs, split):
        return bits_per_char(outputs, split.y)

    def baseline(self, split):
        counts = np.bincount(self.encode(self.text["train"]), minlength=len(self.vocab)) + 1.0
        return float(-np.log2(counts / counts.sum())[split.y].mean())
