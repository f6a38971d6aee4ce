"""Every registered dataset keeps the protocol of `tinygrad_rnn.data`; the built-in ones mean what they say.

The protocol tests run over `datasets.names()`, so a user's dataset plugin is held to them too.
"""
import inspect

import numpy as np
import pytest

from tinygrad_rnn import ConfigError
from tinygrad_rnn.data import KINDS, PROBLEMS, one_hot
from tinygrad_rnn.registry import datasets

# small option values keep the suite fast; a dataset not named here is built with its defaults
from helpers import SMALL  # noqa: E402  (small options that keep every dataset quick)

NAMES = datasets.names()
FORECASTABLE = [n for n in NAMES if datasets.get(n).forecastable]
SPLITS = ("train", "val", "test")


def make(name, seed=0, **options):
    small = {k: v for k, v in SMALL.get(name, {}).items() if k in datasets.options(name)}
    return datasets.get(name)(seed=seed, **{**small, **options})


def perfect_outputs(dataset, split):
    """What a flawless model would output: the targets themselves, or logits that pick them."""
    if dataset.problem == "classification":
        return one_hot(split.y, dataset.output_size) * 100   # softmax of it: 1 to within e^-100
    return split.y.copy()


ISSUE_5 = {"sine", "airline", "sunspots", "vowels", "stock", "adding", "copy", "agreement", "sentiment",
           "addition", "tagging", "captions", "trajectory"}


def test_the_issue_datasets_are_all_registered():
    assert ISSUE_5 <= set(NAMES)


# ---- the protocol, for every registered dataset --------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_declares_its_task_options_and_defaults(name):
    cls = datasets.get(name)
    assert cls.kind in KINDS and cls.problem in PROBLEMS
    assert isinstance(cls.metric_name, str) and isinstance(cls.higher_is_better, bool)
    assert isinstance(cls.baseline_name, str) and cls.baseline_name
    assert set(cls.defaults) == {"hidden", "epochs", "lr", "batch_size"}
    assert datasets.describe(name), "the docstring's first line is the description in `rnnrun list`"
    assert list(inspect.signature(cls.__init__).parameters)[1] == "seed"
    assert all(default is not None for default in datasets.options(name).values()), "every option has a default"
    dataset = make(name)
    assert isinstance(dataset.input_size, int) and isinstance(dataset.output_size, int)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_identical_splits(name):
    a, b = make(name, seed=3).splits(), make(name, seed=3).splits()
    for key in SPLITS:
        np.testing.assert_array_equal(a[key].x, b[key].x)
        np.testing.assert_array_equal(a[key].y, b[key].y)
        if a[key].lengths is not None:
            np.testing.assert_array_equal(a[key].lengths, b[key].lengths)


@pytest.mark.parametrize("name", [n for n in NAMES if datasets.get(n).synthetic])
def test_a_new_seed_generates_new_data(name):
    a, b = make(name, seed=0).splits(), make(name, seed=1).splits()
    for key in SPLITS:
        assert a[key].x.shape != b[key].x.shape or not np.array_equal(a[key].x, b[key].x)


@pytest.mark.parametrize("name", NAMES)
def test_splits_have_the_declared_shapes_and_dtypes(name):
    dataset = make(name)
    for key, split in dataset.splits().items():
        n = len(split)
        assert n > 0 and len(split.y) == n, key
        assert split.x.dtype == np.float32
        if dataset.kind == "vec2seq":
            assert split.x.shape == (n, dataset.input_size)
        else:
            assert split.x.ndim == 3 and split.x.shape[0] == n and split.x.shape[2] == dataset.input_size
        if dataset.problem == "classification":
            assert split.y.dtype == np.int64
            assert split.y.min() >= 0 and split.y.max() < dataset.output_size
            expected_ndim = {"seq2vec": 1, "seq2seq": 2, "vec2seq": 2, "encdec": 2}[dataset.kind]
            assert split.y.ndim == expected_ndim
            if dataset.kind == "seq2seq":
                assert split.y.shape[1] == split.x.shape[1]
        else:
            assert split.y.dtype == np.float32
            if dataset.kind == "seq2vec":
                assert split.y.shape == (n, dataset.output_size)
            else:
                assert split.y.shape == split.x.shape[:2] + (dataset.output_size,)
        if split.lengths is not None:
            T = split.x.shape[1]
            assert split.lengths.dtype == np.int64 and split.lengths.shape == (n,)
            assert split.lengths.min() >= 1 and split.lengths.max() <= T
            past_the_end = np.arange(T)[None, :] >= split.lengths[:, None]
            assert not split.x[past_the_end].any(), "x must be zero past each sequence's length"


@pytest.mark.parametrize("name", NAMES)
def test_baseline_is_a_finite_number_on_every_split(name):
    dataset = make(name)
    for split in dataset.splits().values():
        assert np.isfinite(float(dataset.baseline(split)))


@pytest.mark.parametrize("name", NAMES)
def test_perfect_predictions_get_a_perfect_score(name):
    dataset = make(name)
    split = dataset.splits()["test"]
    score = float(dataset.metric(perfect_outputs(dataset, split), split))
    assert score == pytest.approx(1.0 if dataset.higher_is_better else 0.0, abs=1e-6)
    baseline = float(dataset.baseline(split))
    assert score >= baseline if dataset.higher_is_better else score <= baseline
    extra = dataset.extra_metrics(perfect_outputs(dataset, split), split)  # {} unless the dataset adds some
    assert isinstance(extra, dict) and all(np.isfinite(float(v)) for v in extra.values())


# ---- time series ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FORECASTABLE)
def test_forecastable_targets_are_the_next_step_of_the_inputs(name):
    dataset = make(name)
    assert dataset.kind == "seq2vec" and dataset.problem == "regression"
    assert dataset.output_size == dataset.input_size
    for split in dataset.splits().values():
        assert split.y.shape == (len(split), dataset.input_size)


@pytest.mark.parametrize("name", FORECASTABLE)
def test_forecast_starts_from_a_real_window_or_from_zeros(name):
    dataset = make(name)
    T, D = dataset.splits()["train"].x.shape[1:]
    window, truth = dataset.forecast_start(source="data", steps=7)
    assert window.shape == (T, D) and truth.shape == (7, D)
    assert np.isfinite(window).all() and np.isfinite(truth).all()
    window, truth = dataset.forecast_start(source="zeros", steps=7)
    assert window.shape == (T, D) and not window.any() and truth is None
    with pytest.raises(ConfigError, match="'data' or 'zeros'"):
        dataset.forecast_start(source="sideways", steps=7)


@pytest.mark.parametrize("name", ["airline", "sunspots"])
def test_real_series_forecast_from_the_window_before_the_test_targets(name):
    dataset = make(name)
    test = dataset.splits()["test"]
    window, truth = dataset.forecast_start(source="data", steps=len(test) + 5)
    np.testing.assert_array_equal(window, test.x[0])
    np.testing.assert_array_equal(truth[:len(test)], test.y)
    assert np.isnan(truth[len(test):]).all(), "past the end of the record the truth is unknown"


# ---- no test statistics in the normalisation -------------------------------------------------------
def _raw_reader(dataset):
    return "_raw_series" if hasattr(dataset, "_raw_series") else "_raw"


def _perturb_from(raw, start):
    if isinstance(raw, tuple):                       # (x, ...): the inputs are what is perturbed
        return (_perturb_from(raw[0], start),) + raw[1:]
    raw = np.array(raw, copy=True)
    raw[start:] = raw[start:] * 3 + 7
    return raw


NORMALISED = [n for n in NAMES if hasattr(datasets.get(n), "_raw") or hasattr(datasets.get(n), "_raw_series")]


@pytest.mark.parametrize("name", sorted(ISSUE_5))
def test_a_dataset_that_normalises_can_be_checked_for_leaks(name):
    dataset = make(name)
    dataset.splits()
    if hasattr(dataset, "normalizer"):
        assert name in NORMALISED, f"{name} normalises but has no _raw() / _raw_series() to check"


@pytest.mark.parametrize("name", NORMALISED)
def test_changing_the_test_part_of_the_raw_data_changes_nothing_else(name):
    clean = make(name)
    splits = clean.splits()
    reader = _raw_reader(clean)
    changed = make(name)
    raw = _perturb_from(getattr(clean, reader)(), clean.test_start)
    setattr(changed, reader, lambda: raw)
    other = changed.splits()
    for key in ("train", "val"):
        np.testing.assert_array_equal(splits[key].x, other[key].x)
        np.testing.assert_array_equal(splits[key].y, other[key].y)
    for a, b in zip(clean.normalizer, changed.normalizer):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(splits["test"].x, other["test"].x) or \
        not np.array_equal(splits["test"].y, other["test"].y), "the perturbation must reach the test split"


# ---- option checking ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, fragment", [
    ("sine", {"T": 1}, "option T"),
    ("sine", {"freq_min": 0.3, "freq_max": 0.1}, "freq_min"),
    ("airline", {"window": 6}, "option window"),
    ("sunspots", {"test_years": 0}, "option test_years"),
    ("vowels", {"val_per_speaker": 30}, "option val_per_speaker"),
    ("stock", {"switch": 2.0}, "option switch"),
    ("adding", {"T": 1}, "option T"),
    ("copy", {"alphabet": 1}, "option alphabet"),
    ("agreement", {"T": 0}, "option T"),
    ("sentiment", {"negation": -0.1}, "option negation"),
    ("addition", {"digits": 9}, "option digits"),
    ("tagging", {"names": 0}, "option names"),
    ("captions", {"noise": -1.0}, "option noise"),
    ("trajectory", {"K": 0}, "option K"),
])
def test_a_bad_option_is_a_config_error_naming_it(name, options, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make(name, **options)


# ---- what the built-in datasets mean ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vowels", "sentiment"])
def test_variable_length_sequences_are_padded_with_zeros_after_their_last_real_step(name):
    dataset = make(name)
    for split in dataset.splits().values():
        assert split.lengths.min() < split.lengths.max(), "lengths really vary"
        last_real = split.x[np.arange(len(split)), split.lengths - 1]
        assert (np.abs(last_real).sum(axis=1) > 0).all()


def test_vowels_keeps_every_utterance_and_its_length():
    dataset = make("vowels")
    s = dataset.splits()
    data = np.load(inspect.getmodule(type(dataset)).DATA)
    assert len(s["train"]) + len(s["val"]) == 270 and len(s["test"]) == 370
    assert s["train"].x.shape[1:] == (29, 12)
    np.testing.assert_array_equal(s["test"].lengths, data["len_test"])
    np.testing.assert_array_equal(np.sort(np.concatenate([s["train"].lengths, s["val"].lengths])),
                                  np.sort(data["len_train"]))
    assert np.bincount(s["val"].y).tolist() == [5] * 9, "validation is stratified by speaker"


def test_adding_target_is_the_sum_of_the_two_marked_values():
    split = make("adding").splits()["train"]
    values, markers = split.x[..., 0], split.x[..., 1]
    T = split.x.shape[1]
    assert (markers[:, :T // 2].sum(axis=1) == 1).all() and (markers[:, T // 2:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(split.y[:, 0], (values * markers).sum(axis=1), rtol=1e-6)


def test_adding_baseline_is_the_variance_of_the_sum():
    dataset = make("adding", T=4, n_train=20000)
    assert dataset.baseline(dataset.splits()["train"]) == pytest.approx(1 / 6, abs=0.01)


def test_copy_targets_repeat_the_first_symbols_after_the_delimiter():
    dataset = make("copy")
    split = dataset.splits()["train"]
    tokens, S = split.x.argmax(axis=-1), dataset.S
    np.testing.assert_array_equal(split.y[:, -S:], tokens[:, :S])
    assert not split.y[:, :-S].any(), "blank targets before the recall steps"
    assert (tokens[:, -S - 1] == dataset.alphabet + 1).all(), "the delimiter comes right before recall"


def test_copy_baseline_is_one_in_the_alphabet():
    dataset = make("copy", T=2, n_train=20000)
    assert dataset.baseline(dataset.splits()["train"]) == pytest.approx(1 / 8, abs=0.01)


def test_agreement_attractors_make_the_last_noun_a_coin_flip():
    dataset = make("agreement", n_train=4000)
    split = dataset.splits()["train"]
    tokens = split.x.argmax(axis=-1)
    nouns = 6
    assert ((tokens[:, 0] >= nouns).astype(int) == split.y).all(), "the label is the subject's number"
    is_noun = tokens < 2 * nouns
    last_noun = tokens[np.arange(len(tokens)), is_noun.shape[1] - 1 - is_noun[:, ::-1].argmax(axis=1)]
    assert 0.4 < ((last_noun >= nouns).astype(int) == split.y).mean() < 0.6
    assert 0.4 < split.y.mean() < 0.6


def test_sentiment_one_clause_reviews_are_their_adjective_flipped_by_negation():
    from tinygrad_rnn_plugins.datasets.sentiment import NEGATIONS, POSITIVE, Sentiment
    dataset = make("sentiment", n_train=400)
    split = dataset.splits()["train"]
    checked = 0
    for x, length, label in zip(split.x, split.lengths, split.y):
        words = Sentiment.decode(x, length).split()
        if "and" in words or "but" in words:
            continue
        negated = any(w in NEGATIONS for w in words)
        assert label == ((words[-1] in POSITIVE) != negated), words
        checked += 1
    assert checked > 50


def test_tagging_tag_is_decided_by_the_next_word():
    from tinygrad_rnn_plugins.datasets.tagging import NAMES, PLACES, SPEECH, VOCAB
    dataset = make("tagging")
    split = dataset.splits()["train"]
    words = np.array(VOCAB)[split.x.argmax(axis=-1)]
    rule = np.zeros(split.y.shape, np.int64)
    is_name = np.isin(words[:, :-1], NAMES)
    rule[:, :-1][is_name & np.isin(words[:, 1:], SPEECH)] = 1
    rule[:, :-1][is_name & np.isin(words[:, 1:], PLACES)] = 2
    np.testing.assert_array_equal(split.y, rule)
    assert not np.isin(words[:, -1], NAMES).any(), "a name is never left without the word after it"
    assert 0.5 < dataset.baseline(dataset.splits()["test"]) < 0.95, "the word alone leaves names ambiguous"


def test_addition_answers_are_the_sums_and_test_questions_are_unseen():
    dataset = make("addition")
    s = dataset.splits()
    questions = {}
    for key in SPLITS:
        for x, y in zip(s[key].x, s[key].y):
            question = dataset.decode(x.argmax(axis=-1))
            a, b = question.split("+")
            assert dataset.decode(y) == str(int(a) + int(b))
            questions.setdefault(question, set()).add(key)
    assert all(len(keys) == 1 for keys in questions.values())


def test_captions_spell_the_encoded_number():
    from tinygrad_rnn_plugins.datasets.captions import spell
    dataset = make("captions", noise=0.0)
    split = dataset.splits()["train"]
    numbers = split.x[:, :10].argmax(axis=1) * 10 + split.x[:, 10:].argmax(axis=1)
    assert [dataset.decode(y) for y in split.y] == [spell(int(n)) for n in numbers]
    assert spell(42) == "forty-two" and spell(13) == "thirteen" and spell(70) == "seventy"


def test_trajectory_forecasts_k_positions_relative_to_the_last_fix():
    dataset = make("trajectory")
    split = dataset.splits()["train"]
    assert split.y.shape[1] == 2 * dataset.K == dataset.output_size
    assert not split.x[:, -1].any(), "the last observed fix is the origin"
    assert dataset.baseline(split) > 0


def test_stock_direction_accuracy_is_reported_beside_rmse():
    dataset = make("stock")
    split = dataset.splits()["test"]
    assert dataset.extra_metrics(perfect_outputs(dataset, split), split)["direction_acc"] == 1.0
    assert 0 <= dataset.extra_metrics(np.zeros_like(split.y) + 1, split)["direction_acc"] <= 1


def test_the_dataset_protocol_is_declared_whole_in_the_base_class():
    """Every hook and attribute the trainer and the runner use has a declared default on Dataset, and no
    module reads a dataset's attribute with a fallback (the protocol lives in one place: data.py)."""
    import pathlib
    import re

    import tinygrad_rnn
    from tinygrad_rnn.data import Dataset
    for name in ("kind", "problem", "metric_name", "higher_is_better", "baseline_name", "forecastable",
                 "synthetic", "stateful", "streams", "defaults", "forecast_steps", "T", "n_train", "vocab",
                 "make_splits", "metric", "baseline", "extra_metrics", "denormalize", "forecast_start",
                 "preprocessing", "restore", "predict_file", "recorded_options", "encode", "decode", "splits",
                 "free_run", "forecast_picture", "data_label", "series_and_times", "without_validation",
                 "splits_made"):
        assert hasattr(Dataset, name), f"Dataset does not declare {name}"
    assert Dataset().extra_metrics(None, None) == {} and Dataset.forecast_steps == 50
    fallback = re.compile(r"(getattr\((self\.)?dataset, [^)]*,|hasattr\((self\.)?dataset\b)")
    package = pathlib.Path(tinygrad_rnn.__file__).parent
    offenders = [f"{p.name}:{n}" for p in package.rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1) if fallback.search(line)]
    assert not offenders, f"a dataset attribute read with a fallback: {offenders}"
