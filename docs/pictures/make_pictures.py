"""Draw the pictures of docs/01-03 from the numbers of the project's own commands.

    python docs/pictures/make_pictures.py      # from the repository root; needs matplotlib,
                                               # and Graphviz's `dot` for the graphs

Every picture is written from a data file beside it, and the data file first:
- vanish-*.json: ||dLoss/dh_t|| for every step t at initialisation, exactly what `rnnrun vanish
  ... --epochs 0 --json` measures (same configs, same seed), drawn on a log scale as vanish-*.png;
- graph-*.dot: what `rnnrun graph --cell C --steps S --dot FILE` writes, drawn by `dot -Tpng`;
- cell-*.json: the tape of one step of each built-in cell (`compile_cell(cell).tape_for`, page 8):
  the cell's own ops, drawn as a data-flow diagram cell-*.png, coloured by where each op runs;
- unrolled-rnn.json, tape-and-graph.json: an RNN unrolled over three steps (the ops of
  `rnnrun graph --cell rnn --steps 3`, grouped by step), and one RNN step's graph beside its tape;
- loss-cliff.json: the loss and its gradient along a 1-D slice through the weights of an exploding
  one-unit RNN, computed by the engine, drawn as loss-cliff.png.

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
# name: (cell, the names of the blocks its pre-activation is chunked into, in the code's order)
CELLS = {"cell-rnn": ("rnn", ""), "cell-lstm": ("lstm", "ifgo"), "cell-peephole": ("peephole", "ifgo"),
         "cell-gru": ("gru", "rzn")}
# data computed by a function of this file, drawn by another: name -> (compute, draw)
DIAGRAMS = ("unrolled-rnn", "tape-and-graph", "loss-cliff")
WHERE_COLOURS = {"once": "#e0e0e0", "hoisted": "#d8f5d0", "every step": "#ffe0b0"}
SYMBOLS = {"Add": "+", "Sub": "−", "Mul": "⊙", "Sigmoid": "σ", "Tanh": "tanh", "Linear": "linear", "Chunk": "chunk",
           "MatMul": "@", "Transpose": "ᵀ", "ReLU": "relu"}


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


def cell_tape(name):
    """{"cell", "gates", "lines": the tape as page 8 prints it, "nodes", "edges"} of one step of the cell."""
    import numpy as np
    from tinygrad_rnn import Tensor, manual_seed
    from tinygrad_rnn.nn import Recurrent, compile_cell
    from tinygrad_rnn.registry import cells
    from tinygrad_rnn.runner.app import load_plugins
    load_plugins(())
    cell_name, gates = CELLS[name]
    manual_seed(0)
    cell = Recurrent(cells.get(cell_name), 1, 2).cells[0]
    tape = compile_cell(cell).tape_for(Tensor(np.ones((1, 3, 1), np.float32)), cell.initial_state(1))
    state_names = ["h_{t-1}", "c_{t-1}"][:len(tape.state_in)]
    label = {0: "x_t"}
    label.update({slot: state_names[i] for i, slot in enumerate(tape.state_in)})
    params = dict(zip(tape.param_slots, tape.param_names))
    where_of = {"once": "once", "rows": "hoisted", "step": "every step"}
    nodes, edges = [{"id": 0, "label": "x_t", "kind": "input"}], []
    nodes += [{"id": slot, "label": label[slot], "kind": "state"} for slot in tape.state_in]
    for e in tape.entries:
        op = e.cls.__name__
        text = SYMBOLS.get(op, op)
        used = [params[a] for a in e.args if a in params]
        where = where_of.get(getattr(e.where, "name", str(e.where)).lower(), str(e.where))
        me = f"split{e.outs[0]}" if op == "Chunk" else e.outs[0]  # a chunk's outputs are the gates
        nodes.append({"id": me, "label": text + (f"({', '.join(used)})" if used else ""), "kind": where})
        edges += [(a, me) for a in e.args if tape.kind[a] in ("x", "state", "entry")]
        if op == "Chunk":
            for gate, out in zip(gates, e.outs):
                nodes.append({"id": out, "label": gate, "kind": where})
                edges.append((me, out))
    returned = ["h_t", "c_t"]
    for i, slot in enumerate(tape.state_out):
        nodes.append({"id": f"out{i}", "label": returned[i], "kind": "output"})
        edges.append((slot, f"out{i}"))
    return {"cell": cell_name, "gates": gates, "lines": str(tape).splitlines(), "nodes": nodes,
            "edges": [list(e) for e in edges]}


def _layout(nodes, edges):
    """Column = longest path from an input; rows in order within a column. {id: (column, row)}."""
    column = {n["id"]: 0 for n in nodes if n["kind"] in ("input", "state")}
    for n in nodes:  # the tape is in computation order, so one pass in order suffices
        if n["id"] in column:
            continue
        sources = [a for a, b in edges if b == n["id"]]
        column[n["id"]] = 1 + max((column[a] for a in sources if a in column), default=0)
    rows, place = {}, {}
    for n in nodes:
        c = column[n["id"]]
        place[n["id"]] = (c, rows.get(c, 0))
        rows[c] = rows.get(c, 0) + 1
    return place


def draw_flow(data, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    place = _layout(data["nodes"], data["edges"])
    columns = 1 + max(c for c, _ in place.values())
    height = 1 + max(r for _, r in place.values())
    fig, ax = plt.subplots(figsize=(max(6, 1.55 * columns), max(2.5, 0.75 * height + 1)))
    colours = {"input": "#d8f5d0", "state": "#cfe8ff", "output": "#cfe8ff", **WHERE_COLOURS}
    xy = {i: (c * 1.6, -r * 0.8) for i, (c, r) in place.items()}
    for a, b in data["edges"]:
        ax.annotate("", xy=xy[b], xytext=xy[a], arrowprops=dict(arrowstyle="->", color="#555555",
                                                                 shrinkA=14, shrinkB=14, lw=0.8))
    for n in data["nodes"]:
        x, y = xy[n["id"]]
        ax.text(x, y, n["label"], ha="center", va="center", fontsize=8,
                bbox=dict(boxstyle="round,pad=0.3", fc=colours.get(n["kind"], "white"), ec="#777777"))
    for where, colour in WHERE_COLOURS.items():
        ax.plot([], [], "s", color=colour, label=f"runs {where}")
    ax.legend(loc="lower right", fontsize=7, frameon=False)
    ax.set_title(title, fontsize=10)
    ax.set_xlim(-0.9, (columns - 1) * 1.6 + 0.9)
    ax.set_ylim(-(height - 1) * 0.8 - 0.7, 0.6)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def unrolled_rnn():
    """The ops of `rnnrun graph --cell rnn --steps 3`, counted per step: what the unrolled picture shows."""
    from tinygrad_rnn.runner.lessons import tiny_model_graph
    counts = [len(tiny_model_graph("rnn", steps=s)[0].ops) for s in (1, 2, 3)]
    return {"steps": 3, "ops_for_1_2_3_steps": counts, "ops_per_step": counts[1] - counts[0]}


def draw_unrolled(data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 3.2))
    box = dict(boxstyle="round,pad=0.5", fc="#ffe0b0", ec="#777777")
    for t in range(1, data["steps"] + 1):
        x = 2.4 * t
        ax.text(x, 0, f"cell\n({data['ops_per_step']} ops)", ha="center", va="center", fontsize=9, bbox=box)
        ax.text(x, -1.3, f"x_{t}", ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round", fc="#d8f5d0", ec="#777777"))
        ax.text(x, 1.3, f"h_{t}", ha="center", va="center", fontsize=10,
                bbox=dict(boxstyle="round", fc="#cfe8ff", ec="#777777"))
        ax.annotate("", xy=(x, -0.45), xytext=(x, -1.05), arrowprops=dict(arrowstyle="->"))
        ax.annotate("", xy=(x, 1.05), xytext=(x, 0.45), arrowprops=dict(arrowstyle="->"))
        ax.annotate("", xy=(x - 0.75, 0), xytext=(x - 1.65, 0), arrowprops=dict(arrowstyle="->", color="#c05000"))
        ax.text(x - 1.2, 0.2, "W_hh", ha="center", fontsize=8, color="#c05000")
    ax.text(2.4 - 1.9, 0, "h_0 = 0", ha="right", va="center", fontsize=9)
    ax.text(2.4 * (data["steps"] + 0.55), 0, "...", fontsize=14, va="center")
    ax.set_title("An RNN unrolled: one cell, the same weights (W_hh in red) at every step; "
                 "backward() goes right to left", fontsize=9)
    ax.set_xlim(-0.6, 2.4 * (data["steps"] + 1))
    ax.set_ylim(-1.8, 1.8)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def tape_and_graph():
    """One RNN step: the graph backward() walks (`rnnrun graph --cell rnn --steps 1`, as a tree) and
    the tape the compiled path replays (`compile_cell(cell).tape_for`)."""
    from tinygrad_rnn.runner.lessons import preorder, tiny_model_graph
    graph, _ = tiny_model_graph("rnn", steps=1)
    tree = []
    for depth, node, first in preorder(graph):
        text = f"[{node.order}] {node.label}" if node.kind == "op" else node.label
        tree.append("  " * depth + text + ("" if first else "  (shown above)"))
    return {"graph": tree, "tape": cell_tape("cell-rnn")["lines"]}


def draw_tape_and_graph(data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.text(0, 1, "\n".join(data["graph"]), family="monospace", fontsize=7.5, va="top")
    left.set_title("the graph: nodes that point to their inputs;\nbackward() sorts it, then calls [1], [2], ...",
                   fontsize=9)
    right.text(0, 1, "\n".join(data["tape"]), family="monospace", fontsize=7.5, va="top")
    right.set_title("the tape of the same cell step: a list in forward order;\n"
                    "the compiled path replays it, backward reads it from the end", fontsize=9)
    for ax in (left, right):
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def loss_cliff():
    """A one-unit RNN h_t = tanh(w h_{t-1} - 0.3), h_0 = 0.5, T = 40 steps, loss (h_T - 0.7)^2, along the
    slice w in [0, 3]: the loss and |dL/dw|, by the engine, every w of the slice at once. Past w ≈ 1.7
    the unit has two stable states, and which one h_0 = 0.5 falls into flips: the loss jumps (a cliff,
    Pascanu et al. 2013), and near the jump the gradient explodes."""
    import numpy as np
    from tinygrad_rnn import Tensor
    ws = np.unique(np.concatenate([np.linspace(0.0, 3.0, 601), np.linspace(1.69, 1.71, 401)]))  # dense at the cliff
    w = Tensor(ws, requires_grad=True)
    h = Tensor(np.full(ws.shape, 0.5))
    for _ in range(40):
        h = (w * h - 0.3).tanh()
    loss = (h - 0.7) ** 2
    loss.sum().backward()  # each w's loss depends on that w only: one backward gives every dL/dw
    return {"w": [round(float(v), 4) for v in ws], "loss": [float(f"{v:.5g}") for v in loss.numpy()],
            "grad": [float(f"{abs(v):.5g}") for v in w.grad]}


def draw_loss_cliff(data, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    top.plot(data["w"], data["loss"])
    top.set_ylabel("loss (h_40 − 0.7)²")
    top.set_title("A 1-D slice through an RNN's weights: a cliff where the state it settles in flips\n"
                  "(h_t = tanh(w h_{t-1} - 0.3), h_0 = 0.5, 40 steps)", fontsize=9)
    bottom.plot(data["w"], [g if g > 0 else float("nan") for g in data["grad"]], color="#c05000")
    bottom.set_yscale("log")
    bottom.set_ylabel("|dL/dw| (log scale)")
    bottom.set_xlabel("w (the recurrent weight)")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


COMPUTE = {"unrolled-rnn": unrolled_rnn, "tape-and-graph": tape_and_graph, "loss-cliff": loss_cliff}
DRAW = {"unrolled-rnn": draw_unrolled, "tape-and-graph": draw_tape_and_graph, "loss-cliff": draw_loss_cliff}


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


def _write_json(name, data):
    with open(os.path.join(HERE, f"{name}.json"), "w") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    missing = []
    for name in VANISH:
        numbers = vanish_numbers(name)
        with open(os.path.join(HERE, f"{name}.json"), "w") as f:
            json.dump(numbers, f, indent=1)
            f.write("\n")
        draw_vanish(numbers, os.path.join(HERE, f"{name}.png"))
        print(f"wrote {name}.json, {name}.png")
    for name in CELLS:
        data = cell_tape(name)
        _write_json(name, data)
        draw_flow(data, os.path.join(HERE, f"{name}.png"), f"one step of the {data['cell']} cell, from its tape")
        print(f"wrote {name}.json, {name}.png")
    for name in DIAGRAMS:
        data = COMPUTE[name]()
        _write_json(name, data)
        DRAW[name](data, os.path.join(HERE, f"{name}.png"))
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
