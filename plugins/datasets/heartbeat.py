"""Synthetic ECG strips: classify each window as normal or abnormal (seq2vec, 2 classes).

The signal is synthetic — no patient data — built the way ECG simulators build it (after McSharry et
al., "A dynamical model for generating synthetic electrocardiogram signals", IEEE TBME 50(3), 2003):
each beat is a sum of Gaussian bumps for its P, Q, R, S and T waves, placed around the beat's R peak,

    ecg(t) = Σ_beats Σ_{w ∈ P,Q,R,S,T} a_w · exp(−(t − t_R − θ_w)² / 2 b_w²)

sampled at FS = 50 Hz (a window of T = 100 samples is 2 s, two or three beats). Each window is one
record: a heart rate drawn from 55–100 beats a minute, heart-rate variability (RR intervals modulated
by a slow respiratory sine plus 2% jitter), the T wave's delay growing with the RR interval (QT
lengthens as the heart slows), per-beat amplitude jitter, a gain of 0.7–1.3, baseline wander (a
0.15–0.35 Hz sine) and white noise of standard deviation `noise` (in units of the R wave).

A fraction `abnormal` of the windows is abnormal, half of each kind:
  * a premature ventricular contraction (PVC): one beat inside the window comes early (at 55–70% of
    the normal RR interval, the next beat keeping its time: a compensatory pause), with no P wave, a
    wide QRS complex (b_R 35 ms instead of 12 ms) and an inverted T wave;
  * ST elevation: every beat's ST segment, between S and T, is raised by 0.15–0.3 of the R wave.

    x (N, T, 1), standardised with the training split's mean and std;   y (N,) 0 normal, 1 abnormal

The metric is accuracy; the baseline is the majority class of the training split (normal: about
1 − abnormal). Sensitivity (abnormal windows found) and specificity (normal ones passed) are shown
beside it, because accuracy alone flatters a model that calls everything normal.
"""
import numpy as np

from tinygrad_rnn import ConfigError, register_dataset
from tinygrad_rnn.data import Dataset, Split, majority_baseline

FS = 50.0  # samples a second

# (amplitude in R-wave units, offset from the R peak in s, width b in s); the T wave's offset is scaled
# by sqrt(RR) per beat (Bazett's QT correction, run backwards)
NORMAL = {"P": (0.12, -0.16, 0.025), "Q": (-0.08, -0.035, 0.010), "R": (1.0, 0.0, 0.012),
          "S": (-0.20, 0.035, 0.012), "T": (0.28, 0.25, 0.050)}
PVC = {"R": (1.2, 0.0, 0.035), "S": (-0.45, 0.09, 0.035), "T": (-0.35, 0.32, 0.070)}
ST_SEGMENT = (0.12, 0.05)  # the elevation's bump: offset and width in s (its amplitude is drawn)


@register_dataset("heartbeat")
class Heartbeat(Dataset):
    """Synthetic ECG windows (P-QRS-T waves, HRV, wander, noise): normal vs abnormal beats."""

    kind, problem = "seq2vec", "classification"
    metric_name, higher_is_better = "accuracy", True
    baseline_name = "majority class"
    synthetic = True
    defaults = {"hidden": 32, "epochs": 40, "lr": 1e-2, "batch_size": 32}

    def __init__(self, seed=0, T=100, n_train=800, abnormal=0.3, noise=0.03):
        super().__init__(seed)
        if not isinstance(T, int) or not 50 <= T <= 1000:
            raise ConfigError(f"heartbeat option T (samples per window at {FS:g} Hz) must be an integer from "
                              f"50 to 1000 (a window must hold a whole beat), got {T!r}")
        if not isinstance(n_train, int) or n_train < 4:
            raise ConfigError(f"heartbeat option n_train must be an integer >= 4, got {n_train!r}")
        if not 0 <= abnormal <= 1:
            raise ConfigError(f"heartbeat option abnormal (fraction of abnormal windows) must be in [0, 1], "
                              f"got {abnormal!r}")
        if noise < 0:
            raise ConfigError(f"heartbeat option noise must be >= 0, got {noise!r}")
        self.T, self.n_train, self.abnormal, self.noise = T, n_train, abnormal, noise
        self.input_size, self.output_size = 1, 2

    # ---- one record ------------------------------------------------------------------------------------
    def beat_times(self, rng, duration):
        """R-peak times (s) and RR intervals from before the window's start to after its end."""
        rr_mean = 60.0 / rng.uniform(55, 100)
        breathing = rng.uniform(0, 2 * np.pi)
        times, rrs = [], []
        t = -rng.uniform(0.5, 0.5 + rr_mean)  # an earlier beat's T wave may reach into the window
        while t < duration + 0.5:
            rr = rr_mean * (1 + 0.04 * np.sin(2 * np.pi * 0.25 * t + breathing) + 0.02 * rng.standard_normal())
            times.append(t)
            rrs.append(rr)
            t += rr
        return np.array(times), np.array(rrs)

    def record(self, rng, kind):
        """(T,) samples of one window; kind is "normal", "pvc" or "st"."""
        duration = self.T / FS
        t = np.arange(self.T) / FS
        times, rrs = self.beat_times(rng, duration)
        shapes = [NORMAL] * len(times)
        if kind == "pvc":
            inside = np.flatnonzero((times > 0.2 * duration) & (times < 0.8 * duration))
            inside = inside[inside >= 1]
            k = rng.choice(inside) if len(inside) else np.argmin(np.abs(times - duration / 2))
            times[k] = times[k - 1] + rrs[k - 1] * rng.uniform(0.55, 0.70)
            shapes[k] = PVC
        elevation = rng.uniform(0.15, 0.3) if kind == "st" else 0.0
        waves = []  # (amplitude, centre, width) of every bump in the window
        for t_r, rr, shape in zip(times, rrs, shapes):
            jitter = 1 + 0.05 * rng.standard_normal()
            for wave, (a, theta, b) in shape.items():
                waves.append((jitter * a, t_r + theta * (np.sqrt(rr) if wave == "T" else 1), b))
            if elevation:
                waves.append((elevation, t_r + ST_SEGMENT[0], ST_SEGMENT[1]))
        a, centre, b = np.array(waves).T[:, :, None]
        signal = (a * np.exp(-(t - centre) ** 2 / (2 * b * b))).sum(axis=0)
        wander = rng.uniform(0.05, 0.15) * np.sin(2 * np.pi * rng.uniform(0.15, 0.35) * t + rng.uniform(0, 2 * np.pi))
        return rng.uniform(0.7, 1.3) * signal + wander + self.noise * rng.standard_normal(self.T)

    def _raw(self):
        """(x (n, T) raw signals, y (n,) labels, kinds (n,) "normal"/"pvc"/"st"): train, val, test in order."""
        rng = np.random.default_rng(self.seed)
        n = self.n_train + 2 * (self.n_train // 4)
        y = (rng.random(n) < self.abnormal).astype(np.int64)
        kinds = np.where(y == 0, "normal", np.where(rng.random(n) < 0.5, "pvc", "st"))
        return np.stack([self.record(rng, kind) for kind in kinds]), y, kinds

    def make_splits(self):
        x, y, kinds = self._raw()
        val_start = self.n_train
        self.test_start = val_start + self.n_train // 4
        parts = {"train": slice(0, val_start), "val": slice(val_start, self.test_start),
                 "test": slice(self.test_start, len(x))}
        # one scalar mean and std, from the training windows only
        self.normalizer = (float(x[parts["train"]].mean()), float(x[parts["train"]].std()))
        z = ((x - self.normalizer[0]) / self.normalizer[1])[:, :, None].astype(np.float32)
        self.kinds = {name: kinds[part] for name, part in parts.items()}
        return {name: Split(z[part], y[part]) for name, part in parts.items()}

    # ---- scores ----------------------------------------------------------------------------------------
    def baseline(self, split):
        return majority_baseline(self.splits()["train"], split)

    def extra_metrics(self, outputs, split):
        predicted = np.asarray(outputs).argmax(axis=-1)
        abnormal = split.y == 1
        return {"sensitivity": float((predicted[abnormal] == 1).mean()) if abnormal.any() else float("nan"),
                "specificity": float((predicted[~abnormal] == 0).mean()) if (~abnormal).any() else float("nan")}
