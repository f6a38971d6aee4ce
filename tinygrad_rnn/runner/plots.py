"""PNG plots of a run (needs matplotlib: pip install 'tinygrad_rnn[plot]'). Importing this module
without matplotlib raises ImportError, which callers take as "no plots"."""
import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402


def supported_formats():
    """The file extensions savefig can write: png, pdf, svg, ..."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    return set(FigureCanvasAgg.get_supported_filetypes())


def loss_plot(path, history):
    epochs = [m["epoch"] for m in history]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(epochs, [m["train_loss"] for m in history], label="train")
    ax.plot(epochs, [m["val_loss"] for m in history], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def forecast_plot(path, predictions, truth=None, source="data"):
    """Prediction (K, D) against truth (K, D) or None, first feature, as `forecast` returns them."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if truth is not None:
        ax.plot(truth[:, 0], label="truth", color="black", linewidth=1)
    ax.plot(predictions[:, 0], label=f"free-running forecast (from {source})", color="tab:red")
    ax.set_xlabel("steps ahead")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def picture_plot(path, picture):
    """A dataset's `forecast_picture`: the test targets' truth and forecasts, then the forecasts past the
    end of the data, on one time axis labelled with the data's own times."""
    n, k = len(picture["truth"]), len(picture["future"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def line_plot(path, series, title, ylabel, log=True):
    """One line per name in `series` ({name: values}); used by `rnnrun vanish`."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, label=name)
    ax.set_title(title)
    ax.set_xlabel("time step t")
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def study_plots(study, folder):
    """An Optuna study's optimisation history and parameter importances as PNGs; the paths written."""
    import warnings

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
