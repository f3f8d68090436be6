"""The run's context: which environment variables it records."""

from __future__ import annotations

import pytest

from harness import environment


def test_the_variables_that_shape_gpu_results_are_recorded(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    wanted = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_MODULE_LOADING": "EAGER",
              "NVIDIA_TF32_OVERRIDE": "0", "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
              "CUDA_VISIBLE_DEVICES": "1", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE": "1"}
    for name, value in wanted.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME_SECRET_TOKEN", "not recorded")
    env = environment.collect(["harness"])["env"]
    assert {name: env.get(name) for name in wanted} == wanted
    assert "HOME_SECRET_TOKEN" not in env
