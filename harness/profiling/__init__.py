"""Profiling: where a case's time goes, by operator, on every adapter (``harness run --profile``).

After a case is timed, the profiling pass (:mod:`harness.profiling.pass_`) runs it a fixed number
of calls under the adapter's native profiler (:meth:`harness.adapters.Adapter.profile`):
torch.profiler for ``cpu`` and ``cuda``, the JAX profiler for ``xla-cpu`` and ``tpu``, ONNX
Runtime's session profiling for ``onnxruntime`` and ``fpga``, cProfile for host-only Python
work. Each profiler's events become one operator table (:mod:`harness.profiling.ops`: the run's
``ops.jsonl``), with categories from one documented mapping table
(:mod:`harness.profiling.categories`), and the trace is kept, Chrome trace format, under the run
folder's ``traces/``.
"""
