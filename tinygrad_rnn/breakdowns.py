"""A score taken apart: per step ahead, per class, the confusion matrix, every prediction, and the ensemble.

All of them start from a model's raw `outputs` for one split (what `Trainer.outputs` returns: regression
values in the model's normalised space, or classification logits) and the dataset, so they apply to
any dataset plugin:

    per_step(dataset, outputs, name)      [metric of step 1, ..., step K] for a K-step forecast
    per_class(outputs, split, labels)     {label: {precision, recall, f1, support}}
    confusion(outputs, split, labels)     {"labels", "matrix"}: matrix[i][j] = sequences of true label i
                                          predicted as j
    prediction_rows(dataset, outputs, name)   the rows of the run's predictions.csv
    ensemble(outputs_list, problem)       the mean of several runs' outputs: mean values for regression,
                                          the log of the mean softmax probabilities for classification
"""
import numpy as np

from .data import step_mask


# ---- the units a user reads ---------------------------------------------------------------------------
def in_units(dataset, outputs, name):
    """Regression `outputs` for split `name` in the target's own units (`Dataset.target_units`)."""
    return np.asarray(dataset.target_units(outputs, name), np.float64)


def class_labels(dataset):
    """The class names a dataset declares (`Dataset.class_names`), else "0", "1", ...: the labels of reports."""
    names = dataset.class_names()
    return [str(n) for n in names] if names is not None else [str(k) for k in range(int(dataset.output_size))]


# ---- multi-step forecasts -----------------------------------------------------------------------------
STEP_METRICS = {"rmse": lambda e: float(np.sqrt(np.mean(e ** 2))), "mse": lambda e: float(np.mean(e ** 2)),
                "mae": lambda e: float(np.mean(np.abs(e)))}


def per_step(dataset, outputs, name):
    """[the metric on step 1, ..., step K] of a K-step regression forecast (seq2vec, y (N, K)), in the
    target's units; None for one step, another task, or a metric that is not RMSE, MSE or MAE."""
    split = dataset.splits()[name]
    score = STEP_METRICS.get(dataset.metric_name)
    if dataset.kind != "seq2vec" or dataset.problem != "regression" or score is None:
        return None
    if split.y.ndim != 2 or split.y.shape[1] < 2 or not len(split.y):
        return None
    errors = in_units(dataset, outputs, name) - in_units(dataset, split.y, name)
    return [score(errors[:, k]) for k in range(errors.shape[1])]


# ---- classification ------------------------------------------------------------------------------------
def _labels_and_predictions(outputs, split):
    """(true, predicted) class indices over every scored target: each sequence, or each real step."""
    predicted = np.asarray(outputs).argmax(axis=-1)
    truth = np.asarray(split.y)
    if truth.ndim == 2 and split.lengths is not None and truth.shape == predicted.shape:
        mask = step_mask(split)
        return truth[mask], predicted[mask]
    return truth.reshape(-1), predicted.reshape(-1)


def confusion(outputs, split, labels):
    """{"labels": [...], "matrix": [[...]]}: row i, column j counts targets of class i predicted as j."""
    truth, predicted = _labels_and_predictions(outputs, split)
    k = len(labels)
    matrix = np.zeros((k, k), np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return {"labels": list(labels), "matrix": matrix.tolist()}


def per_class(outputs, split, labels):
    """{label: {"precision", "recall", "f1", "support"}}; a ratio with nothing to divide by is 0."""
    matrix = np.asarray(confusion(outputs, split, labels)["matrix"], np.float64)
    hits, predicted, actual = np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1)
    report = {}
    for k, label in enumerate(labels):
        precision = hits[k] / predicted[k] if predicted[k] else 0.0
        recall = hits[k] / actual[k] if actual[k] else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        report[label] = {"precision": float(precision), "recall": float(recall), "f1": float(f1),
                         "support": int(actual[k])}
    return report


def softmax(logits):
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


# ---- predictions.csv ------------------------------------------------------------------------------------
def prediction_columns(dataset):
    """The header of predictions.csv for this dataset."""
    if dataset.problem == "classification" and dataset.kind == "seq2vec":
        return ["split", "series", "truth", "prediction"] + [f"p_{label}" for label in class_labels(dataset)]
    return ["split", "series", "time", "step", "truth", "prediction"]


def prediction_rows(dataset, outputs, name):
    """The rows of predictions.csv for split `name` (see `prediction_columns`).

    seq2vec regression: one row per window and step ahead, truth and prediction in the target's units,
    `time` the target's own time (`Dataset.series_and_times`; empty where the dataset has none).
    seq2vec classification: one row per sequence, its true and predicted label and each class's
    probability. Per-step tasks (seq2seq, decoders): one row per real step, `step` its position."""
    split = dataset.splits()[name]
    n = len(split.y)
    series, times = dataset.series_and_times(name)
    series = [str(s) for s in series] if series is not None else [str(i) for i in range(n)]
    rows = []
    if dataset.problem == "classification":
        labels = class_labels(dataset)
        predicted = np.asarray(outputs).argmax(axis=-1)
        if dataset.kind == "seq2vec":
            probabilities = softmax(outputs)
            for i in range(n):
                rows.append([name, series[i], labels[int(split.y[i])], labels[int(predicted[i])],
                             *(round(float(p), 6) for p in probabilities[i])])
            return rows
        mask = step_mask(split) if split.y.ndim == 2 else np.ones(split.y.shape, bool)
        for i in range(n):
            for t in np.flatnonzero(mask[i]):
                when = "" if times is None else times[i][t]
                rows.append([name, series[i], when, int(t) + 1, labels[int(split.y[i, t])],
                             labels[int(predicted[i, t])]])
        return rows
    truth = in_units(dataset, split.y, name).reshape(n, -1)
    prediction = in_units(dataset, outputs, name).reshape(n, -1)
    for i in range(n):
        for k in range(truth.shape[1]):
            when = "" if times is None else times[i][k]
            rows.append([name, series[i], when, k + 1, readable(truth[i, k]), readable(prediction[i, k])])
    return rows


def readable(value, digits=8):
    """A float to 8 significant digits (float32 holds about 7): the targets mapped back read 355, not
    354.9999999569949."""
    return float(f"{float(value):.{digits}g}")


# ---- several runs as one model --------------------------------------------------------------------------
def ensemble(outputs_list, problem):
    """One model's outputs from several runs' (same split, same shapes): the mean prediction for
    regression; for classification the log of the mean probability, so argmax and log-loss read it as
    a model's logits."""
    stacked = np.stack([np.asarray(o, np.float64) for o in outputs_list])
    if problem == "classification":
        return np.log(softmax(stacked).mean(axis=0) + 1e-300)
    return stacked.mean(axis=0)
