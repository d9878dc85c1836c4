"""Small-array helpers of the flow engine's step: a guard for divisions and reductions without numpy's
method wrappers (the arrays of a step are per class, region, type or row: tens of elements, where a
wrapper costs as much as the work).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["TINY", "some", "sums"]

TINY = 1e-12
"""Guards divisions by a rate, a capacity or a mass that may be zero (``x / max(y, TINY)``)."""

sums = np.add.reduce
"""``x.sum(axis=a)`` as ``sums(x, axis=a)``: the very reduction (the same bits) without the method's Python
wrapper, which costs as much as the sum on the small arrays of a step. (``axis=None`` sums every element; the
default is the first axis.)"""


def some(x: ArrayLike) -> bool:
    """Whether any element of ``x`` is nonzero: ``bool(x.any())``, at a fraction of its cost on the small
    arrays of a step (per class, region, type or row; a count of the nonzero elements is no reduction).
    """
    return int(np.count_nonzero(x)) > 0

