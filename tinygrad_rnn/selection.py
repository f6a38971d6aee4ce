"""Choose on validation, report on test: the one rule by which an epoch, a run or a configuration is picked.

Early stopping, a run's best epoch, `compare`'s ★, `sweep`'s best configuration and `tune`'s best
trial all order candidates by `selection_key`. The test split is only ever reported, never used to
choose: a best-of-N on test reports the luckiest draw, not the model.
"""
import math


def selection_key(metrics, higher_is_better):
    """How an epoch (or a run) is chosen, smaller first: by the dataset's metric on the validation split
    (its direction respected), and by the validation loss only where that metric is not a finite
    number. The test split is never looked at: choosing on it would report a lucky draw as the score.

    `metrics` holds "val_metric" and "val_loss" (an epoch's row of the history, or a run's summary)."""
    value = metrics.get("val_metric")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return (0, -value if higher_is_better else value)
    loss = metrics.get("val_loss")
    return (1, loss if isinstance(loss, (int, float)) and math.isfinite(loss) else math.inf)


def pick_best(candidates, higher_is_better, key=lambda c: c):
    """The candidate with the smallest `selection_key(key(candidate))`; None when there are none.
    Ties keep the earlier candidate."""
    best, best_key = None, None
    for candidate in candidates:
        k = selection_key(key(candidate), higher_is_better)
        if best_key is None or k < best_key:
            best, best_key = candidate, k
    return best
