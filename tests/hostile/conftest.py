"""Shared switches for the hostile-peers suite.

Tests marked ``slow`` (the full 1 GiB stream, the 5,000-message crash test, long fuzz runs) are
skipped unless the environment says ``ESMTP_SLOW=1``. The switch is an environment variable
rather than a pytest option because ``addopts`` live in pyproject.toml, which this suite does not
own, and an environment variable works the same under ``scripts/test`` and plain ``pytest``::

    ESMTP_SLOW=1 python -m pytest tests/hostile -m slow

``ESMTP_SLOW=1`` also runs ten times more hypothesis examples in every property test;
``ESMTP_EXAMPLES=N`` sets that number outright (a long bug hunt), and ``ESMTP_FUZZ_SECONDS=N``
the length of each short atheris run (default 20).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The fuzz harness (fuzz/harness.py) is shared with these tests; make the repository root
# importable also when pytest is run as ``pytest`` rather than ``python -m pytest``.
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SLOW_ENABLED = os.environ.get("ESMTP_SLOW", "") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``slow`` items of this directory unless ``ESMTP_SLOW=1``."""
    if SLOW_ENABLED:
        return
    skip = pytest.mark.skip(reason="slow: set ESMTP_SLOW=1 to run")
    here = os.path.dirname(__file__)
    for item in items:
        if "slow" in item.keywords and str(item.fspath).startswith(here):
            item.add_marker(skip)
