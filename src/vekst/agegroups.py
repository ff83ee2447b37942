"""The age groups municipal planners budget by: one definition for projections, backtests
and the report (kindergarten, primary and lower/upper secondary school, working ages,
elderly care)."""

from __future__ import annotations

import numpy as np

__all__ = ["AGE_GROUPS", "age_group_matrix"]

#: (label, first age, last age or None for the open group).
AGE_GROUPS: tuple[tuple[str, int, int | None], ...] = (
    ("0", 0, 0),
    ("1-5", 1, 5),
    ("6-12", 6, 12),
    ("13-15", 13, 15),
    ("16-19", 16, 19),
    ("20-29", 20, 29),
    ("30-49", 30, 49),
    ("50-66", 50, 66),
    ("67-79", 67, 79),
    ("80-84", 80, 84),
    ("85-89", 85, 89),
    ("90+", 90, None),
)


def age_group_matrix(ages: np.ndarray) -> np.ndarray:
    """Indicator matrix ``(age, age_group)`` of :data:`AGE_GROUPS`.

    Parameters
    ----------
    ages
        Single-year ages (the last may be an open interval).
    """
    ages = np.asarray(ages)
    matrix = np.zeros((len(ages), len(AGE_GROUPS)))
    for g, (_, low, high) in enumerate(AGE_GROUPS):
        matrix[(ages >= low) & (ages <= (np.inf if high is None else high)), g] = 1.0
    return matrix
