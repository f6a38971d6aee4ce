"""Several seeds of one configuration, and the ensemble they make: how much of a score is the seed.

    rnnrun --cell gru --data airline --seeds 5        seeds 0..4 of gru, then mean ± sd and the ensemble

`expand_seeds` turns each config into N (seed, seed+1, ..., seed+N−1); each is an ordinary run.
`seed_groups` then gives, per cell, n and the mean and sample standard deviation of every metric, and
scores the **ensemble**: the mean of the runs' outputs (the mean probability for classification; read
from each run's outputs.npz) on the very same test split. `train_seeds` is both in one call, for the
Python API; the CLI drives the runs itself (progress bars) and calls `seed_groups`.

A synthetic dataset draws its data from the seed, so its seeds do not share a test set: there the
group has no ensemble (`ensemble_test_metric` null) and `ensemble_note` says why.
"""
import hashlib

import numpy as np

from .. import breakdowns
from ..baselines import best as best_baseline
from ..registry import datasets
from .config import construct
from .store import Run
from .sweeper import mean_std

OUTPUTS = "outputs.npz"   # experiment.OUTPUTS: each run's raw val and test outputs

# the numbers of a run's summary that a group reports as <name>_mean and <name>_std (and any test_*)
METRICS = ("val_metric", "test_metric", "val_loss", "test_loss", "train_loss", "baseline", "best_epoch", "epochs",
           "seconds")


def expand_seeds(configs, n):
    """Each config n times, seeds config["seed"], ..., config["seed"] + n − 1, in that order per config."""
    return [{**config, "seed": config["seed"] + k} for config in configs for k in range(n)]


def cell_label(config_or_summary, options=None):
    """'gru' or 'gru:variant=cho': what a group is called."""
    name = config_or_summary["cell"]
    options = options if options is not None else config_or_summary.get("cell_options") or {}
    return name + (":" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) if options else "")


def seed_groups(summaries, configs):
    """[{"cell", "n", "runs", "<metric>_mean", "<metric>_std", ..., "ensemble_test_metric", ...}]: one per
    configuration of `configs` (the runs' configs, in order; they differ only by seed within a group)."""
    groups = {}
    for summary, config in zip(summaries, configs):
        key = repr(sorted((k, repr(v)) for k, v in config.items() if k not in ("seed", "meta")))
        groups.setdefault(key, []).append((summary, config))
    return [_group(members) for members in groups.values()]


def _group(members):
    summaries = [s for s, _ in members]
    finished = [(s, c) for s, c in members if s.get("status") == "finished"]
    first = summaries[0]
    group = {"cell": cell_label(members[0][1]), "data": first.get("data"), "n": len(finished),
             "seeds": [c["seed"] for _, c in members], "runs": [s.get("run_id") for s in summaries],
             "metric": first.get("metric"), "higher_is_better": first.get("higher_is_better", False)}
    done = [s for s, _ in finished]
    names = list(METRICS) + sorted({k for s in done for k, v in s.items() if k.startswith("test_") and
                                    k not in METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)})
    for name in names:
        group[f"{name}_mean"], group[f"{name}_std"] = mean_std([s.get(name) for s in done])
    baselines = {}
    for s in done:
        for name, value in (s.get("baselines") or {}).items():
            baselines.setdefault(name, []).append(value)
    group["baselines"] = {name: mean_std(values)[0] for name, values in baselines.items()}
    group["best_baseline"] = best_baseline(group["baselines"], group["higher_is_better"])
    group.update(ensemble_scores(finished))
    best, value = group["best_baseline"], group.get("ensemble_test_metric")
    group["ensemble_beats_best_baseline"] = None if not best or value is None else \
        (value > best["value"] if group["higher_is_better"] else value < best["value"])
    return group


def ensemble_scores(finished):
    """{"ensemble_val_metric", "ensemble_test_metric"} of the mean of the runs' outputs, scored by the
    dataset on the split all of them share; with a note and nulls when they do not share one."""
    empty = {"ensemble_val_metric": None, "ensemble_test_metric": None}
    if len(finished) < 2:
        return {**empty, "ensemble_note": "an ensemble needs two or more finished runs"}
    built = []
    for summary, config in finished:
        dataset = construct(datasets.get(config["data"]), "dataset", config["data"], config["data_options"],
                            seed=config["seed"])
        dataset.splits()
        built.append(dataset)
    if len({split_digest(d) for d in built}) > 1:
        return {**empty, "ensemble_note": "the seeds drew different data (a synthetic dataset makes its data "
                                          "from the seed), so there is no common test split to average on"}
    dataset, scores = built[0], {}
    for name in ("val", "test"):
        split = dataset.splits()[name]
        if not len(split):
            scores[f"ensemble_{name}_metric"] = None
            continue
        outputs = [np.load(Run(s["run_dir"]).file(OUTPUTS))[name] for s, _ in finished]
        scores[f"ensemble_{name}_metric"] = float(dataset.metric(breakdowns.ensemble(outputs, dataset.problem), split))
    return scores


def split_digest(dataset):
    """A hash of the val and test splits' inputs and targets: equal for runs scored on the same data."""
    digest = hashlib.sha1()
    for name in ("val", "test"):
        split = dataset.splits()[name]
        for array in (split.x, split.y, split.lengths):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def train_seeds(configs, store, n, **hooks):
    """Train each resolved config with n seeds (`experiment.execute`), then group them:
    {"runs": [summary, ...], "groups": [group, ...]}. For the Python API; the CLI does the same with
    progress bars (training.train_all)."""
    from .experiment import execute
    expanded = expand_seeds(configs, n)
    summaries = [execute(config, store, **hooks) for config in expanded]
    return {"runs": summaries, "groups": seed_groups(summaries, expanded)}
