"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from common import new_short_dir


@pytest.fixture
def workdir() -> Iterator[str]:
    """A short temp dir for sockets and logs, removed afterwards."""
    path = new_short_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)
