"""Entity tagging where a word's tag is decided by the word AFTER it: a task for bidirectional nets.

Sentences are made of filler words and ambiguous names — "jordan", "paris", "florence", ... can each
be a person or a place. What follows a name decides its tag:

    name + speech verb  ("said", "says", "wrote", "laughed")    → the name is PER
    name + place noun   ("airport", "station", "river", "city") → the name is LOC
    every other word (fillers, verbs, place nouns)              → O

    x (N, T, V) one-hot,   y (N, T) tags: 0 O, 1 PER, 2 LOC

A left-to-right net must tag a name before it has seen the next word, so it can only guess; a
bidirectional net (`--bidirectional`) reads the next word first and gets every tag right. The
metric is per-token accuracy; the baseline tags each word with its most frequent tag in the
training split (O for words it never saw).
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, accuracy, one_hot

NAMES = ["jordan", "paris", "florence", "austin", "chelsea", "victoria", "georgia", "sydney"]
SPEECH = ["said", "says", "wrote", "laughed"]
PLACES = ["airport", "station", "river", "city"]
FILLERS = ["the", "then", "and", "we", "met", "near", "today", "later", "visited", "from"]
VOCAB = NAMES + SPEECH + PLACES + FILLERS
TAGS = ["O", "PER", "LOC"]


@register_dataset("tagging")
class Tagging(Dataset):
    """Tag names as person or place from the word after them (per-token, needs the future)."""

    kind, problem = "seq2seq", "classification"
    metric_name, higher_is_better = "accuracy", True
    baseline_name = "majority tag per word"
    synthetic = True
    defaults = {"hidden": 32, "epochs": 10, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=20, n_train=1000, names=0.5):
        super().__init__(seed)
        if not isinstance(T, int) or T < 2:
            raise ConfigError(f"tagging option T (sentence length) must be an integer >= 2, got {T!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"tagging option n_train must be an integer >= 4, got {n_train!r}")
        if not 0 < names <= 1:
            raise ConfigError(f"tagging option names (chance a phrase is a name) must be in (0, 1], got {names!r}")
        self.T, self.n_train, self.names = T, n_train, names
        self.input_size, self.output_size = len(VOCAB), len(TAGS)
        self.vocab, self.tags = VOCAB, TAGS

    def sentence(self, rng):
        """(word ids (T,), tags (T,)): phrases — a filler word, or a name and its cue — until T words."""
        def pick(words):
            return VOCAB.index(words[rng.integers(len(words))])
        words, tags = [], []
        while len(words) < self.T:
            if rng.random() < self.names and len(words) <= self.T - 2:
                person = rng.random() < 0.5
                words += [pick(NAMES), pick(SPEECH if person else PLACES)]
                tags += [TAGS.index("PER" if person else "LOC"), TAGS.index("O")]
            else:
                words.append(pick(FILLERS))
                tags.append(TAGS.index("O"))
        return words, tags

    def sample(self, rng, n):
        words, tags = zip(*(self.sentence(rng) for _ in range(n)))
        return Split(one_hot(np.array(words), len(VOCAB)), np.array(tags, np.int64))

    def make_splits(self):
        rng = np.random.default_rng(self.seed)
        return {"train": self.sample(rng, self.n_train), "val": self.sample(rng, self.n_train // 4),
                "test": self.sample(rng, self.n_train // 4)}

    def baseline(self, split):
        train = self.splits()["train"]
        counts = np.zeros((len(VOCAB), len(TAGS)), np.int64)
        np.add.at(counts, (train.x.argmax(axis=-1), train.y), 1)
        best_tag = counts.argmax(axis=1)                  # O (0) for words never seen
        return accuracy(one_hot(best_tag[split.x.argmax(axis=-1)], len(TAGS)), split)
