"""Sentiment of short synthetic reviews with negation: "the plot was not very good" is negative.

Reviews are one or two clauses made from a small lexicon:

    clause   = subject  verb  [not | never]  [very | really | so]  adjective
               ("the movie" / "the plot" / "the acting" / "it")  ("was" / "is")
    review   = clause  |  clause "and" clause  |  clause "but" clause

A clause's sentiment is its adjective's (good, great, fine, fun, nice / bad, awful, boring, dull,
poor), flipped by a negation; intensifiers change its strength, not its sign. Clauses joined by
"and" agree; after "but" the second clause decides. So the label depends on word order — which
word "not" precedes, which clause comes last — and a bag of words cannot get it right.

    x (N, 13, V) one-hot, zero past each review's length;   lengths (N,) in 3..13;   y (N,) 0 negative, 1 positive

The baseline is the majority class of the training split (≈ 0.5).
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, distinct_splits, majority_baseline, one_hot

POSITIVE = ["good", "great", "fine", "fun", "nice"]
NEGATIVE = ["bad", "awful", "boring", "dull", "poor"]
SUBJECTS = [["the", "movie"], ["the", "plot"], ["the", "acting"], ["it"]]
VERBS = ["was", "is"]
NEGATIONS = ["not", "never"]
INTENSIFIERS = ["very", "really", "so"]
VOCAB = sorted(set(POSITIVE + NEGATIVE + sum(SUBJECTS, []) + VERBS + NEGATIONS + INTENSIFIERS + ["and", "but"]))
MAX_LENGTH = 13   # two clauses of at most 6 words and a conjunction


@register_dataset("sentiment")
class Sentiment(Dataset):
    """Synthetic reviews with negation and "but": positive or negative (variable length)."""

    kind, problem = "seq2vec", "classification"
    metric_name, higher_is_better = "accuracy", True
    baseline_name = "majority class"
    synthetic = True
    defaults = {"hidden": 32, "epochs": 8, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, n_train=1500, negation=0.4):
        super().__init__(seed)
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"sentiment option n_train must be an integer >= 4, got {n_train!r}")
        if not 0 <= negation <= 1:
            raise ConfigError(f"sentiment option negation (probability a clause is negated) must be in [0, 1], "
                              f"got {negation!r}")
        self.n_train, self.negation = n_train, negation
        self.input_size, self.output_size = len(VOCAB), 2
        self.vocab = VOCAB

    def clause(self, rng, positive):
        """(words, sentiment) of one clause whose sentiment is `positive` (True or False)."""
        negated = rng.random() < self.negation
        words = list(SUBJECTS[rng.integers(len(SUBJECTS))]) + [VERBS[rng.integers(len(VERBS))]]
        if negated:
            words.append(NEGATIONS[rng.integers(len(NEGATIONS))])
        if rng.random() < 0.3:
            words.append(INTENSIFIERS[rng.integers(len(INTENSIFIERS))])
        adjectives = POSITIVE if positive != negated else NEGATIVE
        words.append(adjectives[rng.integers(len(adjectives))])
        return words

    def review(self, rng):
        """(words, label) of one review."""
        label = bool(rng.integers(2))
        shape = rng.integers(3)
        if shape == 0:
            return self.clause(rng, label), label
        if shape == 1:
            return self.clause(rng, label) + ["and"] + self.clause(rng, label), label
        return self.clause(rng, not label) + ["but"] + self.clause(rng, label), label

    def sample(self, rng, n):
        ids = {word: i for i, word in enumerate(VOCAB)}
        x = np.zeros((n, MAX_LENGTH, len(VOCAB)), np.float32)
        lengths, y = np.zeros(n, np.int64), np.zeros(n, np.int64)
        for row in range(n):
            words, label = self.review(rng)
            x[row, :len(words)] = one_hot([ids[w] for w in words], len(VOCAB))
            lengths[row], y[row] = len(words), label
        return Split(x, y, lengths)

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        # val and test hold no sequence of an earlier split (short sequences of few symbols repeat by chance)
        sizes = {"train": self.n_train, "val": self.n_train // 4, "test": self.n_train // 4}
        return distinct_splits(self.sample, rng, sizes)

    def baseline(self, split):
        return majority_baseline(self.splits()["train"], split)

    @staticmethod
    def decode(x, length):
        """The words of one review, from its one-hot rows (for looking at the data)."""
        return " ".join(VOCAB[i] for i in x[:length].argmax(axis=-1))
