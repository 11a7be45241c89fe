"""The one error of the analysis layer: input it cannot read, named with the field and the fix.

Data that are merely too thin for an analysis (one model size, no grid, no noise-scale data) are not
errors: the analysis returns a result whose ``skipped`` says why, so a study report still renders.
"""

from __future__ import annotations

from archscale.errors import ArchscaleError


class AnalysisError(ArchscaleError):
    """A table lacks a column or holds values an analysis cannot use; the message names both and the fix."""
