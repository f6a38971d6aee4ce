"""The package list, derived from the folders (the metadata is in setup.cfg).

The built-in plugins live in the repository folder plugins/ and import as `tinygrad_rnn_plugins` (the
name users' code and entry points know), so their packages are found in plugins/ and named under it;
a new folder with an __init__.py is installed without editing any list."""
from setuptools import find_packages, setup

PLUGINS = "tinygrad_rnn_plugins"

setup(packages=find_packages(include=["tinygrad_rnn", "tinygrad_rnn.*"])
      + [PLUGINS] + [f"{PLUGINS}.{name}" for name in find_packages("plugins")])
