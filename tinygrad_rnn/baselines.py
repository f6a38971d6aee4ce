"""Strong simple baselines: what a recurrent net has to beat before its score means anything.

Every baseline here is a predictor fitted on the training split only. It returns *outputs shaped like
the model's* for a split (regression values in the model's normalised target space, or class
log-probabilities), so the dataset's own `metric` scores it on exactly the windows, sequences and units
the model is scored on. NumPy only.

    forecasting (a window x (N, T, D) → the next K values y (N, K·O)):
        persistence       ŷ_{t+k} = x_t                          the last observed value, repeated
        seasonal naive    ŷ_{t+k} = x_{t+k−s⌈k/s⌉}               the value one season s before
        training mean     ŷ = mean of the training targets
        linear            ŷ = [vec(x), 1] β,  β = argmin ‖Xβ − Y‖² + α‖β‖²   (ridge; the intercept is
                          not penalised), α chosen on the validation split by the dataset's metric
    classification (a sequence x (N, T, D) → one label):
        majority          the training split's class frequencies (argmax: the most common class)
        1-nn              the label of the nearest training sequence, Euclidean distance between
                          z-normalised sequences (each feature of each sequence to mean 0, sd 1 over
                          its own steps). Sequences of unequal length are first resampled by linear
                          interpolation to the longest training length, so each is compared shape to
                          shape over its whole duration.

`standard(dataset, name)` is what `Dataset.baselines` returns: every baseline that applies to the
dataset, scored on split `name`, plus the dataset's own `baseline` under its `baseline_name`.
"""
import numpy as np

RIDGE_PENALTIES = tuple(10.0 ** k for k in range(-4, 5))   # α tried for `linear`, on standardised inputs
SMOOTHING = 1e-3   # probability mass a one-hot baseline leaves to the other classes (finite log-loss)


# ---- forecasting ------------------------------------------------------------------------------------
def horizon_of(split, targets):
    """K: the steps ahead a row of y holds, with `targets` series in each step."""
    return split.y.reshape(len(split.y), -1).shape[1] // targets


def persistence(split, target_inputs):
    """(N, K·O) the last value of each target series in the window, repeated for every step ahead."""
    last = split.x[:, -1, list(target_inputs)] if split.lengths is None else \
        split.x[np.arange(len(split.x)), split.lengths - 1][:, list(target_inputs)]
    steps = horizon_of(split, len(target_inputs))
    return np.tile(last, (1, steps)).reshape(split.y.shape).astype(np.float64)


def seasonal_naive(split, target_inputs, season):
    """(N, K·O) each step's value one season earlier (s⌈k/s⌉ steps back), from the window; None when
    the window is shorter than a season."""
    T = split.x.shape[1]
    if not season or T < season or split.lengths is not None:
        return None
    steps = horizon_of(split, len(target_inputs))
    k = np.arange(1, steps + 1)
    back = T - 1 + k - season * np.ceil(k / season).astype(int)   # window index of time t+k−s⌈k/s⌉
    values = split.x[:, back][:, :, list(target_inputs)]          # (N, K, O)
    return values.reshape(split.y.shape).astype(np.float64)


def training_mean(train, split):
    """(N, ...) the mean training target, for every row."""
    mean = np.asarray(train.y, np.float64).mean(axis=0)
    return np.broadcast_to(mean, split.y.shape).copy()


def _flat_inputs(split):
    return np.asarray(split.x, np.float64).reshape(len(split.x), -1)


def ridge_fit(train, penalties=RIDGE_PENALTIES):
    """[(α, predict), ...]: ridge regressions from every input of the window to every target, one per α.

    The inputs are standardised with the training windows' statistics and an unpenalised intercept
    is the training targets' mean; one SVD serves every α:  β_α = V diag(s / (s² + α)) Uᵀ (Y − Ȳ)."""
    X = _flat_inputs(train)
    mean, std = X.mean(axis=0), X.std(axis=0)
    std[std < 1e-12] = 1.0
    Y = np.asarray(train.y, np.float64).reshape(len(train.y), -1)
    y_mean = Y.mean(axis=0)
    U, s, Vt = np.linalg.svd((X - mean) / std, full_matrices=False)
    projected = U.T @ (Y - y_mean)
    fitted = []
    for alpha in penalties:
        beta = Vt.T @ ((s / (s ** 2 + alpha))[:, None] * projected)

        def predict(split, beta=beta):
            out = ((_flat_inputs(split) - mean) / std) @ beta + y_mean
            return out.reshape(split.y.shape)
        fitted.append((alpha, predict))
    return fitted


def linear(train, val, score, higher_is_better=False):
    """(predict, α): the ridge regression whose penalty α scores best on `val` by `score(outputs, val)`
    (the dataset's metric); without validation rows, α = 1."""
    fitted = ridge_fit(train)
    if val is None or len(val) == 0:
        return dict(fitted)[1.0], 1.0
    scored = [(score(predict(val), val), alpha, predict) for alpha, predict in fitted]
    finite = [item for item in scored if np.isfinite(item[0])] or scored
    best = (max if higher_is_better else min)(finite, key=lambda item: item[0])
    return best[2], best[1]


# ---- classification ------------------------------------------------------------------------------
def _log_probabilities(probabilities):
    return np.log(np.asarray(probabilities, np.float64))


def majority(train, split, classes):
    """(N, C) log of the training split's class frequencies, for every sequence."""
    counts = np.bincount(np.asarray(train.y).reshape(-1), minlength=classes).astype(np.float64)
    frequencies = (counts + SMOOTHING) / (counts + SMOOTHING).sum()
    return np.tile(_log_probabilities(frequencies), (len(split.y), 1))


def resample(split, length):
    """(N, length, D): each sequence's real steps stretched or squeezed to `length` by linear interpolation."""
    x = np.asarray(split.x, np.float64)
    if split.lengths is None and x.shape[1] == length:
        return x
    sizes = np.full(len(x), x.shape[1]) if split.lengths is None else np.asarray(split.lengths)
    out = np.empty((len(x), length, x.shape[2]))
    where = np.linspace(0.0, 1.0, length)
    for i, n in enumerate(sizes):
        n = max(int(n), 1)
        for d in range(x.shape[2]):
            out[i, :, d] = np.interp(where * (n - 1), np.arange(n), x[i, :n, d])
    return out


def z_normalize(x):
    """Each feature of each sequence to mean 0, sd 1 over its steps (a flat feature stays 0)."""
    std = x.std(axis=1, keepdims=True)
    return (x - x.mean(axis=1, keepdims=True)) / np.where(std < 1e-8, 1.0, std)


def nearest_neighbour(train, split, classes):
    """(N, C) log-probabilities of 1-NN: nearly all mass on the nearest training sequence's label."""
    length = int(train.x.shape[1] if train.lengths is None else max(int(train.lengths.max()), 1))
    a = z_normalize(resample(train, length)).reshape(len(train.x), -1)
    b = z_normalize(resample(split, length)).reshape(len(split.x), -1)
    # ‖b − a‖² = ‖b‖² − 2 b·a + ‖a‖², in blocks of rows to bound memory
    nearest = np.concatenate([
        np.argmin((b[i:i + 512] ** 2).sum(1)[:, None] - 2 * b[i:i + 512] @ a.T + (a ** 2).sum(1)[None], axis=1)
        for i in range(0, len(b), 512)]) if len(b) else np.zeros(0, int)
    labels = np.asarray(train.y)[nearest]
    probabilities = np.full((len(labels), classes), SMOOTHING / max(classes - 1, 1))
    probabilities[np.arange(len(labels)), labels] = 1.0 - SMOOTHING
    return _log_probabilities(probabilities)


# ---- every baseline that applies to a dataset --------------------------------------------------------
def outputs(dataset, name):
    """{baseline name: outputs shaped like the model's for split `name`} of the baselines in this module
    that apply to `dataset` (seq2vec tasks: one prediction per sequence)."""
    splits = dataset.splits()
    train, val, split = splits["train"], splits.get("val"), splits[name]
    if dataset.kind != "seq2vec" or not len(train):
        return {}
    if dataset.problem == "classification":
        classes = int(dataset.output_size)
        return {"majority": majority(train, split, classes), "1-nn": nearest_neighbour(train, split, classes)}
    found = {}
    target_inputs = dataset.target_inputs
    if target_inputs is None and dataset.forecastable:
        target_inputs = [0]
    if target_inputs is not None:
        found["persistence"] = persistence(split, target_inputs)
        seasonal = seasonal_naive(split, target_inputs, dataset.season)
        if seasonal is not None:
            found["seasonal naive"] = seasonal
    found["training mean"] = training_mean(train, split)
    predict, _ = linear(train, val, dataset.metric, dataset.higher_is_better)
    found["linear"] = predict(split)
    return found


def standard(dataset, name="test"):
    """{baseline name: the dataset's metric on split `name`}: this module's baselines and the dataset's own."""
    split = dataset.splits()[name]
    scores = {key: float(dataset.metric(out, split)) for key, out in outputs(dataset, name).items()}
    scores[dataset.baseline_name] = float(dataset.baseline(split))
    return scores


def best(scores, higher_is_better=False):
    """{"name", "value"} of the strongest baseline in `scores` ({name: value}); None when there is none."""
    finite = {k: v for k, v in scores.items() if v is not None and np.isfinite(v)}
    if not finite:
        return None
    key = (max if higher_is_better else min)(finite, key=finite.get)
    return {"name": key, "value": finite[key]}
