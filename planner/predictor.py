"""Per-prompt quality: a predictor ``calibrate`` keeps only where it beats the category profile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from planner.catalog import Catalog
    from planner.formulation import Formulation
    from planner.tasks import Task


def apply_predictor(catalog: Catalog, tasks: Sequence[Task], f: Formulation) -> np.ndarray:
    """The (task x offering) quality matrix to plan with: the formulation's category-level
    profile, with the catalog's per-prompt predictor's values where it was kept."""
    if catalog.predictor is None:
        return f.quality
    raise NotImplementedError
