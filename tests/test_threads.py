"""BLAS threads are chosen by rnnrun, not inherited (issue 27 item 1): --threads N|auto, RNNRUN_THREADS,
the count recorded in summary.json and in force while the run trains."""
import json
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from tinygrad_rnn import Regularizer, register_regularizer, threads
from tinygrad_rnn.errors import ConfigError
from tinygrad_rnn.nn import Recurrent
from tinygrad_rnn.registry import cells, discover

from helpers import restored_registry, rnnrun

RUN = ("--cell", "rnn", "--data", "sine:n_train=40", "--epochs", "1", "--hidden", "4", "--quiet")


def summaries(root):
    found = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "summary.json")
        if os.path.exists(path):
            with open(path) as f:
                found.append(json.load(f))
    return found


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5", "", "99999"])
def test_a_bad_thread_count_says_what_is_valid(text):
    with pytest.raises(ConfigError, match="'auto' or a whole number"):
        threads.parse_threads(text)


def test_auto_is_one_thread_for_small_products_or_a_busy_machine(monkeypatch):
    discover()
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    small, big = Recurrent(cells.get("lstm"), 1, 32), Recurrent(cells.get("lstm"), 1, 512)
    assert threads.largest_product(small, 32) == 32 * 128 * 32
    assert threads.auto_threads(small, 32, load=0.0) == 1
    assert threads.largest_product(big, 64) >= threads.THRESHOLD
    assert threads.auto_threads(big, 64, load=0.0) == 2
    assert threads.auto_threads(big, 64, load=1.6) == 1  # another process has a core: no spinning threads
    monkeypatch.setattr(threads, "usable_cores", lambda: 1)
    assert threads.auto_threads(big, 64, load=0.0) == 1


def test_the_thread_count_does_not_change_a_product():
    # why a resumed run may choose another count and still continue bit for bit
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((640, 96)).astype(np.float32), rng.standard_normal((96, 1024)).astype(np.float32)
    with threadpool_limits(1):
        one, one_t = a @ b, a @ np.ascontiguousarray(b.T).T
    with threadpool_limits(2):
        two, two_t = a @ b, a @ np.ascontiguousarray(b.T).T
    assert (one == two).all() and (one_t == two_t).all()


def test_the_summary_records_the_count_auto_chose(tmp_path):
    result = rnnrun(*RUN, "--runs-dir", tmp_path)
    assert result.exit_code == 0, result.stderr
    (summary,) = summaries(tmp_path)
    assert summary["threads"] == 1  # sine's model is far below the threshold


def test_threads_flag_and_environment_set_the_count_in_force_while_training(tmp_path):
    seen = []
    with restored_registry():
        @register_regularizer("record_threads")
        class RecordThreads(Regularizer):
            def on_epoch_end(self, trainer, metrics):
                seen.append({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})

        assert rnnrun(*RUN, "--reg", "record_threads", "--threads", "3", "--runs-dir", tmp_path).exit_code == 0
        assert rnnrun(*RUN, "--reg", "record_threads", "--runs-dir", tmp_path, env={threads.ENV: "2"}).exit_code == 0
    assert [s["threads"] for s in summaries(tmp_path)] == [3, 2]
    assert seen == [{3}, {2}]
    assert threads.ENV not in os.environ  # --threads is for that command only


@pytest.mark.parametrize("args, env", [(["--threads", "0"], None), (["--threads", "many"], None),
                                       ([], {threads.ENV: "lots"})])
def test_a_bad_thread_count_is_exit_2_before_any_folder(tmp_path, args, env):
    root = tmp_path / "runs"
    result = rnnrun(*RUN, *args, "--runs-dir", root, env=env)
    assert result.exit_code == 2
    assert "whole number of threads" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not root.exists()


def test_resume_chooses_its_own_count_and_continues_to_the_same_numbers(tmp_path):
    assert rnnrun(*RUN, "--runs-dir", tmp_path / "a", "--threads", "1").exit_code == 0
    resumed = rnnrun("resume", "last", "--epochs", 2, "--threads", "2", "--runs-dir", tmp_path / "a", "--quiet")
    assert resumed.exit_code == 0, resumed.stderr
    assert rnnrun(*RUN[:5], "2", "--hidden", "4", "--runs-dir", tmp_path / "b", "--quiet").exit_code == 0
    (a,), (b,) = summaries(tmp_path / "a"), summaries(tmp_path / "b")
    assert a["threads"] == 2 and b["threads"] == 1
    assert (a["train_loss"], a["val_loss"], a["test_loss"]) == (b["train_loss"], b["val_loss"], b["test_loss"])
