"""Subject–verb agreement: "the keys to the cabinet ... are": predict the verb's number.

Each sequence starts with a subject noun, singular or plural, followed by tokens of distraction
before the verb would come. The distraction mixes filler words with one to three attractor nouns,
all of one number chosen independently of the subject — so in half the sequences they have the
opposite number, and "agree with the last noun" is right only half the time. The model reads one-hot
tokens and classifies the verb's number: 0 singular ("was"), 1 plural ("were").

    x (N, T + 1, V) one-hot,   y (N,) = number of x's first token,   lengths (N,) = 1 + distractors

Every validation and test sentence has all T distractors: the verb is T + 1 steps from its
subject. Training sentences vary in length, as natural text does: from SHORTEST (8) to T
distractors, log-uniformly (as many of 8–16 as of 50–100), zero-padded after their end. With every
training sentence T long, no cell gets a gradient from the subject across 50 or 100 steps early in
training, and in a default run's epochs gated cells fail as surely as plain ones. From shorter ones a
gated cell learns to keep the subject's number over a dozen steps, and its gates then keep it for
as long as it must; a plain RNN's gradient fades within a few steps, so it stays near chance on
the long test sentences. (With sentences as short as 3 distractors a plain RNN also learns to
latch the number and solves the task: SHORTEST sets how much help the training set gives.)

Both classes are equally likely; the baseline is the majority class of the training split (≈ 0.5).
Linzen, Dupoux & Goldberg (2016) study the natural-language version of this task.
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, majority_baseline, one_hot

SINGULAR = ["cat", "dog", "key", "author", "pilot", "bird"]
PLURAL = ["cats", "dogs", "keys", "authors", "pilots", "birds"]
FILLERS = ["the", "of", "near", "with", "on", "old", "red", "big", "small", "that", "by", "and"]
VOCAB = SINGULAR + PLURAL + FILLERS
SHORTEST = 8   # distractors in the shortest training sentence


@register_dataset("agreement")
class Agreement(Dataset):
    """Subject–verb number agreement across T distractor tokens with attractor nouns."""

    kind, problem = "seq2vec", "classification"
    metric_name, higher_is_better = "accuracy", True
    baseline_name = "majority class"
    synthetic = True
    defaults = {"hidden": 32, "epochs": 30, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=50, n_train=1500):
        super().__init__(seed)
        if not isinstance(T, int) or T < 3:
            raise ConfigError(f"agreement option T (distractor tokens) must be an integer >= 3, got {T!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"agreement option n_train must be an integer >= 4, got {n_train!r}")
        self.T, self.n_train = T, n_train
        self.input_size, self.output_size = len(VOCAB), 2
        self.vocab = VOCAB

    def sample(self, rng, n, vary=False):
        """n sentences; with `vary`, of SHORTEST to T distractors each (else all T), zero-padded to T + 1."""
        nouns = len(SINGULAR)
        number = rng.integers(0, 2, n)                               # the subject's: 0 singular, 1 plural
        tokens = len(SINGULAR) + len(PLURAL) + rng.integers(0, len(FILLERS), (n, self.T + 1))
        tokens[:, 0] = number * nouns + rng.integers(0, nouns, n)
        shortest = min(SHORTEST, self.T)
        distractors = (np.exp(rng.uniform(np.log(shortest), np.log(self.T + 1), n)).astype(int) if vary
                       else np.full(n, self.T))
        attractor_number = rng.integers(0, 2, n)                     # independent of the subject's
        for row in range(n):
            places = 1 + rng.choice(distractors[row], rng.integers(1, 4), replace=False)
            tokens[row, places] = attractor_number[row] * nouns + rng.integers(0, nouns, len(places))
        x = one_hot(tokens, len(VOCAB))
        lengths = 1 + distractors
        x[np.arange(self.T + 1)[None, :] >= lengths[:, None]] = 0    # padding: no token at all
        return Split(x, number.astype(np.int64), lengths.astype(np.int64))

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        return {"train": self.sample(rng, self.n_train, vary=True), "val": self.sample(rng, self.n_train // 4),
                "test": self.sample(rng, self.n_train // 4)}

    def baseline(self, split):
        return majority_baseline(self.splits()["train"], split)
