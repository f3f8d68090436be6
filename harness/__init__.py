"""An honest harness for benchmarking and profiling ML inference.

The public API for suites is ``workload`` and ``Task``; ``bench`` measures one callable in one
line; ``load`` reads stored runs into a pandas DataFrame, ``load_ops`` their profiles' operator
tables. Importing this package imports neither torch nor pandas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from harness.workload import Case, Skip, Task, Workload, workload

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.1.0"
__all__ = ["Case", "Skip", "Task", "Workload", "__version__", "bench", "load", "load_ops",
           "workload"]


def bench(fn: Callable[..., Any], /, *inputs: Any, adapters: str | Iterable[str] = ("cpu",),
          **settings: Any) -> pd.DataFrame:
    """Measure ``fn(*inputs)`` as ``harness run`` measures a suite's case; its rows (one per
    adapter and repetition) as ``harness.load`` returns them, the run folder in
    ``attrs["run"]``.

    The same execution layer, timer, checks and changed-input probe as ``harness run``, and
    the usual run folder under ``results/``. Each case runs in a worker process of its own
    when the task can be sent to one (a function a worker can import); a function defined in a
    notebook or a script's ``__main__`` is measured in this process, and the row's
    ``meta["in_process"]`` says why. Example::

        rows = harness.bench(sorted, data, min_time=0.2)
        rows.loc[0, ["latency_median_s", "latency_ci_low_s", "latency_ci_high_s"]]

    ``adapters``: adapter specs as ``harness run -a`` takes them (``"cpu:threads=1"``).
    Settings, by the names of ``harness run``'s flags and plan keys: ``min_time``,
    ``max_time``, ``min_samples``, ``precision`` (2, "2%" or 0.02), the other ``[timing]``
    keys; ``out`` (default ``results``), ``repeat``, ``collect``, ``profile``, ``recalibrate``,
    ``isolate`` (True: a worker or an error; False: this process), ``timeout``,
    ``max_memory``, ``reference``, ``interleave``; and the task's: ``name`` (the case's, default
    ``fn``'s name), ``check`` (raises AssertionError on a wrong output), ``expected`` (the
    output, compared exactly), ``items``, ``items_unit``, ``flops``, ``bytes``, ``dtype``,
    ``engine``, ``host_only``, ``footprint_bytes``, ``meta``, ``vary``. A bad setting is a
    one-line ``ValueError`` or ``TypeError``, raised before anything runs.
    """
    from harness.adhoc import bench as _bench

    return _bench(fn, *inputs, adapters=adapters, **settings)


def load(*paths: Any) -> pd.DataFrame:
    """Load run folders or results directories into one DataFrame (see ``harness.results.load``)."""
    from harness.results import load as _load

    return _load(*paths)


def load_ops(*paths: Any) -> pd.DataFrame:
    """Load the operator tables of profiled runs (``harness run --profile``) into one DataFrame
    (see ``harness.profiling.ops.load_ops``)."""
    from harness.profiling.ops import load_ops as _load_ops

    return _load_ops(*paths)
