"""Addition as a sequence-to-sequence problem: read "123+45" character by character, write "168".

The classic demonstration of an encoder-decoder (the Keras `addition_rnn` example, after Zaremba &
Sutskever, "Learning to Execute", 2014). Pairs of numbers a, b with up to `digits` digits each are
drawn without repetition, so no test question was seen in training:

    question  "a+b" padded with spaces to 2·digits + 1 characters   → x (N, 2·digits+1, 12) one-hot
    answer    "a+b's sum" padded with spaces to digits + 1          → y (N, digits+1) token ids

over the 12 characters "0123456789+ ". The encoder reads the question; its final state starts a
decoder that writes the answer one character a step. The metric is exact match (every character
right); the baseline answers every question with the most common answer of the training split.
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, exact_match, one_hot

CHARS = "0123456789+ "


@register_dataset("addition")
class Addition(Dataset):
    """Encoder-decoder addition: "123+45" → "168", character by character."""

    kind, problem = "encdec", "classification"
    metric_name, higher_is_better = "exact_match", True
    baseline_name = "most common answer"
    synthetic = True
    defaults = {"hidden": 64, "epochs": 12, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, digits=2, n_train=4000):
        super().__init__(seed)
        if not isinstance(digits, int) or not 1 <= digits <= 6:
            raise ConfigError(f"addition option digits must be an integer from 1 to 6, got {digits!r}")
        pairs = 10 ** (2 * digits)
        if not isinstance(n_train, int) or not 4 <= n_train <= pairs * 2 // 3:
            raise ConfigError(f"addition option n_train must be an integer from 4 to {pairs * 2 // 3} "
                              f"(there are {pairs} questions with {digits} digits), got {n_train!r}")
        self.digits, self.n_train = digits, n_train
        self.input_size = self.output_size = len(CHARS)
        self.chars = CHARS

    def encode(self, texts, width):
        """Token ids (len(texts), width) of strings padded with spaces on the right."""
        return np.array([[CHARS.index(c) for c in text.ljust(width)] for text in texts], np.int64)

    def decode(self, ids):
        """The string of a row of token ids, without its padding."""
        return "".join(CHARS[i] for i in ids).rstrip()

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        n_val = n_test = self.n_train // 4
        largest = 10 ** self.digits
        questions = rng.choice(largest * largest, self.n_train + n_val + n_test, replace=False)
        a, b = questions // largest, questions % largest
        x = one_hot(self.encode([f"{i}+{j}" for i, j in zip(a, b)], 2 * self.digits + 1), len(CHARS))
        y = self.encode([str(i + j) for i, j in zip(a, b)], self.digits + 1)
        split = Split(x, y)
        return {"train": split.subset(slice(0, self.n_train)),
                "val": split.subset(slice(self.n_train, self.n_train + n_val)),
                "test": split.subset(slice(self.n_train + n_val, None))}

    def baseline(self, split):
        answers, counts = np.unique(self.splits()["train"].y, axis=0, return_counts=True)
        guess = np.broadcast_to(answers[counts.argmax()], split.y.shape)
        return exact_match(one_hot(guess, len(CHARS)), split)

    def metric(self, outputs, split):
        return exact_match(outputs, split)
