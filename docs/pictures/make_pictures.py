"""Draw the pictures of docs/01-03 from the numbers of the project's own commands.

    python docs/pictures/make_pictures.py      # from the repository root; needs matplotlib,
                                               # and Graphviz's `dot` for the graphs

Every picture is written from a data file beside it, and the data file first:
- vanish-*.json: ||dLoss/dh_t|| for every step t at initialisation, exactly what `rnnrun vanish
  ... --epochs 0 --json` measures (same configs, same seed), drawn on a log scale as vanish-*.png;
- graph-*.dot: what `rnnrun graph --cell C --steps S --dot FILE` writes, drawn by `dot -Tpng`.

tests/test_docs_pictures.py regenerates the numbers and the DOT text and compares them with the
committed files, so a picture whose numbers changed is caught; it needs neither Graphviz nor
matplotlib and never compares PNG bytes. Graphviz on Debian or Ubuntu: `apt-get install -y graphviz`
(elsewhere: https://graphviz.org/download/). Without `dot` the script writes the DOT files and says
which PNGs it could not draw.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# name: (title, data, [(cell spec, [--reg ...]), ...]); measured at initialisation (--epochs 0)
VANISH = {
    "vanish-cells": ("||dLoss/dh_t|| at initialisation, adding:T=100", "adding:T=100",
                     [("rnn", []), ("lstm", []), ("gru", [])]),
    "vanish-remedies": ("||dLoss/dh_t|| at initialisation, adding:T=100,n_train=200", "adding:T=100,n_train=200",
                        [("rnn", []), ("rnn:nonlinearity=relu", []), ("rnn", ["xavier"]), ("rnn", ["orthogonal"]),
                         ("rnn", ["orthogonal:gain=2"]), ("lstm:forget_bias=1.0", [])]),
}
# name: (cell, steps), as `rnnrun graph --cell CELL --steps STEPS --dot name.dot`
GRAPHS = {"graph-rnn": ("rnn", 2), "graph-gru": ("gru", 1)}


def vanish_numbers(name):
    """{"title", "series": {label: [||dLoss/dh_t|| for t = 1..T]}} for one VANISH picture."""
    from tinygrad_rnn.runner.app import config_from_flags, load_plugins, with_spec
    from tinygrad_rnn.runner.experiment import resolve
    from tinygrad_rnn.runner.lessons import vanish
    load_plugins(())
    title, data, curves = VANISH[name]
    series = {}
    for spec, regs in curves:
        cell, options = with_spec(spec, "cell")
        base = config_from_flags(None, data=data, optimizer=None, reg=tuple(regs), hidden=None, layers=None,
                                 bidirectional=None, epochs=1, batch_size=None, lr=None, seed=None, backend=None,
                                 path=None)
        config = resolve({**base, "cell": cell, "cell_options": options})
        config["epochs"] = 0  # initialisation only, as `rnnrun vanish --epochs 0`
        label = spec + "".join(f" --reg {r}" for r in regs)
        series[label] = [float(f"{v:.4g}") for v in vanish(config).init]
    return {"title": title, "series": series}


def graph_dot(name):
    """The DOT text `rnnrun graph --cell CELL --steps STEPS --dot FILE` writes."""
    from tinygrad_rnn.runner.app import load_plugins
    from tinygrad_rnn.runner.lessons import tiny_model_graph, to_dot
    load_plugins(())
    cell, steps = GRAPHS[name]
    graph, _ = tiny_model_graph(cell, steps=steps)
    return to_dot(graph, f"{cell}, {steps} steps")


def draw_vanish(numbers, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in numbers["series"].items():
        ax.plot(range(1, len(values) + 1), [v if v > 0 else float("nan") for v in values], label=label)
    ax.set_yscale("log")  # a constant factor per step is a straight line; its slope is log10 of the factor
    ax.set_xlabel("time step t (the loss is at t = T)")
    ax.set_ylabel("||dLoss/dh_t|| (log scale)")
    ax.set_title(numbers["title"], fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    missing = []
    for name in VANISH:
        numbers = vanish_numbers(name)
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            json.dump(numbers, f, indent=1)
            f.write("\n")
        draw_vanish(numbers, os.path.join(HERE, f"{name}.png"))
        print(f"wrote {name}.json, {name}.png")
    for name in GRAPHS:
        dot_path = os.path.join(HERE, f"{name}.dot")
        with open(dot_path, "w") as f:
            f.write(graph_dot(name))
        if shutil.which("dot"):
            subprocess.run(["dot", "-Tpng", "-Gdpi=72", dot_path, "-o", os.path.join(HERE, f"{name}.png")],
                           check=True)
            print(f"wrote {name}.dot, {name}.png")
        else:
            missing.append(f"{name}.png")
            print(f"wrote {name}.dot")
    if missing:
        print(f"Graphviz's dot is not installed: {', '.join(missing)} not drawn "
              "(Debian/Ubuntu: apt-get install -y graphviz)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
