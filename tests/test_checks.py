"""Ready-made checks: a wrong or non-finite output fails with a message that says what is wrong."""

from __future__ import annotations

import math

import pytest
import torch

from harness.checks import close_to, relative_error

REFERENCE = torch.arange(8, dtype=torch.float32)


def failure(check: object, output: torch.Tensor) -> str:
    with pytest.raises(AssertionError) as info:
        check(output)  # type: ignore[operator]
    return str(info.value)


@pytest.mark.parametrize("make", [lambda: close_to(lambda: REFERENCE, 1e-5, 1e-6),
                                  lambda: relative_error(lambda: REFERENCE, 1e-3)])
def test_non_finite_outputs_are_named_not_reported_as_the_largest_float(make: object) -> None:
    out = REFERENCE.clone()
    out[1], out[2], out[5] = math.inf, math.inf, math.nan
    message = failure(make(), out)  # type: ignore[operator]
    assert message == "3 of 8 values are not finite (1 NaN, 2 +inf)"
    out = REFERENCE.clone()
    out[0] = -math.inf
    assert failure(make(), out) == "1 of 8 values are not finite (1 -inf)"  # type: ignore[operator]


def test_a_finite_difference_is_reported_as_it_is() -> None:
    check = close_to(lambda: REFERENCE, 1e-5, 1e-6)
    check(REFERENCE.clone())  # equal: passes
    message = failure(check, REFERENCE + torch.tensor([0, 0, 0.5, 0, 0, 0, 0, 0]))
    assert message.startswith("1 of 8 values off the reference (max abs diff 0.5;")


def test_a_nan_reference_makes_an_infinite_difference_not_the_largest_float() -> None:
    reference = REFERENCE.clone()
    reference[3] = math.nan
    message = failure(close_to(lambda: reference, 1e-5, 1e-6), REFERENCE.clone())
    assert message.startswith("1 of 8 values off the reference (max abs diff inf;")
