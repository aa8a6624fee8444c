"""The two non-event values ``next_event()`` can return."""

from __future__ import annotations

import enum
from typing import Final, Literal

__all__ = ["NEED_DATA", "PAUSED", "Sentinel"]


class Sentinel(enum.Enum):
    """``NEED_DATA``: feed more bytes with ``receive_data()``.
    ``PAUSED``: a reply is owed (or TLS must start) before the next command can be processed."""

    NEED_DATA = "NEED_DATA"
    PAUSED = "PAUSED"

    def __repr__(self) -> str:
        return self.value


NEED_DATA: Final = Sentinel.NEED_DATA
PAUSED: Final = Sentinel.PAUSED
NeedData = Literal[Sentinel.NEED_DATA]
Paused = Literal[Sentinel.PAUSED]
