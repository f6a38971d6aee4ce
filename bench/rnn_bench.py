"""Time one training step of tinygrad_rnn's recurrent layers against PyTorch's.

A training step is: forward over the whole sequence, MSE over all outputs, backward, SGD (p -= lr * g).
For each configuration (batch, T, input, hidden) and cell (rnn, lstm, gru; and the README's `mgu` and
examples/indrnn_cell.py's `indrnn`, which have neither a fused kernel nor a torch module) it times
five implementations:

    fused       tinygrad_rnn.nn.Recurrent(cell, D, H)                     (path "auto": the cells' fused whole-sequence ops)
    compiled    tinygrad_rnn.nn.Recurrent(cell, D, H, path="compiled")  (one traced step replayed: tinygrad_rnn/tape.py;
                its elementwise runs as numba kernels when the `fast` extra is installed: tinygrad_rnn/fusion.py;
                with --backend cupy, as CuPy ElementwiseKernels: tinygrad_rnn/fusion_cupy.py)
    compiled-nofast  the same with fusion off (TINYGRAD_RNN_FUSE=0 while it is traced): the replay op by op
    composed    tinygrad_rnn.nn.Recurrent(cell, D, H, path="composed")  (the readable cells, step by step)
    torch       torch.nn.RNN / LSTM / GRU(batch_first=True)
    torch-cell  a Python loop over torch.nn.RNNCell / LSTMCell / GRUCell

Each number is the median of --repeats steps after warm-up; the implementations take turns step by
step, so that load from other processes hits them all alike. Then it measures peak memory of a full-BPTT
step on each of our three paths (tracemalloc) against the activations BPTT must keep, and with truncated BPTT (chunks of 25 steps,
state detached between chunks) at growing T, which should stay flat.

    python bench/rnn_bench.py                         # everything, about a few minutes on 2 cores
    python bench/rnn_bench.py --cells lstm --configs medium --json out.json
    python bench/rnn_bench.py --quick                 # tiny sizes, a smoke test (seconds)
    python bench/rnn_bench.py --cpu-time              # on a loaded machine: process CPU time, 1 thread

Threads: the BLAS and OpenMP pools get 2 threads (set below, before NumPy and torch load). The
variables OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, if set, make OpenBLAS pick slower kernels; this
script removes them from its own process (pass --keep-blas-env to keep them). Tests and CI never
touch them.
"""
import os
import sys

# --cpu-time: each step timed as this process's CPU time with one BLAS thread. On a machine shared
# with other jobs, wall time with two threads is mostly the wait for a core (and OpenBLAS's threads
# spin while they wait); CPU time counts only the work, so ratios stay meaningful under load.
CPU_TIME = "--cpu-time" in sys.argv
THREADS = 1 if CPU_TIME else 2
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = str(THREADS)
os.environ.setdefault("TINYGRAD_RNN_FUSE", "1")  # compiled tapes fused from their first step (not after 20)
REMOVED_BLAS_ENV = {}
if "--keep-blas-env" not in sys.argv:  # must happen before NumPy loads OpenBLAS
    for _name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if _name in os.environ:
            REMOVED_BLAS_ENV[_name] = os.environ.pop(_name)

import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import click  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import tinygrad_rnn as tg  # noqa: E402
from tinygrad_rnn import Tensor, no_grad  # noqa: E402

CONFIGS = {  # name: (batch, T, input, hidden)
    "small": (32, 50, 1, 32),
    "medium": (64, 100, 8, 128),
    "wide": (64, 100, 64, 256),
    "long": (16, 1000, 1, 64),
}
QUICK_CONFIG = {"quick": (4, 6, 2, 5)}
CELLS = ("rnn", "lstm", "gru")
USER_CELLS = ("mgu", "indrnn")  # the README's plugin cell and examples/indrnn_cell.py: no fused op, no torch
IMPLS = ("fused", "compiled", "compiled-nofast", "composed", "torch", "torch-cell")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
STATES = {"rnn": 1, "lstm": 2, "gru": 1}  # state vectors per step (h, or h and c)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TBPTT_K = 25
LR = 0.01


# ---- one training step per implementation ------------------------------------------------------------
class Backend:
    """The array module and the synchronisation a timer needs (a no-op on the CPU)."""

    def __init__(self, name):
        self.name = name
        if name == "cupy":
            import cupy  # only here: the NumPy benchmark must not need a GPU
            self.xp, self.sync = cupy, cupy.cuda.Device().synchronize
            tg.set_backend("cupy")
        else:
            self.xp, self.sync = np, (lambda: None)


def load_user_cells():
    """Register `mgu` from the README's my_plugins.py block and `indrnn` from examples/, as users do."""
    import re
    import tempfile
    with open(os.path.join(ROOT, "README.md")) as f:
        source = re.search(r"```python\n(# my_plugins.py\n.*?)```", f.read(), re.S).group(1)
    path = os.path.join(tempfile.mkdtemp(), "my_plugins.py")
    with open(path, "w") as f:
        f.write(source)
    tg.load_plugin(path)
    tg.load_plugin(os.path.join(ROOT, "examples", "indrnn_cell.py"))


def ours(cell, shape, impl, backend, seed=0):
    """A training-step closure for tinygrad_rnn's Recurrent layer: impl fused, compiled or composed."""
    from tinygrad_rnn.losses import mse
    from tinygrad_rnn.nn import Recurrent
    from tinygrad_rnn.registry import cells
    N, T, D, H = shape
    tg.manual_seed(seed)
    # "fused" times the default path, "auto": the fused kernel where the cell has one (mgu and indrnn: the tape)
    model = Recurrent(cells.get(cell), D, H, path="auto" if impl == "fused" else impl.split("-")[0])
    rng = np.random.default_rng(seed)
    x = Tensor(backend.xp.asarray(rng.standard_normal((N, T, D)).astype(np.float32)))
    y = Tensor(backend.xp.asarray(rng.standard_normal((N, T, H)).astype(np.float32)))
    params = model.parameters()

    def step(x=x, y=y, state=None):
        out, final = model(x, state=state)
        loss = mse(out, y)
        for p in params:
            p.grad = None
        loss.backward()
        with no_grad():
            for p in params:
                p.data -= LR * p.grad
        return [tuple(s.detach() for s in layer) for layer in final]

    if impl == "compiled-nofast":  # the tape is traced (and its program made) at the first call
        saved = os.environ.get("TINYGRAD_RNN_FUSE")
        os.environ["TINYGRAD_RNN_FUSE"] = "0"
        try:
            model(x)
        finally:
            os.environ.pop("TINYGRAD_RNN_FUSE") if saved is None else os.environ.update(TINYGRAD_RNN_FUSE=saved)
    return step, model, x, y


def torch_step(cell, shape, loop, device, seed=0):
    """A training-step closure for torch.nn.RNN/LSTM/GRU, or for a Python loop over its *Cell."""
    import torch
    N, T, D, H = shape
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal((N, T, D)).astype(np.float32), device=device)
    y = torch.tensor(rng.standard_normal((N, T, H)).astype(np.float32), device=device)
    name = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[cell]
    model = (getattr(torch.nn, name + "Cell")(D, H) if loop else getattr(torch.nn, name)(D, H, batch_first=True))
    model = model.to(device)
    params = list(model.parameters())

    def forward():
        if not loop:
            return model(x)[0]
        h = torch.zeros(N, H, device=device)
        state = (h, torch.zeros(N, H, device=device)) if cell == "lstm" else h
        outputs = []
        for t in range(T):
            state = model(x[:, t], state)
            outputs.append(state[0] if cell == "lstm" else state)
        return torch.stack(outputs, dim=1)

    def step():
        loss = ((forward() - y) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad

    return step


def make_steps(cell, shape, impls, backend):
    steps = {}
    for impl in impls:
        if cell in USER_CELLS and impl not in ("compiled", "compiled-nofast", "composed"):
            continue  # no hand-fused op and no torch module for these
        if impl in ("fused", "compiled", "compiled-nofast", "composed"):
            steps[impl] = ours(cell, shape, impl, backend)[0]
        else:
            steps[impl] = torch_step(cell, shape, impl == "torch-cell", "cuda" if backend.name == "cupy" else "cpu")
    return steps


def time_steps(steps, repeats, warmup, sync):
    """Median milliseconds per step for each closure; they take turns so that noise hits all alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    sync()
    times = {name: [] for name in steps}
    clock = time.process_time if CPU_TIME else time.perf_counter
    for _ in range(repeats):
        for name, step in steps.items():
            gc.collect()
            sync()
            start = clock()
            step()
            sync()
            times[name].append((clock() - start) * 1e3)
    return times


# ---- memory -----------------------------------------------------------------------------------------------
def activation_bytes(cell, N, T, H, itemsize=4):
    """What BPTT must keep per step: the gate values and the state vectors, for every step."""
    return T * N * (GATES[cell] + STATES[cell]) * H * itemsize


def peak_bytes(run):
    """Peak bytes NumPy allocated while `run` ran, above what was allocated before (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        run()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def memory_rows(cell, shape, backend, lengths, impls=("fused",)):
    """Peak memory of a full-BPTT step for each implementation, and of truncated BPTT (fused) at each length."""
    N, T, D, H = shape
    rows = []
    for impl in impls:
        step, model, x, y = ours(cell, shape, impl, backend)
        step()  # warm-up: parameters' first gradients, imports
        full = peak_bytes(step)
        rows.append({"cell": cell, "shape": list(shape), "mode": f"full BPTT, {impl}", "T": T, "peak_bytes": full,
                     "activation_bytes": activation_bytes(cell, N, T, H),
                     "ratio": full / activation_bytes(cell, N, T, H)})
    for length in lengths:
        step, model, x, y = ours(cell, (N, length, D, H), "fused", backend)
        # slicing x and y per chunk must not count: make the chunks first
        chunks = [(Tensor(x.data[:, s:s + TBPTT_K].copy()), Tensor(y.data[:, s:s + TBPTT_K].copy()))
                  for s in range(0, length, TBPTT_K)]

        def run():
            state = None
            for cx, cy in chunks:
                state = step(cx, cy, state)

        run()
        peak = peak_bytes(run)
        rows.append({"cell": cell, "shape": [N, length, D, H], "mode": f"tbptt k={TBPTT_K}", "T": length,
                     "peak_bytes": peak, "activation_bytes": activation_bytes(cell, N, TBPTT_K, H),
                     "ratio": peak / activation_bytes(cell, N, TBPTT_K, H)})
    return rows


# ---- the machine ------------------------------------------------------------------------------------------
def machine_info():
    info = {"python": platform.python_version(), "numpy": np.__version__, "tinygrad_rnn": tg.__version__,
            "threads": THREADS, "removed_blas_env": REMOVED_BLAS_ENV, "cpu": platform.processor(),
            "cores": os.cpu_count(), "load_average": list(os.getloadavg())}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        info["torch"] = None
    try:
        from threadpoolctl import threadpool_info
        info["blas"] = [{k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
                        for p in threadpool_info()]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    return info


def parse_configs(text, quick):
    if quick:
        return dict(QUICK_CONFIG)
    if text == "all":
        return dict(CONFIGS)
    chosen = {}
    for item in text.split(","):
        item = item.strip()
        if item in CONFIGS:
            chosen[item] = CONFIGS[item]
            continue
        try:
            shape = tuple(int(v) for v in item.lower().split("x"))
        except ValueError:
            shape = ()
        if len(shape) != 4:
            raise click.BadParameter(f"{item!r}: use one of {', '.join(CONFIGS)} or NxTxDxH, e.g. 32x50x1x32")
        chosen[item] = shape
    return chosen


def parse_list(text, valid, what):
    items = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in items if s not in valid]
    if bad:
        raise click.BadParameter(f"unknown {what} {', '.join(bad)}; valid: {', '.join(valid)}")
    return items


@click.command()
@click.option("--configs", default="all", show_default=True,
              help=f"Comma-separated: {', '.join(f'{k}={v}' for k, v in CONFIGS.items())}, or NxTxDxH.")
@click.option("--cells", default=",".join(CELLS), show_default=True, help="Cells to time.")
@click.option("--impls", default=",".join(IMPLS), show_default=True, help="Implementations to time.")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1), help="Timed steps (median).")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(0), help="Untimed steps first.")
@click.option("--quick", is_flag=True, help="Tiny sizes and 3 repeats: a smoke test, not a measurement.")
@click.option("--backend", type=click.Choice(["numpy", "cupy"]), default="numpy", show_default=True,
              help="cupy: tinygrad_rnn on CuPy against torch on CUDA.")
@click.option("--memory/--no-memory", default=True, show_default=True,
              help="Also measure peak memory (NumPy backend only).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the results here.")
@click.option("--keep-blas-env", is_flag=True, help="Keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE if set.")
@click.option("--cpu-time", is_flag=True, help="Time process CPU time with 1 thread instead of wall time with 2 "
                                              "(for a loaded machine: counts the work, not the wait for a core).")
def main(configs, cells, impls, repeats, warmup, quick, backend, memory, json_path, keep_blas_env, cpu_time):
    """Time a training step of rnn, lstm and gru: fused, composed, torch's module and torch's cell loop."""
    console = Console(width=140)
    configs = parse_configs(configs, quick)
    cells = parse_list(cells, CELLS + USER_CELLS, "cells")
    if set(cells) & set(USER_CELLS):
        load_user_cells()
    impls = parse_list(impls, IMPLS, "implementations")
    if quick:
        repeats, warmup = min(repeats, 3), min(warmup, 1)
    try:
        import torch
        torch.set_num_threads(THREADS)
    except ImportError:
        dropped = [i for i in impls if i.startswith("torch")]
        impls = [i for i in impls if not i.startswith("torch")]
        if dropped:
            console.print(f"[yellow]torch is not installed: skipping {', '.join(dropped)}[/yellow]")
    back = Backend(backend)
    machine = machine_info()
    results = []
    for config, shape in configs.items():
        for cell in cells:
            times = time_steps(make_steps(cell, shape, impls, back), repeats, warmup, back.sync)
            reference = statistics.median(times["torch"]) if "torch" in times else None
            for impl in impls:
                if impl not in times:
                    continue
                ms = statistics.median(times[impl])
                results.append({"config": config, "shape": list(shape), "cell": cell, "impl": impl, "ms": ms,
                                "ms_all": times[impl], "ratio": None if reference is None else ms / reference})
    memory_results = []
    if memory and backend == "numpy":
        for config, shape in configs.items():
            lengths = [shape[1]] if quick else [100, 200, 400]
            for cell in cells:
                if cell in USER_CELLS:
                    continue
                paths = [i for i in ("fused", "compiled", "composed") if i in impls] or ["fused"]
                memory_results += [dict(row, config=config) for row in memory_rows(cell, shape, back, lengths, paths)]
    machine["load_average_after"] = list(os.getloadavg())
    show(console, results, memory_results, impls, machine)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({"machine": machine, "settings": {"repeats": repeats, "warmup": warmup, "backend": backend,
                                                        "clock": "process CPU time" if CPU_TIME else "wall",
                                                        "lr": LR, "tbptt_k": TBPTT_K},
                       "results": results, "memory": memory_results}, f, indent=2)
        console.print(f"wrote {json_path}")


def show(console, results, memory_results, impls, machine):
    clock = "CPU ms" if CPU_TIME else "ms"
    table = Table(title=f"{clock} per training step (median), ratio to torch's fused module — "
                        f"{machine['cpu']}, {machine['threads']} threads")
    table.add_column("config")
    table.add_column("cell")
    for impl in impls:
        table.add_column(impl, justify="right")
    rows = {}
    for r in results:
        rows.setdefault((r["config"], tuple(r["shape"]), r["cell"]), {})[r["impl"]] = r
    for (config, shape, cell), by_impl in rows.items():
        cells = []
        for impl in impls:
            r = by_impl.get(impl)
            if r is None:
                cells.append("–")
                continue
            cells.append(f"{r['ms']:.2f}" + (f" ({r['ratio']:.2f}×)" if r["ratio"] is not None else ""))
        table.add_row(f"{config} {'x'.join(map(str, shape))}", cell, *cells)
    console.print(table)
    ratios = Table(title="the compiled path against the other two (ratios of the medians above)")
    for name in ("config", "cell", "composed ÷ compiled", "compiled ÷ fused", "compiled ÷ torch",
                 "no fast ÷ fast"):
        ratios.add_column(name, justify="left" if name in ("config", "cell") else "right")
    for (config, shape, cell), by_impl in rows.items():
        ms = {impl: r["ms"] for impl, r in by_impl.items()}
        if "compiled" not in ms:
            continue
        ratios.add_row(f"{config} {'x'.join(map(str, shape))}", cell,
                       f"{ms['composed'] / ms['compiled']:.2f}" if "composed" in ms else "–",
                       f"{ms['compiled'] / ms['fused']:.2f}" if "fused" in ms else "–",
                       f"{ms['compiled'] / ms['torch']:.2f}" if "torch" in ms else "–",
                       f"{ms['compiled-nofast'] / ms['compiled']:.2f}" if "compiled-nofast" in ms else "–")
    if ratios.rows:
        console.print(ratios)
    if memory_results:
        mem = Table(title="peak memory of a training step (tracemalloc) vs the activations BPTT keeps")
        for name in ("config", "cell", "mode", "T", "peak MiB", "activations MiB", "ratio"):
            mem.add_column(name, justify="right" if name not in ("config", "cell", "mode") else "left")
        for r in memory_results:
            mem.add_row(r["config"], r["cell"], r["mode"], str(r["T"]), f"{r['peak_bytes'] / 2**20:.2f}",
                        f"{r['activation_bytes'] / 2**20:.2f}", f"{r['ratio']:.2f}")
        console.print(mem)
    console.print(f"load average before {machine['load_average']}, after {machine['load_average_after']}; "
                  f"numpy {machine['numpy']}, torch {machine['torch']}; BLAS: {machine['blas']}")


if __name__ == "__main__":
    main()
