"""The `text` dataset (Shakespeare, character by character), sampling from a model, and `rnnrun sample`."""
import numpy as np
import pytest

from tinygrad_rnn import ConfigError
from tinygrad_rnn.data import one_hot
from tinygrad_rnn.runner.experiment import execute, resolve
from tinygrad_rnn.models import SequenceModel
from tinygrad_rnn.registry import datasets
from tinygrad_rnn.runner.store import RunStore
from tinygrad_rnn.sample import next_char, sample

from helpers import rnnrun

SMALL = {"T": 20, "chars": 4000, "streams": 4}


def make(seed=0, **options):
    return datasets.get("text")(seed=seed, **{**SMALL, **options})


@pytest.fixture(scope="module")
def small():
    return make()


@pytest.fixture(scope="module")
def model(small):
    return SequenceModel("seq2seq", "gru", small.input_size, 16, small.output_size)


# ---- the data ---------------------------------------------------------------------------------------
def test_the_vocabulary_is_the_corpus_characters_sorted(small):
    assert small.vocab == sorted(small.vocab) and len(small.vocab) == 65
    assert small.input_size == small.output_size == len(small.vocab)
    assert small.decode(small.encode("ROMEO:\nO, she doth teach")) == "ROMEO:\nO, she doth teach"


def test_the_corpus_is_fixed_so_every_seed_gets_the_same_splits(small):
    for other in (make(seed=0), make(seed=5)):
        for name, split in small.splits().items():
            np.testing.assert_array_equal(split.x, other.splits()[name].x)
            np.testing.assert_array_equal(split.y, other.splits()[name].y)


def test_inputs_are_one_hot_characters_and_targets_the_next_character(small):
    for name, split in small.splits().items():
        assert split.x.shape[1:] == (SMALL["T"], 65) and split.x.dtype == np.float32
        np.testing.assert_array_equal(split.x.sum(axis=-1), 1)
        ids = split.x.argmax(axis=-1)
        np.testing.assert_array_equal(ids[:, 1:], split.y[:, :-1])  # y_t is x_{t+1}
        assert small.decode(ids[0]) in small.text[name]


def test_held_out_text_is_later_and_disjoint_from_the_training_text(small):
    r = small.ranges
    assert r["train"][0] == 0 and r["train"][1] <= r["val"][0] and r["val"][1] <= r["test"][0]
    assert r["test"][1] == SMALL["chars"]
    for name in ("val", "test"):
        text = small.text[name]
        for window in (text[:200], text[-200:]):  # long enough that Shakespeare does not repeat it
            assert window not in small.text["train"]


def test_row_j_of_each_training_batch_continues_row_j_of_the_batch_before(small):
    train, streams, T = small.splits()["train"], small.streams, small.T
    assert len(train) % streams == 0 and len(train) // streams >= 2
    ids = train.x.argmax(axis=-1)
    chunks = ids.reshape(-1, streams, T)                 # (batch b, stream j, T)
    targets = train.y.reshape(-1, streams, T)
    for b in range(len(chunks) - 1):
        # the last target of chunk b is the first input of chunk b + 1, in every stream
        np.testing.assert_array_equal(targets[b, :, -1], chunks[b + 1, :, 0])
    stream_0 = small.decode(chunks[:, 0].ravel())
    assert small.text["train"].startswith(stream_0)
    assert small.stateful and small.streams == SMALL["streams"]


def test_bpc_of_a_uniform_model_is_log2_of_the_vocabulary_and_the_unigram_baseline_beats_it(small):
    test = small.splits()["test"]
    uniform = np.zeros(test.y.shape + (65,), np.float32)
    assert small.metric(uniform, test) == pytest.approx(np.log2(65))
    assert 3.5 < small.baseline(test) < np.log2(65)


def test_a_bad_option_or_prompt_is_a_config_error_naming_it(small):
    with pytest.raises(ConfigError, match="option chars"):
        make(chars=100)
    with pytest.raises(ConfigError, match="option T"):
        make(T=1)
    with pytest.raises(ConfigError, match="'é'"):
        small.encode("café")


# ---- sampling ---------------------------------------------------------------------------------------
def test_temperature_zero_is_greedy_and_needs_no_randomness(small, model):
    a = sample(model, small, prompt="ROMEO:", length=30, temperature=0, seed=1)
    b = sample(model, small, prompt="ROMEO:", length=30, temperature=0, seed=2)
    assert a == b and len(a) == 30
    # greedy: each character is the argmax of the logits after reading the prompt and what came before
    text = "ROMEO:" + a
    logits, _ = model(model_input(small, text[:-1]))
    np.testing.assert_array_equal(logits.numpy()[0, 5:].argmax(axis=-1), small.encode(a))


def model_input(dataset, text):
    from tinygrad_rnn import Tensor
    return Tensor(one_hot(dataset.encode(text), len(dataset.vocab))[None])


def test_the_same_seed_gives_the_same_sample_and_another_seed_another(small, model):
    first = sample(model, small, prompt="\n", length=60, temperature=1.0, seed=3)
    again = sample(model, small, prompt="\n", length=60, temperature=1.0, seed=3)
    other = sample(model, small, prompt="\n", length=60, temperature=1.0, seed=4)
    assert first == again and first != other


def test_characters_are_drawn_in_proportion_to_the_softmax():
    rng = np.random.default_rng(0)
    logits = np.log([0.7, 0.2, 0.1])
    draws = np.bincount([next_char(logits, 1.0, rng) for _ in range(4000)], minlength=3) / 4000
    np.testing.assert_allclose(draws, [0.7, 0.2, 0.1], atol=0.03)
    assert next_char(logits, 0, rng) == 0


# ---- the command ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A one-epoch text run and a sine run, in one runs folder."""
    store = RunStore(str(tmp_path_factory.mktemp("runs")))
    tiny = {**SMALL, "chars": 2000}
    text = execute(resolve({"cell": "gru", "data": "text", "data_options": tiny, "hidden": 8, "epochs": 1}), store)
    sine = execute(resolve({"cell": "gru", "data": "sine", "data_options": {"n_train": 40}, "hidden": 4,
                            "epochs": 1}), store)
    return store.root, text["run_id"], sine["run_id"]


def test_sample_prints_the_prompt_and_its_continuation(runs):
    root, text_run, _ = runs
    result = rnnrun("sample", text_run, "--prompt", "KING", "--length", "40", "--seed", "1", "--runs-dir", root)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("KING") and len(result.stdout) == len("KING") + 40 + 1
    again = rnnrun("sample", text_run, "--prompt", "KING", "--length", "40", "--seed", "1", "--runs-dir", root)
    assert again.stdout == result.stdout


@pytest.mark.parametrize("args, fragment", [
    (["--prompt", "naïve"], "'ï' are not in the text vocabulary"),
    (["--temperature", "-1"], "temperature"),
    (["--length", "-5"], "length"),
])
def test_sample_errors_are_one_line(runs, args, fragment):
    root, text_run, _ = runs
    result = rnnrun("sample", text_run, *args, "--runs-dir", root)
    assert result.exit_code == 2 and fragment in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_sampling_a_run_on_another_dataset_says_which_datasets_it_needs(runs):
    root, _, sine_run = runs
    result = rnnrun("sample", sine_run, "--runs-dir", root)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "'sine'" in result.stderr and "text" in result.stderr
    missing = rnnrun("sample", "no-such-run", "--runs-dir", root)
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1
