"""What the solutions share: running rnnrun as a user does, and reading its --json."""
import json
import subprocess
import sys


def rnnrun(*args):
    """stdout of `rnnrun ARGS` (as `python -m tinygrad_rnn`, the same program); fails loudly if it fails."""
    done = subprocess.run([sys.executable, "-m", "tinygrad_rnn", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"rnnrun {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


def vanish_json(*args):
    """{cell label: its entry} of `rnnrun vanish ARGS --json --no-plot`."""
    return {c["cell"]: c for c in json.loads(rnnrun("vanish", *args, "--json", "--no-plot"))["cells"]}
