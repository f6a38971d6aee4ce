"""`rnnrun` as users meet it: in-process through click's CliRunner, and as the installed console script."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from tinygrad_rnn import registry
from tinygrad_rnn.runner.cli import cli

from helpers import small_spec

RNNRUN = shutil.which("rnnrun") or os.path.join(os.path.dirname(sys.executable), "rnnrun")
README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def rnnrun(*args, runs_dir=None):
    """Invoke the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    argv = list(args) + (["--runs-dir", str(runs_dir)] if runs_dir is not None else [])
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


def quick_run(tmp_path, *extra, cell="gru", data="sine"):
    result = rnnrun("--cell", cell, "--data", data, "--epochs", "1", "--hidden", "4", "--json", *extra,
                    runs_dir=tmp_path)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_json_output_is_a_single_document_with_the_promised_keys(tmp_path):
    doc = quick_run(tmp_path)
    for key in ("cell", "data", "params", "epochs", "train_loss", "val_loss", "test_metric", "baseline",
                "seconds", "run_dir"):
        assert key in doc
    run_dir = doc["run_dir"]
    for name in ("config.toml", "metrics.csv", "summary.json", "model.npz"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert re.fullmatch(r"\d{8}-\d{6}-gru-sine(-\d+)?", os.path.basename(run_dir))


def test_several_cells_give_a_list_with_one_run_each(tmp_path):
    docs = quick_run(tmp_path, cell="rnn,lstm")
    assert [d["cell"] for d in docs] == ["rnn", "lstm"]
    assert docs[0]["run_dir"] != docs[1]["run_dir"]


def test_the_same_seed_gives_the_same_numbers(tmp_path):
    first = quick_run(tmp_path, "--seed", "7")
    second = quick_run(tmp_path, "--seed", "7")
    other = quick_run(tmp_path, "--seed", "8")
    for key in ("train_loss", "val_loss", "test_metric"):
        assert first[key] == second[key]
    assert first["val_loss"] != other["val_loss"]


def test_a_runs_config_repeats_it_exactly(tmp_path):
    doc = quick_run(tmp_path, "--reg", "clip:0.5", "--optimizer", "sgd:momentum=0.9", "--lr", "0.05")
    config = os.path.join(doc["run_dir"], "config.toml")
    result = rnnrun("--config", config, "--json", runs_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    again = json.loads(result.stdout)
    first = json.load(open(os.path.join(doc["run_dir"], "summary.json")))
    second = json.load(open(os.path.join(again["run_dir"], "summary.json")))
    for key in ("train_loss", "val_loss", "val_metric", "test_metric", "test_loss", "val_losses", "params"):
        assert first[key] == second[key], key


def test_flags_override_the_config_file(tmp_path):
    doc = quick_run(tmp_path)
    result = rnnrun("--config", os.path.join(doc["run_dir"], "config.toml"), "--cell", "rnn", "--json",
                    runs_dir=tmp_path)
    assert json.loads(result.stdout)["cell"] == "rnn"


def test_a_cosine_schedule_anneals_the_learning_rate_per_epoch(tmp_path):
    doc = quick_run(tmp_path, "--epochs", "3", "--lr", "0.01", "--schedule", "cosine")
    show = json.loads(rnnrun("show", doc["run_dir"], "--json").stdout)
    lrs = [row["lr"] for row in show["metrics"]]
    assert lrs[0] == 0.01 and lrs[0] > lrs[1] > lrs[2]


def test_tables_show_the_results_and_a_model_summary(tmp_path):
    result = rnnrun("--cell", "lstm", "--data", "sine", "--epochs", "2", "--hidden", "4", runs_dir=tmp_path)
    assert result.exit_code == 0
    assert "Model" in result.stdout and "Results" in result.stdout and "rmse" in result.stdout
    quiet = rnnrun("--cell", "lstm", "--data", "sine", "--epochs", "1", "--hidden", "4", "--quiet", runs_dir=tmp_path)
    assert "Model" not in quiet.stdout and "Results" in quiet.stdout


def test_list_shows_every_plugin_with_its_description(tmp_path):
    result = rnnrun("list", "--json")
    catalogue = json.loads(result.stdout)
    assert {e["name"] for e in catalogue["cells"]} == set(registry.cells.names())
    assert all(e["description"] for kind in catalogue.values() for e in kind)
    table = rnnrun("list").stdout
    assert "adding" in table and "clip" in table and "adamw" in table


def test_runs_show_and_compare_find_past_runs(tmp_path):
    a = quick_run(tmp_path, cell="rnn")
    b = quick_run(tmp_path, cell="gru")
    runs = rnnrun("runs", "--runs-dir", str(tmp_path))
    assert os.path.basename(a["run_dir"]) in runs.stdout and os.path.basename(b["run_dir"]) in runs.stdout
    show = rnnrun("show", os.path.basename(a["run_dir"]), "--runs-dir", str(tmp_path))
    assert show.exit_code == 0 and "Per-epoch metrics" in show.stdout
    assert rnnrun("show", "last", "--runs-dir", str(tmp_path)).exit_code == 0
    compare = rnnrun("compare", a["run_dir"], b["run_dir"], "--runs-dir", str(tmp_path))
    assert compare.exit_code == 0 and "Comparison" in compare.stdout


def test_forecast_generates_from_data_and_from_zeros(tmp_path):
    doc = quick_run(tmp_path)
    for source in ("data", "zeros"):
        result = rnnrun("forecast", doc["run_dir"], "--steps", "7", "--from", source, "--json",
                        "--runs-dir", str(tmp_path))
        assert result.exit_code == 0, result.stderr
        forecast = json.loads(result.stdout)
        assert len(forecast["predictions"]) == 7
        assert (forecast["truth"] is None) == (source == "zeros")


# ---- errors: one line, the valid choices, exit 2 for usage, never a traceback --------------------
@pytest.mark.parametrize("args, fragment", [
    (["--cell", "lstn", "--data", "sine"], "did you mean 'lstm'"),
    (["--cell", "gru", "--data", "sinus"], "did you mean 'sine'"),
    (["--cell", "gru", "--data", "sine", "--reg", "clipp"], "did you mean 'clip'"),
    (["--cell", "gru", "--data", "sine", "--optimizer", "adan"], "did you mean 'adam'"),
    (["--cell", "gru", "--data", "sine:frequency"], "bare values"),
    (["--cell", "gru", "--data", "adding:Q=3"], "unknown option 'Q'"),
    (["--cell", "gru", "--data", "sine", "--reg", "clip:threshold="], "malformed"),
    (["--cell", "gru", "--data", "sine", "--reg", "clip:mode=sideways"], "valid modes"),
    (["--cell", "gru", "--data", "sine", "--hidden", "-3"], "--hidden must be an integer from 1"),
    (["--cell", "gru", "--data", "sine", "--epochs", "0"], "--epochs must be an integer from 1"),
    (["--cell", "gru", "--data", "sine", "--lr", "0"], "--lr must be a finite number > 0"),
    (["--config", "no/such/config.toml"], "config file not found"),
    (["--cell", "gru", "--data", "sine", "--plugin", "no_such_plugin.py"], "plugin file not found"),
    (["--cell", "gru", "--data", "sine", "--hidden", "many"], "not a valid integer"),
    (["show", "no-such-run"], "no run 'no-such-run'"),
    (["--cell", "gru", "--data", "sine", "--schedule", "linear"], "valid schedules: step, cosine"),
    (["--cell", "gru", "--data", "sine", "--schedule", "step"], "needs step_size"),
])
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, args, fragment):
    result = CliRunner().invoke(cli, args + ["--runs-dir", str(tmp_path)])
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output


def test_unknown_cell_lists_the_known_ones(tmp_path):
    result = rnnrun("--cell", "transformer", "--data", "sine", runs_dir=tmp_path)
    assert result.exit_code == 2
    for name in registry.cells.names():
        assert name in result.stderr


def test_a_plugin_that_fails_to_import_names_its_file(tmp_path):
    plugin = tmp_path / "broken_cell.py"
    plugin.write_text("import numpy\nraise ValueError('I am broken')\n")
    result = rnnrun("--plugin", str(plugin), "--cell", "gru", "--data", "sine", runs_dir=tmp_path)
    assert result.exit_code == 2
    assert "broken_cell.py" in result.stderr and "I am broken" in result.stderr


def test_cupy_backend_without_a_gpu_is_a_clear_error(tmp_path):
    pytest.importorskip("numpy")
    try:
        import cupy  # noqa: F401
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a GPU is present")
    except Exception:
        pass
    result = rnnrun("--cell", "gru", "--data", "sine", "--backend", "cupy", runs_dir=tmp_path)
    assert result.exit_code == 2 and "cupy" in result.stderr.lower() and "numpy" in result.stderr


def test_a_diverged_run_is_kept_and_marked_and_exits_1(tmp_path):
    result = rnnrun("--cell", "rnn:nonlinearity=relu", "--data", "sine", "--optimizer", "sgd", "--lr", "1e6",
                    "--epochs", "3", "--hidden", "16", "--json", runs_dir=tmp_path)
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    summary = json.load(open(os.path.join(doc["run_dir"], "summary.json")))
    assert summary["status"] == "diverged" and "diverged at epoch" in summary["message"]
    assert os.path.exists(os.path.join(doc["run_dir"], "config.toml"))


def test_a_run_diverging_after_its_first_epoch_keeps_the_checkpoint_of_its_last_finite_epoch(tmp_path):
    import numpy as np
    from tinygrad_rnn.runner.store import Run
    result = rnnrun("--cell", "rnn:nonlinearity=relu", "--data", "sine:n_train=40", "--optimizer", "sgd", "--lr", "10",
                    "--epochs", "6", "--hidden", "16", "--json", runs_dir=tmp_path)
    assert result.exit_code == 1
    run = Run(json.loads(result.stdout)["run_dir"])
    epoch = int(re.search(r"diverged at epoch (\d+)", run.summary()["message"]).group(1))
    assert epoch > 1 and "--lr" in run.summary()["message"] and "check the data" in run.summary()["message"]
    checkpoint = run.checkpoint()
    assert checkpoint["epoch"] == epoch - 1 == len(run.metrics())
    assert all(np.isfinite(weights).all() for weights in checkpoint["model"].values())


# ---- the README's plugin section, copied as a user would -----------------------------------------
def readme_plugin_source():
    text = open(README).read()
    block = re.search(r"```python\n(# my_plugins.py\n.*?)```", text, re.S)
    assert block, "README lost its plugin example"
    return block.group(1)


def test_readme_plugin_file_works_with_plugin_flag(tmp_path):
    path = tmp_path / "my_plugins.py"
    path.write_text(readme_plugin_source())
    result = rnnrun("--plugin", str(path), "--cell", "mgu,gru", "--data", "ramp", "--reg", "noise:std=0.001",
                    "--epochs", "2", "--json", runs_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    docs = json.loads(result.stdout)
    assert [d["cell"] for d in docs] == ["mgu", "gru"]
    assert all(d["test_metric"] < d["baseline"] for d in docs)


@pytest.mark.skipif(not os.path.exists(RNNRUN), reason="rnnrun console script not installed")
def test_readme_plugin_package_is_found_through_its_entry_point(tmp_path):
    site = tmp_path / "site"
    dist = site / "my_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "my_plugins.py").write_text(readme_plugin_source())
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my_plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tinygrad_rnn.plugins]\nmy_plugins = my_plugins\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([RNNRUN, "list", "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    catalogue = json.loads(out.stdout)
    assert "mgu" in {e["name"] for e in catalogue["cells"]}
    assert "ramp" in {e["name"] for e in catalogue["datasets"]}
    assert "noise" in {e["name"] for e in catalogue["regularisers"]}


# ---- the installed console script ------------------------------------------------------------------
@pytest.mark.skipif(not os.path.exists(RNNRUN), reason="rnnrun console script not installed")
def test_installed_rnnrun_runs_and_reports_errors_as_one_line(tmp_path):
    ok = subprocess.run([RNNRUN, "--cell", "gru", "--data", "sine", "--epochs", "1", "--hidden", "4", "--json",
                         "--runs-dir", str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["cell"] == "gru"
    bad = subprocess.run([RNNRUN, "--cell", "lstn", "--data", "sine"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not os.path.exists(RNNRUN), reason="rnnrun console script not installed")
def test_ctrl_c_keeps_config_metrics_and_weights_and_exits_130(tmp_path):
    proc = subprocess.Popen([RNNRUN, "--cell", "lstm", "--data", "sine", "--epochs", "500", "--quiet",
                             "--runs-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    deadline = time.time() + 60
    metrics = None
    while time.time() < deadline:  # wait until at least one epoch is on disk
        found = [os.path.join(d, "metrics.csv") for d, _, files in os.walk(tmp_path) if "metrics.csv" in files]
        if found and len(open(found[0]).read().splitlines()) >= 2:
            metrics = found[0]
            break
        time.sleep(0.2)
    assert metrics, "no epoch finished in time"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    run_dir = os.path.dirname(metrics)
    for name in ("config.toml", "metrics.csv", "model.npz", "summary.json"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert json.load(open(os.path.join(run_dir, "summary.json")))["status"] == "interrupted"
    assert "Traceback" not in err


@pytest.mark.slow
@pytest.mark.parametrize("data", sorted(registry.datasets.names()))
def test_every_cell_trains_on_every_dataset_for_one_epoch(tmp_path, data):
    cells = ",".join(registry.cells.names())
    result = rnnrun("--cell", cells, "--data", small_spec(data), "--epochs", "1", "--hidden", "4", "--json",
                    runs_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    docs = json.loads(result.stdout)
    docs = docs if isinstance(docs, list) else [docs]
    assert {d["cell"] for d in docs} == set(registry.cells.names())
    assert all(d["status"] == "finished" for d in docs)


def test_a_time_series_run_shows_its_free_running_forecast_beside_the_truth(tmp_path):
    result = rnnrun("--cell", "gru", "--data", "sine", "--epochs", "1", "--hidden", "4", "--quiet", runs_dir=tmp_path)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    truth = next(line for line in lines if line.strip().startswith("truth"))
    forecast = next(line for line in lines if line.strip().startswith("forecast"))
    assert len(truth.split()[1]) == len(forecast.split()[1]) == 50
    summary = json.load(open(os.path.join(tmp_path, os.listdir(tmp_path)[0], "summary.json")))
    assert len(summary["forecast"]["prediction"]) == 50 and summary["forecast"]["rmse"] > 0


# ---- the command layout: `rnnrun train`, --path and its aliases ------------------------------------------
def test_bare_rnnrun_with_training_flags_is_rnnrun_train(tmp_path):
    bare = quick_run(tmp_path / "a", "--seed", "3")
    named = quick_run(tmp_path / "b", "--seed", "3", cell="gru")
    explicit = rnnrun("train", "--cell", "gru", "--data", "sine", "--epochs", "1", "--hidden", "4", "--json",
                      "--seed", "3", runs_dir=tmp_path / "c")
    assert explicit.exit_code == 0, explicit.stderr
    assert json.loads(explicit.stdout)["test_metric"] == bare["test_metric"] == named["test_metric"]
    assert "--cell" in rnnrun("train", "--help").stdout and "train" in rnnrun("--help").stdout


def test_training_flags_before_another_command_say_where_they_belong():
    result = rnnrun("--cell", "gru", "runs")
    assert result.exit_code == 2
    assert "--cell belong to training" in result.stderr and "rnnrun runs --help" in result.stderr


@pytest.mark.parametrize("flags, path", [([], "auto"), (["--path", "composed"], "composed"),
                                         (["--compiled"], "compiled"), (["--composed"], "composed"),
                                         (["--fused"], "auto"), (["--path", "auto", "--fused"], "auto"),
                                         (["--path", "fused"], "fused")])
def test_path_and_its_old_aliases_are_recorded_as_one_config_key(tmp_path, flags, path):
    doc = quick_run(tmp_path, *flags)
    config = open(os.path.join(doc["run_dir"], "config.toml")).read()
    assert f'path = "{path}"' in config and "fused" not in config.replace('"fused"', "")


def test_the_old_path_aliases_say_they_are_aliases():
    help_text = " ".join(rnnrun("train", "--help").stdout.split())
    for alias in ("composed", "compiled"):
        assert f"--{alias} Same as --path {alias} (deprecated alias, kept for one release)" in help_text
    assert "--fused Same as --path auto, what it always meant" in help_text and "kept for one release" in help_text


@pytest.mark.parametrize("flags, note", [(["--compiled"], "note: --compiled is deprecated; use --path compiled"),
                                         (["--composed"], "note: --composed is deprecated; use --path composed"),
                                         (["--fused"], "note: --fused is deprecated; use --path auto"),
                                         (["--path", "compiled"], None)])
def test_an_old_path_alias_says_once_on_stderr_what_replaces_it_and_json_stays_clean(tmp_path, flags, note):
    result = rnnrun("--cell", "gru", "--data", "sine:n_train=40", "--epochs", "1", "--hidden", "4", "--json", *flags,
                    runs_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)  # the note is not in the JSON document
    notes = [line for line in result.stderr.splitlines() if "deprecated" in line]
    assert notes == ([note] if note else []), result.stderr


def test_two_different_paths_are_a_usage_error():
    result = rnnrun("--cell", "gru", "--data", "sine", "--path", "fused", "--composed")
    assert result.exit_code == 2 and "exclude each other" in result.stderr


@pytest.mark.parametrize("old, path", [("fused = true\ncompiled = false", "auto"), ("fused = false", "composed"),
                                       ("compiled = true", "compiled"), ("fused = true\ncompiled = true", "compiled")])
def test_a_config_file_with_the_old_fused_and_compiled_keys_still_loads(tmp_path, old, path):
    config_file = tmp_path / "old.toml"
    config_file.write_text(f'cell = "gru"\ndata = "sine"\nepochs = 1\nhidden = 4\n{old}\n')
    result = rnnrun("--config", str(config_file), "--json", runs_dir=tmp_path)
    assert result.exit_code == 0, result.stderr
    stored = open(os.path.join(json.loads(result.stdout)["run_dir"], "config.toml")).read()
    assert f'path = "{path}"' in stored


def test_the_path_flag_and_config_key_reach_recurrent_as_they_are(tmp_path, fresh_registry):
    """--path (and the config key) is Recurrent's path=, word for word; --fused, the old spelling of
    the default, is auto; fused on a cell without sequence() is refused before anything runs."""
    from tinygrad_rnn.registry import datasets
    from tinygrad_rnn.runner.experiment import build_model
    for path in ("auto", "fused", "compiled", "composed"):
        config = {"cell": "gru", "cell_options": {}, "hidden": 4, "layers": 1, "bidirectional": False, "path": path}
        dataset = datasets.get("sine")(seed=0, n_train=8)
        dataset.splits()
        assert build_model(config, dataset).rnn.path == path
    for flags, stored in ((("--fused",), "auto"), (("--path", "compiled"), "compiled"), (("--composed",), "composed")):
        result = rnnrun("--cell", "gru", "--data", "sine:n_train=20", "--epochs", "1", "--hidden", "4", *flags,
                        "--json", runs_dir=tmp_path)
        assert result.exit_code == 0, result.stderr
        assert f'path = "{stored}"' in open(os.path.join(json.loads(result.stdout)["run_dir"], "config.toml")).read()
    indrnn = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "indrnn_cell.py")
    refused = rnnrun("--plugin", indrnn, "--cell", "indrnn", "--data", "sine",
                     "--path", "fused", runs_dir=tmp_path / "refused")
    assert refused.exit_code == 2 and "has no fused sequence()" in refused.stderr
    assert not (tmp_path / "refused").exists()
