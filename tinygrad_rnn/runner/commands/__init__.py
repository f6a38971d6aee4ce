"""The `rnnrun` subcommands, one file per family: catalogue (list), runs (runs, show, compare, forecast),
sweep, teach (gradcheck, vanish, graph) and text (sample). Each imports the group from ..app and
registers on it; ..cli imports them all."""
