"""An honest harness for benchmarking and profiling ML inference.

The public API for suites is ``workload`` and ``Task``; ``load`` reads stored runs into a
pandas DataFrame, ``load_ops`` their profiles' operator tables. Importing this package
imports neither torch nor pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.workload import Case, Skip, Task, Workload, workload

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"
__all__ = ["Case", "Skip", "Task", "Workload", "__version__", "load", "load_ops", "workload"]


def load(*paths: Any) -> pd.DataFrame:
    """Load run folders or results directories into one DataFrame (see ``harness.results.load``)."""
    from harness.results import load as _load

    return _load(*paths)


def load_ops(*paths: Any) -> pd.DataFrame:
    """Load the operator tables of profiled runs (``harness run --profile``) into one DataFrame
    (see ``harness.profiling.ops.load_ops``)."""
    from harness.profiling.ops import load_ops as _load_ops

    return _load_ops(*paths)
