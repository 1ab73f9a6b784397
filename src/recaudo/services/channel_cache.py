"""A process-wide generation number for what the bank channels cache about agreements.

The channel keeps each agreement it has looked up for a couple of seconds (a lookup per
request would cost the hot path a query). Every change that alters an answer, an
agreement created or edited or a company marked (un)available, bumps the generation
once committed, so this process forgets its cache at once; other processes (`serve
--workers N`, other servers) see the change when their entries expire.
"""

from __future__ import annotations

import itertools

_counter = itertools.count(1)
_generation = 0


def generation() -> int:
    return _generation


def bump() -> None:
    global _generation
    _generation = next(_counter)
