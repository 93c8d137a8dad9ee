"""pytest's hooks for the fastconv test suite: its fixtures. The helpers live in
``tests/_support.py`` (imported here, which also loads the hypothesis profile)."""
import pytest

from _support import shared_data_path


@pytest.fixture
def shared_data():
    """The ``../shared/data`` directory; skips the test when it is absent."""
    return shared_data_path()
