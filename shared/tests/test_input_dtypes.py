"""input_dtype_error / named_input_dtypes: torch's dtype-mismatch error of a model call
re-raised as a TypeError naming the caller's argument; nothing else changes."""

from __future__ import annotations

import pytest
import torch

from neuronkit.common import input_dtype_error, named_input_dtypes, parameter_dtype


def test_a_dtype_mismatch_names_the_input_floating_first() -> None:
    model = torch.nn.Linear(3, 2)
    x, ids = torch.rand(4, 3, dtype=torch.float64), torch.arange(3)
    pattern = (
        r"^x must have the model's parameter dtype torch.float32, got dtype torch.float64 "
        r"\(the model failed with: .*dtype"
    )
    with (
        pytest.raises(TypeError, match=pattern) as info,
        named_input_dtypes(model, ("ids", ids), ("x", x)),
    ):
        model(x)
    assert isinstance(info.value.__cause__, RuntimeError)
    ids_error = pytest.raises(TypeError, match=r"^ids must have .* got dtype torch.int64")
    with ids_error, named_input_dtypes(model, ("ids", ids)):
        model(ids)


def test_other_errors_pass_unchanged() -> None:
    model = torch.nn.Linear(3, 2)
    shape_error = pytest.raises(RuntimeError, match="shapes cannot be multiplied")
    with shape_error, named_input_dtypes(model, ("x", torch.rand(4, 5))):
        model(torch.rand(4, 5))
    x = torch.rand(4, 3, dtype=torch.float64)
    err = RuntimeError("mat1 and mat2 must have the same dtype")
    assert input_dtype_error(lambda t: t, err, [("x", x)]) is None  # no parameters to compare
    assert input_dtype_error(model, err, [("x", x.float())]) is None  # no input differs
    assert input_dtype_error(model, ValueError("same dtype"), [("x", x)]) is None


def test_parameter_dtype_is_the_first_floating_tensor() -> None:
    model = torch.nn.Sequential(torch.nn.Embedding(3, 2).double(), torch.nn.Linear(2, 2))
    assert parameter_dtype(model) == torch.float64
    counter = torch.nn.Module()
    counter.register_buffer("steps", torch.zeros((), dtype=torch.long))
    assert parameter_dtype(counter) is None
    assert parameter_dtype(lambda t: t) is None
