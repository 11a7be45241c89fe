"""Errors and warnings of the fitting layer: each names the offending field and the fix."""

from __future__ import annotations

from archscale.errors import ArchscaleError


class LawDataError(ArchscaleError):
    """The table cannot support the requested fit or prediction (missing column, bad values, too few points)."""


class NotFittedError(ArchscaleError):
    """A fitted quantity was asked of a law that was neither fitted nor loaded."""


class OnBoundWarning(UserWarning):
    """A fitted parameter sits on its optimisation bound, so the optimum is a constraint, not a fit."""


class ConvergenceWarning(UserWarning):
    """L-BFGS-B stopped without meeting its convergence test."""


class ResamplingWarning(UserWarning):
    """Too few runs to resample: run-level bootstrap intervals rest on a handful of distinct resamples."""


class IntervalWarning(UserWarning):
    """The data cannot support an interval (too few runs or model sizes): the fit is given without one."""


class DuplicateRowsWarning(UserWarning):
    """A table repeated rows exactly (every column equal); each was counted once."""
