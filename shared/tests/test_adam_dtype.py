"""check_adam_dtype: Adam / AdamW refuse float16 parameters with a TypeError naming them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.common import check_adam_dtype


def test_torch_adam_turns_a_float16_parameter_with_a_zero_gradient_into_nan() -> None:
    """The reason for the check: eps = 1e-8 is 0 in float16, so m / (sqrt(v) + eps) is 0 / 0."""
    p = nn.Parameter(torch.zeros(2, dtype=torch.float16))
    opt = torch.optim.Adam([p], foreach=False)
    p.grad = torch.tensor([0.0, 1.0], dtype=torch.float16)
    opt.step()
    assert torch.isnan(p[0])


def test_a_float16_parameter_is_named_with_the_argument_and_the_count() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)).half()
    with pytest.raises(
        TypeError, match=r"^net: Adam cannot train float16 .*'0\.weight' and 3 more"
    ):
        check_adam_dtype("net", model.named_parameters())
    model[0].requires_grad_(False)  # frozen float16 parameters are not stepped: only '1.*' named
    with pytest.raises(TypeError, match=r"'1\.weight' and 1 more\).*bfloat16"):
        check_adam_dtype("net", model.named_parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_wider_or_bfloat16_parameters_and_frozen_float16_ones_pass(dtype: torch.dtype) -> None:
    model = nn.Linear(2, 3).to(dtype)
    check_adam_dtype("model", model.named_parameters())
    frozen = nn.Linear(2, 3).half().requires_grad_(False)
    check_adam_dtype("model", frozen.named_parameters())
    check_adam_dtype("parameters", iter(()))  # nothing to train: nothing to refuse
