"""`python -m tinygrad_rnn` runs the `rnnrun` command line."""
from .runner.cli import main

main()
