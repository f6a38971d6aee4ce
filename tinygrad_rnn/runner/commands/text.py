"""`rnnrun sample RUN`: write text with a trained character-level language model (a `text` run).

    rnnrun --cell lstm --data text --layers 2 --reg tbptt:k=100
    rnnrun sample last --prompt 'ROMEO:' --length 500 --temperature 0.8 --seed 1
"""
import os
import sys

import click

from .. import options as shared
from ..app import run_config, store_for
from ...errors import ConfigError
from ...registry import datasets


MAX_LENGTH = 10 ** 7
MIN_TEMPERATURE, MAX_TEMPERATURE = 1e-3, 1e3


@click.command("sample")
@click.argument("run_id", metavar="RUN")
@click.option("--prompt", default="\n", show_default="a newline",
              help="Text read first to warm the state up (printed, then continued); in a shell, "
                   "$'ROMEO:\\n' passes a newline.")
@click.option("--length", default=500, show_default=True, type=click.IntRange(0, MAX_LENGTH),
              help="Characters to generate.")
@click.option("--temperature", default=0.8, show_default=True, type=float,
              help=f"Sharpness of the sampling: 0 is greedy (argmax), 1 the model's own distribution; "
                   f"0 or from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}.")
@shared.seed(default=0, show_default=True, help="Seed of the sampling: same seed, same text.")
@shared.runs_dir()
@click.pass_context
def sample_cmd(ctx, run_id, prompt, length, temperature, seed, runs_dir):
    """Generate text from a trained `text` run (RUN: id, id prefix, path or 'last'), printed as it comes."""
    from ..experiment import build
    from ...sample import is_text_dataset, sample
    if not (temperature == 0 or MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE):
        raise ConfigError(f"--temperature must be 0 (greedy) or from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g}, "
                          f"got {temperature!r}: logits / temperature would overflow or carry no information")
    run = store_for(ctx, runs_dir).get(run_id).verify()  # a damaged file: one line naming it, exit 1
    config = run_config(run)
    if not _is_text(config.get("data")):
        raise ConfigError(f"run {run.id} is on dataset {config.get('data')!r}, not a character-level text "
                          f"dataset; sample needs a run on one of: {', '.join(_text_datasets()) or 'none'}")
    dataset, model, _ = build(config)
    if not is_text_dataset(dataset):  # a plugin that declares itself text-like but is not
        raise ConfigError(f"dataset {config['data']!r} of run {run.id} has no vocabulary to sample from")
    if not os.path.exists(run.file("model.npz")):
        raise ConfigError(f"run {run.id} has no saved weights (model.npz) yet; wait for it to finish")
    run.load_weights_into(model)
    dataset.encode(prompt)  # an unknown prompt character fails here, before anything is printed

    def echo(text):
        sys.stdout.write(text)
        sys.stdout.flush()

    echo(prompt)
    sample(model, dataset, prompt=prompt, length=length, temperature=temperature, seed=seed, on_char=echo)
    echo("\n")


def _text_datasets():
    return [n for n in datasets.names() if _is_text(n)]


def _is_text(name):
    """Whether dataset `name` is a character language model (known from its class, without building it)."""
    if name not in datasets:
        return False
    cls = datasets.get(name)
    return cls.kind == "seq2seq" and cls.problem == "classification" and hasattr(cls, "encode") \
        and hasattr(cls, "decode")
