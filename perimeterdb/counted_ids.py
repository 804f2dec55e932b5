"""Ids unique over a server's life without a system call each: a random prefix per process and a counter.

Request ids (``server/wire.py``) and audit event ids (``audit/records.py``) are made this way. A forked
worker (``serve --workers``) draws its own prefix, or siblings would repeat each other's ids.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator


class CountedIds:
    def __init__(self, new_prefix: Callable[[], str], limit: int) -> None:
        self._new_prefix = new_prefix
        self._limit = limit  # numbers the id has room for; a new prefix is drawn past it
        self._state: tuple[str, Iterator[int]] = ("", iter(()))
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # One tuple, so that a thread never pairs a number with another prefix than it was counted under.
        self._state = (self._new_prefix(), itertools.count())

    def next(self) -> tuple[str, int]:
        """(prefix, number) of a new id; itertools.count is atomic under the GIL."""
        state = self._state
        number = next(state[1])
        if number >= self._limit:
            self._reset()
            state = self._state
            number = next(state[1])
        return state[0], number
