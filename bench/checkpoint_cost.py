"""What a checkpoint costs, against an epoch of the default `rnnrun --cell gru --data sine`.

Each epoch a run now writes, besides its metrics row, checkpoint.npz (weights, optimiser, schedule,
random generator, best weights, regularisers: `Trainer.state_dict()`, atomically, fsync'd) and its
summary.json heartbeat. This script trains the default GRU on sine for a few epochs as `rnnrun` would,
then times those epoch-end writes, and reading a checkpoint back into a fresh trainer (what
`rnnrun resume` does once), each the median of --repeats. The promise (issue 16): under 5 % of an epoch.

    python bench/checkpoint_cost.py                 # default: 3 epochs, 20 repeats
    python bench/checkpoint_cost.py --json cost.json
"""
import argparse
import json
import os
import statistics
import tempfile
import time

from tinygrad_rnn.runner.app import load_plugins
from tinygrad_rnn.runner.experiment import build, resolve
from tinygrad_rnn.runner.store import RunStore
from tinygrad_rnn.trainer import Trainer


def trainer_for(config):
    dataset, model, regs = build(config)
    return Trainer(model, dataset, optimizer=config["optimizer"], lr=config["lr"],
                   optimizer_options=config["optimizer_options"], regularisers=regs, epochs=config["epochs"],
                   batch_size=config["batch_size"], schedule=config.get("schedule"),
                   schedule_options=config.get("schedule_options"))


def median_seconds(action, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        started = clock()
        action()
        times.append(clock() - started)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs to train (their median time is the yardstick)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    load_plugins(())
    config = resolve({"cell": "gru", "data": "sine", "epochs": args.epochs})
    with tempfile.TemporaryDirectory() as root:
        run = RunStore(root).create("gru", "sine")
        trainer = trainer_for(config)
        cpu_started = time.process_time()
        trainer.fit()
        cpu_epoch = (time.process_time() - cpu_started) / args.epochs  # CPU time: less at the mercy of the load
        epoch = statistics.median(m["seconds"] for m in trainer.history)
        metrics = trainer.history[-1]
        summary = {"status": "running", "epochs_done": trainer.epoch, "last_seen": time.time()}

        def epoch_end():  # what experiment._train adds after every epoch
            run.append_metrics(metrics)
            run.save_checkpoint(trainer.state_dict())
            run.write_summary(summary, durable=False)

        write = median_seconds(epoch_end, args.repeats)
        cpu_write = median_seconds(epoch_end, args.repeats, time.process_time)
        state = median_seconds(trainer.state_dict, args.repeats)
        fresh = trainer_for(config)
        load = median_seconds(lambda: fresh.load_state_dict(run.checkpoint()), args.repeats)
        size = os.path.getsize(run.file("checkpoint.npz"))
    figures = {"config": {k: config[k] for k in ("cell", "data", "hidden", "batch_size", "epochs")},
               "parameters": trainer.model.num_parameters(), "epoch_s": epoch, "epoch_end_writes_s": write,
               "state_dict_s": state, "load_s": load, "checkpoint_bytes": size,
               "write_share_of_epoch": write / epoch, "load_share_of_epoch": load / epoch,
               "cpu_epoch_s": cpu_epoch, "cpu_epoch_end_writes_s": cpu_write,
               "load_average": os.getloadavg()}
    print(f"default gru on sine: {figures['parameters']} parameters, epoch {epoch * 1e3:.1f} ms (median of "
          f"{args.epochs})")
    print(f"epoch-end writes (metrics row + checkpoint.npz {size / 1024:.0f} KiB + summary.json): "
          f"{write * 1e3:.2f} ms = {100 * write / epoch:.2f} % of an epoch (state_dict alone {state * 1e3:.2f} ms)")
    print(f"process CPU time: epoch {cpu_epoch * 1e3:.1f} ms, epoch-end writes {cpu_write * 1e3:.2f} ms = "
          f"{100 * cpu_write / cpu_epoch:.2f} %")
    print(f"loading a checkpoint into a fresh trainer: {load * 1e3:.2f} ms = {100 * load / epoch:.2f} % of an epoch")
    print(f"load average: {' '.join(f'{x:.2f}' for x in figures['load_average'])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
