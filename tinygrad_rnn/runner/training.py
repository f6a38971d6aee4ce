"""The default command's driver: train each resolved config in turn with a progress bar, then print the
results table (or one JSON document). Ctrl-C keeps the run's files and exits 130."""
import json
import sys

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .output import Fail, console
from .signals import on_ctrl_c


class Interrupted:
    """Ctrl-C seen. Python raises KeyboardInterrupt wherever the main thread is, and a library can
    swallow it (in a callback, a finaliser); the training callbacks check this flag as well, so the
    run still stops at the next batch."""
    seen = False

    @classmethod
    def handler(cls, signum, frame):
        cls.seen = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls):
        if cls.seen:
            raise KeyboardInterrupt


def train_all(configs, store, as_json, quiet):
    with on_ctrl_c(Interrupted.handler):
        return _train_all(configs, store, as_json, quiet)


def _train_all(configs, store, as_json, quiet):
    from .experiment import execute
    from .report import forecast_lines, model_table, results_table
    out, err = console(), console(stderr=True)
    show = not as_json and not quiet
    summaries = []
    for config in configs:
        progress = Progress(TextColumn("[bold]{task.fields[name]}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("epoch {task.fields[epoch]}"), TextColumn("loss {task.fields[loss]}"),
                            TextColumn("{task.fields[speed]}"), TimeElapsedColumn(), console=err,
                            disable=as_json or quiet, transient=False)
        task = None

        def on_start(run, dataset, model):
            nonlocal task
            if show:
                out.print(f"[dim]run {run.id}: {config['cell']} on {config['data']} "
                          f"({dataset.kind}, {dataset.problem}; {len(dataset.splits()['train'])} training sequences)[/]")
                out.print(model_table(model, title=f"Model: {config['cell']} on {config['data']}"))
            task = progress.add_task("train", total=config["epochs"], name=f"{config['cell']}/{config['data']}",
                                     epoch=0, loss="–", speed="")

        def on_batch(trainer, batch, batches, loss):
            # the batch's loss stays unread: on a GPU, reading it would make every batch wait for the
            # device; the epoch's losses are read together and shown at the epoch's end
            Interrupted.check()
            progress.update(task, speed=f"batch {batch}/{batches}")

        def on_epoch(trainer, metrics):
            Interrupted.check()
            progress.update(task, advance=1, epoch=metrics["epoch"],
                            loss=f"{metrics['train_loss']:.4g} (train) {metrics['val_loss']:.4g} (val)",
                            speed=f"{metrics['seconds']:.1f}s/epoch")

        with progress:
            try:
                summary = execute(config, store, on_start=on_start, on_epoch=on_epoch, on_batch=on_batch)
            except KeyboardInterrupt:
                progress.stop()
                err.print(f"[yellow]interrupted:[/] the run's config, metrics so far and last weights "
                          f"are kept in {store.root}")
                sys.exit(130)
        summaries.append(summary)
        if summary["status"] == "diverged":
            err.print(f"[red]diverged:[/] {summary['message']} (run kept in {summary['run_dir']})", soft_wrap=True)
    if as_json:
        keys = ("cell", "data", "params", "epochs", "train_loss", "val_loss", "val_metric", "test_metric",
                "test_loss", "metric", "baseline", "baseline_name", "seconds", "run_dir", "run_id", "status",
                "grad_norm_mean", "grad_norm_max", "clip_rate", "seed", "forecast")
        docs = [{k: s.get(k) for k in keys} | {k: v for k, v in s.items() if k.startswith("test_")} for s in summaries]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))
    else:
        out.print(results_table(summaries, title=f"Results on {configs[0]['data']}"))
        for s in summaries:
            if s.get("forecast"):
                out.print(forecast_lines(s))
        if not quiet:
            for s in summaries:
                out.print(f"[dim]{s['cell']}: {s['run_dir']}[/]")
    if any(s["status"] != "finished" for s in summaries):
        raise Fail()
