"""Moved to :mod:`pipeline.nas.pyg`; this name keeps working for one release."""

import warnings

from pipeline.nas.pyg import BenchmarkDataset, benchmark_dataset, cell_data, generated_data

warnings.warn(
    "pipeline.pyg moved to pipeline.nas.pyg: import from there "
    "(this name goes in the next release)",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["BenchmarkDataset", "benchmark_dataset", "cell_data", "generated_data"]
