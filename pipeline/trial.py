"""Moved to :mod:`pipeline.experiment`; this name keeps working for one release."""

import warnings

from pipeline.experiment import Reporter, TrialResult, pick_device

warnings.warn(
    "pipeline.trial moved to pipeline.experiment: import TrialResult, Reporter and "
    "pick_device from there (this name goes in the next release)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["Reporter", "TrialResult", "pick_device"]
