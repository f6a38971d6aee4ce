"""Plots of a run (needs matplotlib: pip install 'tinygrad_rnn[plot]'). Importing this module
without matplotlib raises ImportError, which callers take as "no plots".

The figures are built as `matplotlib.figure.Figure` objects, not through pyplot: writing a file then
needs no backend, so the runner never switches the one a notebook or a script has chosen.
`run_figure` is what `Run.plot()` returns."""
from matplotlib.figure import Figure


def supported_formats():
    """The file extensions savefig can write: png, pdf, svg, ..."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    return set(FigureCanvasAgg.get_supported_filetypes())


def draw_loss(ax, history):
    """Train and validation loss per epoch, on a log scale."""
    epochs = [m["epoch"] for m in history]
    ax.plot(epochs, [m["train_loss"] for m in history], label="train")
    ax.plot(epochs, [m["val_loss"] for m in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()


def loss_plot(path, history):
    fig = Figure(figsize=(6, 3.5))
    draw_loss(fig.subplots(), history)
    _save(fig, path)


def draw_forecast(ax, predictions, truth=None, source="data"):
    """Prediction (K, D) against truth (K, D) or None, first feature, as `forecast` returns them."""
    if truth is not None:
        ax.plot(truth[:, 0], label="truth", color="black", linewidth=1)
    ax.plot(predictions[:, 0], label=f"free-running forecast (from {source})", color="tab:red")
    ax.set_xlabel("steps ahead")
    ax.legend()


def forecast_plot(path, predictions, truth=None, source="data"):
    fig = Figure(figsize=(7, 3.5))
    draw_forecast(fig.subplots(), predictions, truth, source)
    _save(fig, path)


def run_figure(history, predictions=None, truth=None, title=None):
    """One figure of a run: its loss per epoch, and beside it its forecast where it has one."""
    fig = Figure(figsize=(12 if predictions is not None else 6, 3.5))
    axes = fig.subplots(1, 2 if predictions is not None else 1, squeeze=False)[0]
    draw_loss(axes[0], history)
    if predictions is not None:
        draw_forecast(axes[1], predictions, truth)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _save(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def picture_plot(path, picture):
    """A dataset's `forecast_picture`: the test targets' truth and forecasts, then the forecasts past the
    end of the data, on one time axis labelled with the data's own times."""
    n, k = len(picture["truth"]), len(picture["future"])
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    ax.plot(range(n), picture["truth"], label="truth (test)", color="black", linewidth=1)
    ax.plot(range(n), picture["prediction"], label="forecast (test)", color="tab:blue")
    ax.plot(range(n - 1, n + k), [picture["truth"][-1]] + list(picture["future"]), label="forecast (after the data)",
            color="tab:red", linestyle="--")
    labels = list(picture["time"]) + list(picture["future_time"])
    ticks = list(range(0, n + k, max(1, (n + k) // 8)))
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[t] for t in ticks], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(picture.get("target", ""))
    ax.set_title(f"series {picture['series']}" if picture.get("series") else "", fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, path)


def line_plot(path, series, title, ylabel, log=True):
    """One line per name in `series` ({name: values}); used by `rnnrun vanish`."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_title(title)
    ax.set_xlabel("time step t")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend()
    _save(fig, path)


def study_plots(study, folder):
    """An Optuna study's optimisation history and parameter importances as PNGs; the paths written."""
    import warnings

    import matplotlib.pyplot as plt  # Optuna's views draw through pyplot
    from optuna.visualization import matplotlib as views
    written = []
    for name, view in (("history.png", views.plot_optimization_history),
                       ("importances.png", views.plot_param_importances)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib views experimental
                ax = view(study)
        except (ValueError, RuntimeError):  # too few finished trials for importances
            continue
        ax.figure.set_size_inches(7, 4)
        ax.figure.tight_layout()
        ax.figure.savefig(f"{folder}/{name}", dpi=100)
        plt.close(ax.figure)
        written.append(f"{folder}/{name}")
    return written
