"""Captions for numbers: from a noisy code of a number 0–99 to its name spelled out, "forty-two".

A vector-to-sequence task, the shape of image captioning in miniature. The input describes a
number n by its digits, one-hot, plus Gaussian noise:

    v = [one_hot(n // 10, 10), one_hot(n % 10, 10)] + noise · ε,   ε ~ N(0, I)   → x (N, 20)

and the target is its English name as characters, padded with spaces to 13 (the longest name,
"seventy-seven"): y (N, 13) token ids over the 19 characters " -efghilnorstuvwxyz". The vector
sets the initial state of a decoder that writes the name one character a step. Names share parts
("forty-", "-two", "-teen"), so the decoder can learn them compositionally. The metric is exact match; the baseline
writes the training split's most common caption for every input.
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, exact_match, one_hot

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
        "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def spell(n):
    """The English name of 0 <= n <= 99: 7 → "seven", 42 → "forty-two"."""
    if n < 20:
        return ONES[n]
    return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])


NAMES = [spell(n) for n in range(100)]
CHARS = " " + "".join(sorted(set("".join(NAMES))))
LENGTH = max(len(name) for name in NAMES)   # 13


@register_dataset("captions")
class Captions(Dataset):
    """Vector to sequence: a noisy digit code of 0–99 → its spelled name ("forty-two")."""

    kind, problem = "vec2seq", "classification"
    metric_name, higher_is_better = "exact_match", True
    baseline_name = "most common caption"
    synthetic = True
    defaults = {"hidden": 64, "epochs": 12, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, noise=0.2, n_train=1500):
        super().__init__(seed)
        if not 0 <= noise <= 2:
            raise ConfigError(f"captions option noise must be in [0, 2], got {noise!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"captions option n_train must be an integer >= 4, got {n_train!r}")
        self.noise, self.n_train = noise, n_train
        self.input_size, self.output_size = 20, len(CHARS)
        self.chars = CHARS

    def sample(self, rng, n):
        numbers = rng.integers(0, 100, n)
        code = np.concatenate([one_hot(numbers // 10, 10), one_hot(numbers % 10, 10)], axis=1)
        x = (code + self.noise * rng.standard_normal(code.shape)).astype(np.float32)
        y = np.array([[CHARS.index(c) for c in NAMES[k].ljust(LENGTH)] for k in numbers], np.int64)
        return Split(x, y)

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        return {"train": self.sample(rng, self.n_train), "val": self.sample(rng, self.n_train // 4),
                "test": self.sample(rng, self.n_train // 4)}

    def decode(self, ids):
        """The caption of a row of token ids, without its padding."""
        return "".join(CHARS[i] for i in ids).rstrip()

    def metric(self, outputs, split):
        return exact_match(outputs, split)

    def baseline(self, split):
        captions, counts = np.unique(self.splits()["train"].y, axis=0, return_counts=True)
        guess = np.broadcast_to(captions[counts.argmax()], split.y.shape)
        return exact_match(one_hot(guess, len(CHARS)), split)
