"""Fixtures shared by several test files."""
import pytest

from helpers import restored_registry


@pytest.fixture
def fresh_registry():
    """Plugins a test loads are forgotten after it, as they would be by a new process."""
    with restored_registry():
        yield
