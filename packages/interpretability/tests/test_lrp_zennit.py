"""Agreement of LRP with zennit (benchmark environment only: zennit is not a dependency).

zennit handles a ResNet's skip connections with a canonizer that routes each sum through a
module whose rule splits relevance by contribution; neuronkit's backward pass does that for
any sum. Batch norms are folded into the convolutions here first: zennit's own merge leaves
each batch norm dividing by ``sqrt(1 + eps)`` (running variance 1), a 5e-6 change per layer.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    AlphaBetaRule,
    EpsilonRule,
    FlatRule,
    WSquareRule,
    ZBoxRule,
    lrp,
)

pytest.importorskip("zennit", reason="zennit is needed for the agreement tests (benchmark only)")
resnet = pytest.importorskip("torchvision.models.resnet", reason="torchvision builds the ResNet")

from zennit.attribution import Gradient  # noqa: E402
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite  # noqa: E402
from zennit.core import BasicHook, stabilize  # noqa: E402
from zennit.layer import Sum  # noqa: E402
from zennit.rules import AlphaBeta, Epsilon, Flat, NoMod, Pass, WSquare, ZBox  # noqa: E402
from zennit.torchvision import ResNetCanonizer  # noqa: E402
from zennit.types import Activation, AvgPool, Convolution  # noqa: E402

EPS = 1e-12


def _norm() -> BasicHook:
    """zennit's ``Norm`` rule (epsilon rule of a parameter-free layer) with ``EPS``."""
    return BasicHook(
        input_modifiers=[lambda a: a],
        param_modifiers=[NoMod(param_keys=[])],
        output_modifiers=[lambda z: z],
        gradient_mapper=lambda grad, outputs: grad / stabilize(outputs[0], EPS),
        reducer=lambda inputs, grads: inputs[0] * grads[0],
    )


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Identity:
    with torch.no_grad():
        scale = bn.weight / (bn.running_var + bn.eps).sqrt()
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        conv.bias = nn.Parameter(bn.bias - scale * bn.running_mean)
    return nn.Identity()


def _resnet() -> nn.Module:
    """torchvision's ResNet with one basic block per stage (three with downsampling
    shortcuts) and random batch-norm statistics, folded into its convolutions."""
    torch.manual_seed(0)
    model = resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1], num_classes=10)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            with torch.no_grad():
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    model.bn1 = _fold(model.conv1, model.bn1)
    for block in model.modules():
        if isinstance(block, resnet.BasicBlock):
            block.bn1 = _fold(block.conv1, block.bn1)
            block.bn2 = _fold(block.conv2, block.bn2)
            if block.downsample is not None:
                block.downsample[1] = _fold(block.downsample[0], block.downsample[1])
    return model.double().eval()


def _zennit(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    first: object = None,
    convolutions: object = None,
) -> torch.Tensor:
    """zennit's LRP with the epsilon rule (``EPS``) everywhere (``convolutions``: that rule on
    the convolutions), its ResNet canonizer, and the relevance at the top set to the target
    logit (neuronkit's and Captum's convention)."""
    layer_map = [
        (Activation, Pass()),
        (Sum, _norm()),
        (AvgPool, _norm()),
        (Convolution, Epsilon(EPS) if convolutions is None else convolutions),
        (nn.Linear, Epsilon(EPS)),
    ]
    composite = (
        LayerMapComposite(layer_map=layer_map, canonizers=[ResNetCanonizer()])
        if first is None
        else SpecialFirstLayerMapComposite(
            layer_map=layer_map, first_map=[(Convolution, first)], canonizers=[ResNetCanonizer()]
        )
    )
    with torch.no_grad():
        logit = model(x)[:, target]
    grad = torch.zeros(len(x), 10, dtype=x.dtype)
    grad[:, target] = logit
    with Gradient(model=copy.deepcopy(model), composite=composite) as attributor:
        _, relevance = attributor(x, grad)
    return relevance


RULES = {t: EpsilonRule(EPS) for t in (nn.Conv2d, nn.Linear, nn.MaxPool2d, nn.AdaptiveAvgPool2d)}


def test_lrp_of_a_resnet_matches_zennit_with_its_resnet_canonizer() -> None:
    model = _resnet()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = lrp(model, x, 3, rules=RULES)
    theirs = _zennit(model, x, 3)
    assert (ours - theirs).abs().max() <= 1e-8 * ours.abs().max()  # 4e-10 here


def test_z_box_matches_zennit() -> None:
    """zennit's ``ZBox`` stabilizes its denominator with 1e-6 (neuronkit: 1e-9)."""
    model = _resnet()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    ours = lrp(model, x, 3, rules={**RULES, "conv1": ZBoxRule(0.0, 1.0)})
    theirs = _zennit(model, x, 3, first=ZBox(0.0, 1.0))
    assert (ours - theirs).abs().max() <= 1e-5 * ours.abs().max()  # 1.2e-6 here


@pytest.mark.parametrize("flat", [False, True])
def test_w_square_and_flat_rules_match_zennit(flat) -> None:
    """zennit's ``WSquare`` squares the bias too unless told not to; both stabilized with
    1e-9 here (zennit's default is 1e-6)."""
    model = _resnet()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    rule = FlatRule() if flat else WSquareRule()
    ours = lrp(model, x, 3, rules={**RULES, "conv1": rule})
    first = Flat(stabilizer=1e-9) if flat else WSquare(stabilizer=1e-9, zero_params=["bias"])
    theirs = _zennit(model, x, 3, first=first)
    assert (ours - theirs).abs().max() <= 1e-8 * ours.abs().max()


@pytest.mark.parametrize(("alpha", "beta"), [(2.0, 1.0), (1.0, 0.0)])
def test_alpha_beta_rule_matches_zennit(alpha, beta) -> None:
    """On every convolution, the first reading inputs of both signs; biases of both signs."""
    model = _resnet()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    ours = lrp(model, x, 3, rules={**RULES, nn.Conv2d: AlphaBetaRule(alpha, beta)})
    rule = AlphaBeta(alpha, beta, stabilizer=1e-9)
    theirs = _zennit(model, x, 3, first=rule, convolutions=rule)
    assert (ours - theirs).abs().max() <= 1e-8 * ours.abs().max()
