"""Fixtures shared by several test files, and the slow subprocess checks started early (tests/early_jobs.py)."""
import pytest

import early_jobs
from helpers import load_example_cells, restored_registry


@pytest.fixture
def fresh_registry():
    """Plugins a test loads are forgotten after it, as they would be by a new process."""
    with restored_registry():
        yield


@pytest.fixture
def example_cells(fresh_registry):
    """mgu from the README (as a user copies it) and indrnn from examples/, as plugin cells: the cells
    of the compiled path's tests (`pytestmark = pytest.mark.usefixtures("example_cells")`)."""
    load_example_cells()


def pytest_configure(config):
    config.addinivalue_line("markers", "early_job(name): reads the result of a subprocess job that starts "
                                       "as soon as the tests are collected (tests/early_jobs.py)")


def pytest_collection_modifyitems(items):
    """The tests that read an early job's result run last (in their order), so that the jobs have the
    whole session to run beside the other tests instead of keeping the test process waiting."""
    items.sort(key=lambda item: item.get_closest_marker("early_job") is not None)


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    early_jobs.start(mark.args for item in session.items for mark in item.iter_markers("early_job"))


def pytest_sessionfinish(session):
    early_jobs.stop_all()


@pytest.fixture
def watch_on(monkeypatch):
    """The compiled tape's watch switched on (TINYGRAD_RNN_WATCH=1; it is off by default): what the
    tests of the watch test."""
    monkeypatch.setenv("TINYGRAD_RNN_WATCH", "1")
