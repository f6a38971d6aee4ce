"""Japanese Vowels: which of nine speakers said /ae/? Variable-length speech classification.

Source: UCI Machine Learning Repository, "Japanese Vowels" (Kudo, Toyama & Shimbo, 1999,
CC BY 4.0), arranged as in sktime's copy, in `data/japanese_vowels_sktime.npz`. Nine male
speakers each utter /ae/; every frame is 12 LPC cepstrum coefficients; utterances last 7–29
frames. 270 training utterances (30 a speaker) and 370 test ones.

    x (N, 29, 12) float32, zero past each utterance's length;   lengths (N,);   y (N,) speaker 0–8

The features are standardised per coefficient with the mean and std of the training utterances'
real frames. Validation is `val_per_speaker` utterances of each speaker, drawn from the training
set with the seed (stratified). The baseline is the majority class of the training split.
"""
from pathlib import Path

import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, majority_baseline

DATA = Path(__file__).with_name("data") / "japanese_vowels_sktime.npz"


@register_dataset("vowels")
class Vowels(Dataset):
    """Japanese Vowels (UCI): 9 speakers from 7–29 frames of 12 LPC cepstra (variable length)."""

    kind, problem = "seq2vec", "classification"
    metric_name, higher_is_better = "accuracy", True
    baseline_name = "majority class"
    defaults = {"hidden": 32, "epochs": 30, "lr": 1e-2, "batch_size": 16}
    test_start = 270   # rows of `_raw()` from here on are the test set

    def __init__(self, seed=0, val_per_speaker=5):
        super().__init__(seed)
        if not isinstance(val_per_speaker, int) or not 0 < val_per_speaker < 30:
            raise ConfigError(f"vowels option val_per_speaker must be an integer from 1 to 29 "
                              f"(each speaker has 30 training utterances), got {val_per_speaker!r}")
        self.val_per_speaker = val_per_speaker
        self.input_size, self.output_size = 12, 9

    def _raw(self):
        """(x (640, 29, 12), lengths (640,), y (640,)): the 270 training utterances, then the 370 test ones."""
        d = np.load(DATA)
        T = max(d["X_train"].shape[1], d["X_test"].shape[1])
        pad = [np.pad(d[k], ((0, 0), (0, T - d[k].shape[1]), (0, 0))) for k in ("X_train", "X_test")]
        return (np.concatenate(pad), np.concatenate([d["len_train"], d["len_test"]]),
                np.concatenate([d["y_train"], d["y_test"]]))

    def make_splits(self):
        x, lengths, y = self._raw()
        lengths, y = lengths.astype(np.int64), y.astype(np.int64)
        real = np.arange(x.shape[1])[None, :] < lengths[:, None]           # (N, T) real frames
        rng = np.random.default_rng(self.seed)
        is_val = np.zeros(len(y), bool)
        for speaker in range(self.output_size):
            rows = np.flatnonzero(y[:self.test_start] == speaker)
            is_val[rng.choice(rows, self.val_per_speaker, replace=False)] = True
        is_train = ~is_val & (np.arange(len(y)) < self.test_start)
        frames = x[is_train][real[is_train]]                                 # (frames, 12)
        self.normalizer = (frames.mean(axis=0), frames.std(axis=0))
        x = ((x - self.normalizer[0]) / self.normalizer[1]) * real[:, :, None]
        split = Split(x.astype(np.float32), y, lengths)
        return {"train": split.subset(is_train), "val": split.subset(is_val),
                "test": split.subset(np.arange(len(y)) >= self.test_start)}

    def baseline(self, split):
        return majority_baseline(self.splits()["train"], split)
