"""How many independent votes a council's seats carry: Kish's effective number.

n seats whose votes correlate pairwise at a mean rho carry the information of
n_eff = n / (1 + (n - 1) * rho) independent ones (Kish 1965, the design effect of equally
weighted, equally correlated units). One definition, read by the tally's effective votes
within a run, a panel's profile across runs and the eval harness's error correlation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def kish_effective_votes(n: int, mean_correlation: float) -> float:
    """n_eff for ``n`` votes at ``mean_correlation``, clipped to [0, 1]: negative correlation
    among votes is not extra independence a tally can bank on, and a mean above 1 is noise."""
    if n < 1:
        raise ValueError(f"a tally needs at least one vote, got {n}")
    rho = min(max(float(mean_correlation), 0.0), 1.0)
    return n / (1.0 + (n - 1) * rho)


def mean_off_diagonal(matrix: Sequence[Sequence[float]]) -> float:
    """The mean pairwise correlation of a square correlation matrix (its off-diagonal mean)."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a correlation matrix is square, got shape {m.shape}")
    n = m.shape[0]
    if n < 2:
        return 0.0
    return float((m.sum() - np.trace(m)) / (n * (n - 1)))
