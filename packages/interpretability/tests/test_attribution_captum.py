"""Agreement with Captum (benchmark environment only: Captum is not a dependency).

Run in an environment with captum installed, e.g.::

    VIRTUAL_ENV=/tmp/interp-venv uv pip install captum
    /tmp/interp-venv/bin/python -m pytest packages/interpretability/tests/test_attribution_captum.py
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuronkit.interpretability import (
    grad_cam,
    input_x_gradient,
    integrated_gradients,
    occlusion,
    saliency,
    smoothgrad,
)

captum_attr = pytest.importorskip(
    "captum.attr", reason="captum is needed for the agreement tests (benchmark environment only)"
)

ATOL = 1e-5


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 4)
    )


def _cnn() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Softplus(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    )


CASES = [
    (_mlp, (7, 12), 4),
    (_cnn, (5, 1, 6, 6), 3),
]


@pytest.mark.parametrize(("factory", "shape", "n_classes"), CASES)
@pytest.mark.parametrize("use_abs", [True, False])
def test_saliency_matches_captum(factory, shape, n_classes, use_abs) -> None:
    model = factory()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    target = torch.arange(shape[0]) % n_classes
    ours = saliency(model, x, target, abs=use_abs)
    theirs = captum_attr.Saliency(model).attribute(x, target=target, abs=use_abs)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize(("factory", "shape", "n_classes"), CASES)
def test_input_x_gradient_matches_captum(factory, shape, n_classes) -> None:
    model = factory()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    ours = input_x_gradient(model, x, 1)
    theirs = captum_attr.InputXGradient(model).attribute(x, target=1)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize(("factory", "shape", "n_classes"), CASES)
@pytest.mark.parametrize(
    "method",
    ["gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"],
)
def test_integrated_gradients_matches_captum(factory, shape, n_classes, method) -> None:
    model = factory()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(shape, generator=gen)
    base = 0.1 * torch.randn(shape, generator=gen)
    target = [i % n_classes for i in range(shape[0])]
    ours, delta = integrated_gradients(
        model, x, target, baselines=base, n_steps=24, method=method, return_convergence_delta=True
    )
    ig = captum_attr.IntegratedGradients(model)
    theirs, their_delta = ig.attribute(
        x, baselines=base, target=target, n_steps=24, method=method, return_convergence_delta=True
    )
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    torch.testing.assert_close(delta, their_delta.to(delta.dtype), atol=ATOL, rtol=0)


def test_integrated_gradients_defaults_and_internal_batching_match_captum() -> None:
    model = _mlp()
    x = torch.randn(9, 12, generator=torch.Generator().manual_seed(5))
    ours = integrated_gradients(model, x, 2, internal_batch_size=40)
    theirs = captum_attr.IntegratedGradients(model).attribute(x, target=2)  # 50 steps, GL
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("samples_batch_size", [None, 3])
def test_smoothgrad_matches_noise_tunnel(kind, samples_batch_size) -> None:
    model = _mlp()
    x = torch.randn(6, 12, generator=torch.Generator().manual_seed(6))
    torch.manual_seed(123)
    theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
        x,
        target=3,
        nt_type=kind,
        nt_samples=7,
        stdevs=0.3,
        nt_samples_batch_size=samples_batch_size,
    )
    ours = smoothgrad(
        model,
        x,
        3,
        n_samples=7,
        stdev=0.3,
        kind=kind,
        samples_batch_size=samples_batch_size,
        seed=123,
    )
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_smoothgrad_of_integrated_gradients_matches_noise_tunnel() -> None:
    model = _mlp()
    x = torch.randn(4, 12, generator=torch.Generator().manual_seed(7))
    torch.manual_seed(9)
    theirs = captum_attr.NoiseTunnel(captum_attr.IntegratedGradients(model)).attribute(
        x, target=0, nt_samples=3, stdevs=0.2, n_steps=10
    )
    ours = smoothgrad(
        model, x, 0, method="integrated_gradients", n_samples=3, stdev=0.2, seed=9, n_steps=10
    )
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["smoothgrad", "vargrad"])
def test_smoothgrad_of_a_float64_model_matches_noise_tunnel(kind) -> None:
    model = _mlp().double()  # Captum draws float32 noise whatever the input's dtype
    x = torch.randn(6, 12, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    torch.manual_seed(5)
    theirs = captum_attr.NoiseTunnel(captum_attr.Saliency(model)).attribute(
        x, target=1, nt_type=kind, nt_samples=5, stdevs=0.2
    )
    ours = smoothgrad(model, x, 1, n_samples=5, stdev=0.2, kind=kind, seed=5)
    torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=0)


def _conv_net() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(inplace=True),  # writes over the first layer's output
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )


@pytest.mark.parametrize("layer", ["0", "2", "5"])
@pytest.mark.parametrize(
    ("ours_kw", "theirs_kw"),
    [
        ({}, {}),
        ({"relu": True}, {"relu_attributions": True}),
        ({"sum_channels": False}, {"attr_dim_summation": False}),
        ({"layer_input": True}, {"attribute_to_layer_input": True}),
    ],
)
def test_grad_cam_matches_layer_grad_cam(layer, ours_kw, theirs_kw) -> None:
    model = _conv_net()
    x = torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(8))
    target = torch.tensor([0, 3, 1, 4])
    theirs = captum_attr.LayerGradCam(model, model[int(layer)]).attribute(
        x, target=target, **theirs_kw
    )
    ours = grad_cam(model, x, layer, target, **ours_kw)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def test_grad_cam_upsampled_matches_layer_attribution_interpolate() -> None:
    model = _conv_net()
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(9))
    cam = captum_attr.LayerGradCam(model, model[5]).attribute(x, target=2)
    theirs = captum_attr.LayerAttribution.interpolate(cam, (12, 12), "bilinear")
    torch.testing.assert_close(
        grad_cam(model, x, model[5], 2, upsample="bilinear"), theirs, atol=ATOL, rtol=0
    )


@pytest.mark.parametrize(
    ("window", "strides", "baselines"),
    [
        ((3, 3, 3), 1, 0.0),
        ((1, 4, 4), (1, 3, 2), 0.5),  # windows cut at the border
        ((3, 12, 11), 1, 0.0),  # one window: the whole input
        ((2, 5, 3), (1, 2, 3), "image"),
    ],
)
def test_occlusion_matches_captum(window, strides, baselines) -> None:
    model = _conv_net()
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(3, 3, 12, 11, generator=gen)
    if baselines == "image":
        baselines = torch.randn(3, 12, 11, generator=gen)
    target = torch.tensor([4, 0, 2])
    theirs = captum_attr.Occlusion(model).attribute(
        x, sliding_window_shapes=window, strides=strides, baselines=baselines, target=target
    )
    ours = occlusion(model, x, window, target, strides=strides, baselines=baselines, batch_size=7)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize("sign", ["absolute_value", "all", "positive", "negative"])
@pytest.mark.parametrize("outlier_perc", [0, 2, 30])
def test_attribution_map_draws_captums_heat_map(sign, outlier_perc) -> None:
    from captum.attr import visualization

    from neuronkit.interpretability.plot import attribution_map

    gen = torch.Generator().manual_seed(11)
    attr = torch.randn(2, 3, 7, 6, generator=gen, dtype=torch.float64)
    image = torch.rand(2, 3, 7, 6, generator=gen, dtype=torch.float64)
    for method in ("heat_map", "blended_heat_map"):
        _, theirs = visualization.visualize_image_attr(
            attr[1].permute(1, 2, 0).numpy(),
            image[1].permute(1, 2, 0).numpy(),
            method=method,
            sign=sign,
            outlier_perc=outlier_perc,
            use_pyplot=False,
        )
        ours = attribution_map(
            attr, image, method=method, sign=sign, outlier_perc=outlier_perc, sample=1
        )
        heat, their_heat = ours.images[-1], theirs.images[-1]
        torch.testing.assert_close(
            torch.as_tensor(heat.get_array()), torch.as_tensor(their_heat.get_array())
        )
        assert heat.get_clim() == their_heat.get_clim()
        assert heat.get_cmap().name == their_heat.get_cmap().name


@pytest.mark.parametrize("method", ["guided_backprop", "deconvolution", "guided_grad_cam"])
def test_modified_relu_gradients_match_captum(method) -> None:
    from neuronkit.interpretability import deconvolution, guided_backprop, guided_grad_cam

    model = _conv_net()  # in-place and out-of-place ReLUs
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(12))
    target = torch.tensor([4, 0, 2])
    if method == "guided_grad_cam":
        ours = guided_grad_cam(model, x, "2", target)
        theirs = captum_attr.GuidedGradCam(model, model[2]).attribute(x, target=target)
    else:
        ours = {"guided_backprop": guided_backprop, "deconvolution": deconvolution}[method](
            model, x, target
        )
        cls = {"guided_backprop": "GuidedBackprop", "deconvolution": "Deconvolution"}[method]
        theirs = getattr(captum_attr, cls)(model).attribute(x, target=target)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("mask", "baselines"),
    [
        (None, 0.0),
        ("superpixels", 0.5),  # [1, 1, H, W]: 2 x 2 blocks shared by the channels
        ("per_example", 0.0),  # [B, C, H, W]
        (None, "image"),
    ],
)
def test_feature_ablation_matches_captum(mask, baselines) -> None:
    from neuronkit.interpretability import feature_ablation

    model = _conv_net()
    gen = torch.Generator().manual_seed(13)
    x = torch.randn(3, 3, 6, 6, generator=gen)
    if mask == "superpixels":
        mask = (torch.arange(6)[:, None] // 2 * 3 + torch.arange(6)[None, :] // 2).view(1, 1, 6, 6)
    elif mask == "per_example":
        mask = torch.randint(0, 9, (3, 3, 6, 6), generator=gen)
    if baselines == "image":
        baselines = torch.randn(3, 6, 6, generator=gen)
    target = torch.tensor([1, 4, 0])
    theirs = captum_attr.FeatureAblation(model).attribute(
        x, target=target, feature_mask=mask, baselines=baselines, perturbations_per_eval=4
    )
    ours = feature_ablation(model, x, target, feature_mask=mask, baselines=baselines, batch_size=10)
    assert ours.abs().sum() > 0
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def _deeplift_mlp(inplace: bool) -> nn.Module:
    """Every nonlinearity Captum's DeepLift has a Rescale rule for."""
    torch.manual_seed(4)
    return nn.Sequential(
        nn.Linear(10, 16),
        nn.ReLU(inplace),
        nn.Linear(16, 16),
        nn.Tanh(),
        nn.Linear(16, 16),
        nn.Sigmoid(),
        nn.Linear(16, 16),
        nn.ELU(inplace=inplace),
        nn.Linear(16, 16),
        nn.Softplus(),
        nn.Linear(16, 16),
        nn.LeakyReLU(0.1, inplace),
        nn.Linear(16, 4),
    ).double()


def _deeplift_cnn() -> nn.Module:
    """Max pools right after convolutions (Captum skips a pool's rule when the pool follows
    another rule module: see neuronkit.interpretability.deeplift)."""
    torch.manual_seed(5)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 6),
        nn.ReLU(),
        nn.Linear(6, 3),
    ).double()


@pytest.mark.parametrize("baselines", ["zero", "shared", "per_example"])
@pytest.mark.parametrize("kind", ["mlp", "mlp_inplace", "cnn"])
def test_deeplift_matches_captum(kind, baselines) -> None:
    from neuronkit.interpretability import deeplift

    model = _deeplift_cnn() if kind == "cnn" else _deeplift_mlp(kind == "mlp_inplace")
    shape = (4, 2, 8, 8) if kind == "cnn" else (4, 10)
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    base = {
        "zero": None,
        "shared": torch.randn(shape[1:], generator=gen, dtype=torch.float64),
        "per_example": torch.randn(shape, generator=gen, dtype=torch.float64),
    }[baselines]
    target = torch.tensor([0, 1, 2, 1])
    theirs_base = base.expand(shape) if baselines == "shared" else base
    theirs, theirs_delta = captum_attr.DeepLift(model).attribute(
        x, baselines=theirs_base, target=target, return_convergence_delta=True
    )
    ours, delta = deeplift(model, x, target, baselines=base, return_convergence_delta=True)
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(delta, theirs_delta.detach(), rtol=0, atol=1e-12)


def test_deeplift_shap_matches_captum() -> None:
    from neuronkit.interpretability import deeplift_shap

    model = _deeplift_mlp(False)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, 10, generator=gen, dtype=torch.float64)
    refs = torch.randn(5, 10, generator=gen, dtype=torch.float64)
    theirs, theirs_delta = captum_attr.DeepLiftShap(model).attribute(
        x, baselines=refs, target=2, return_convergence_delta=True
    )
    ours, delta = deeplift_shap(model, x, refs, 2, return_convergence_delta=True)
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(delta, theirs_delta.detach(), rtol=0, atol=1e-12)


def test_gradient_shap_matches_captum_where_the_draws_do_not_matter() -> None:
    """Captum draws its points and baselines from numpy's global generator, ours from torch:
    with one baseline, no noise and a linear model every draw gives the same attribution."""
    from neuronkit.interpretability import gradient_shap

    torch.manual_seed(8)
    model = nn.Linear(6, 3).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    base = torch.randn(1, 6, dtype=torch.float64)
    theirs = captum_attr.GradientShap(model).attribute(x, baselines=base, target=2)
    torch.testing.assert_close(gradient_shap(model, x, base, 2, seed=0), theirs.detach())


@pytest.mark.parametrize(("layer", "layer_input"), [("1", False), ("3", True)])
def test_layer_gradient_shap_matches_captum_where_the_draws_do_not_matter(
    layer, layer_input
) -> None:
    """One baseline, no noise and a layer read linearly (a ReLU's output, the last Linear's
    input): every point on the path has the same gradient at the layer."""
    from neuronkit.interpretability import layer_gradient_shap

    torch.manual_seed(8)
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4)).double()
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    base = torch.randn(1, 2, 4, 4, dtype=torch.float64)
    module = dict(model.named_modules())[layer]
    theirs = captum_attr.LayerGradientShap(model, module).attribute(
        x, baselines=base, target=1, attribute_to_layer_input=layer_input
    )
    ours = layer_gradient_shap(model, x, layer, base, 1, layer_input=layer_input, seed=0)
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-12, atol=1e-14)


class _LrpNet(nn.Module):
    """Every layer type Captum's LRP has a rule for (it flattens in forward: Captum has no rule
    for nn.Flatten)."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        torch.manual_seed(9)
        self.c1, self.bn = nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.r1, self.p = nn.ReLU(inplace), nn.MaxPool2d(2)
        self.c2, self.r2, self.ap = nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2)
        self.f, self.t, self.d, self.o = (
            nn.Linear(32, 16),
            nn.Tanh(),
            nn.Dropout(),
            nn.Linear(16, 4),
        )
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.3, 0.3)
            self.bn.running_var.uniform_(0.5, 1.5)
            self.bn.weight.uniform_(0.5, 1.5)
        self.double().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ap(self.r2(self.c2(self.p(self.r1(self.bn(self.c1(x)))))))
        return self.o(self.d(self.t(self.f(x.reshape(x.shape[0], -1)))))


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("setting", ["epsilon", "epsilons", "gamma", "alpha1_beta0", "identity"])
def test_lrp_matches_captum(setting, inplace) -> None:
    from captum.attr._utils import lrp_rules

    from neuronkit.interpretability import (
        Alpha1Beta0Rule,
        EpsilonRule,
        GammaRule,
        IdentityRule,
        lrp,
    )

    ours, theirs = {
        "epsilon": ({}, {}),
        "epsilons": (
            {"f": EpsilonRule(0.1), "c2": EpsilonRule(0.01)},
            {"f": lrp_rules.EpsilonRule(0.1), "c2": lrp_rules.EpsilonRule(0.01)},
        ),
        "gamma": (
            {"c1": GammaRule(0.25), "c2": GammaRule(0.1, set_bias_to_zero=True)},
            {"c1": lrp_rules.GammaRule(0.25), "c2": lrp_rules.GammaRule(0.1, True)},
        ),
        "alpha1_beta0": (
            {"c1": Alpha1Beta0Rule(), "f": Alpha1Beta0Rule(set_bias_to_zero=True)},
            {"c1": lrp_rules.Alpha1_Beta0_Rule(), "f": lrp_rules.Alpha1_Beta0_Rule(True)},
        ),
        "identity": ({"bn": IdentityRule()}, {"bn": lrp_rules.IdentityRule()}),
    }[setting]
    model, twin = _LrpNet(inplace), _LrpNet(inplace)
    for name, rule in theirs.items():
        getattr(twin, name).rule = rule
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    target = torch.tensor([0, 1, 3])
    expected, expected_delta = captum_attr.LRP(twin).attribute(
        x, target=target, return_convergence_delta=True
    )
    got, delta = lrp(model, x, target, rules=ours, return_convergence_delta=True)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(delta, expected_delta.detach(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("setting", ["epsilon", "gamma", "alpha1_beta0"])
@pytest.mark.parametrize(
    ("layer", "layer_input"),
    [("c1", False), ("c1", True), ("bn", False), ("c2", True), ("p", False), ("f", False)],
)
def test_layer_lrp_matches_captum(setting, layer, layer_input) -> None:
    """At convolutions, batch norm, a pool and a linear layer, outputs and inputs, with rules
    that rerun layers on other weights (gamma, alpha1-beta0) and without."""
    from captum.attr._utils import lrp_rules

    from neuronkit.interpretability import Alpha1Beta0Rule, GammaRule, layer_lrp

    ours, theirs = {
        "epsilon": ({}, {}),
        "gamma": ({"c1": GammaRule(0.25)}, {"c1": lrp_rules.GammaRule(0.25)}),
        "alpha1_beta0": (
            {"c2": Alpha1Beta0Rule(), "f": Alpha1Beta0Rule()},
            {"c2": lrp_rules.Alpha1_Beta0_Rule(), "f": lrp_rules.Alpha1_Beta0_Rule()},
        ),
    }[setting]
    model, twin = _LrpNet(False), _LrpNet(False)
    for name, rule in theirs.items():
        getattr(twin, name).rule = rule
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    target = torch.tensor([0, 1, 3])
    expected, expected_delta = captum_attr.LayerLRP(twin, getattr(twin, layer)).attribute(
        x, target=target, attribute_to_layer_input=layer_input, return_convergence_delta=True
    )
    got, delta = layer_lrp(
        model, x, layer, target, rules=ours, layer_input=layer_input, return_convergence_delta=True
    )
    torch.testing.assert_close(got, expected.detach(), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(delta, expected_delta.detach(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("grouped", [False, True])
def test_shapley_values_match_captum(grouped) -> None:
    from neuronkit.interpretability import shapley_value_sampling, shapley_values

    torch.manual_seed(11)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3)).eval()
    x, target = torch.randn(4, 6), torch.tensor([0, 1, 2, 0])
    base = torch.randn(1, 6)
    mask = torch.tensor([[0, 0, 1, 1, 2, 2]]) if grouped else None
    torch.manual_seed(12)
    theirs = captum_attr.ShapleyValueSampling(model).attribute(
        x, baselines=base, target=target, feature_mask=mask, n_samples=7
    )
    torch.manual_seed(12)  # the same orders: both draw them with torch.randperm in turn
    ours = shapley_value_sampling(model, x, target, feature_mask=mask, baselines=base, n_samples=7)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=ATOL)
    theirs = captum_attr.ShapleyValues(model).attribute(
        x, baselines=base, target=target, feature_mask=mask
    )
    ours = shapley_values(model, x, target, feature_mask=mask, baselines=base)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=ATOL)


class _TextModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(13)
        self.emb, self.hidden, self.out = nn.Embedding(20, 8), nn.Linear(8, 8), nn.Linear(8, 3)
        self.double().eval()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.hidden(self.emb(ids))).mean(1))


@pytest.mark.parametrize(
    ("layer", "kwargs"),
    [
        ("emb", {}),
        ("hidden", {"n_steps": 20, "method": "riemann_trapezoid", "internal_batch_size": 8}),
        ("hidden", {"layer_input": True, "n_steps": 7, "method": "riemann_left"}),
    ],
)
def test_layer_integrated_gradients_matches_captum(layer, kwargs) -> None:
    from neuronkit.interpretability import layer_integrated_gradients

    model = _TextModel()
    ids = torch.randint(1, 20, (4, 6), generator=torch.Generator().manual_seed(14))
    pad, target = torch.zeros_like(ids), torch.tensor([0, 1, 2, 0])
    theirs_kwargs = dict(kwargs)
    if theirs_kwargs.pop("layer_input", False):
        theirs_kwargs["attribute_to_layer_input"] = True
    theirs, theirs_delta = captum_attr.LayerIntegratedGradients(
        model, getattr(model, layer)
    ).attribute(ids, baselines=pad, target=target, return_convergence_delta=True, **theirs_kwargs)
    ours, delta = layer_integrated_gradients(
        model, ids, layer, target, baselines=pad, return_convergence_delta=True, **kwargs
    )
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(delta, theirs_delta.detach(), rtol=1e-6, atol=1e-12)


def test_kernel_shap_matches_captum_on_a_linear_model() -> None:
    """Both draw coalitions from the Shapley kernel, from different generators: on a linear
    model every fit with enough coalitions gives the same coefficients."""
    from neuronkit.interpretability import kernel_shap

    torch.manual_seed(15)
    model = nn.Linear(6, 3)
    x, base, target = torch.randn(4, 6), torch.randn(1, 6), torch.tensor([0, 1, 2, 0])
    theirs = captum_attr.KernelShap(model).attribute(
        x, baselines=base, target=target, n_samples=100
    )
    ours = kernel_shap(model, x, target, baselines=base, n_samples=100, seed=0)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=ATOL)


@pytest.mark.parametrize("setting", ["default", "baseline", "groups"])
def test_lime_matches_captum_example_by_example(setting) -> None:
    """One example per call: Captum draws each example's coins in turn, as neuronkit does, but
    between examples its fit also draws from the global generator (a DataLoader seed, an
    nn.Linear initialization), so later examples of a batch see other coins."""
    from neuronkit.interpretability import lime

    torch.manual_seed(16)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3)).eval()
    x = torch.randn(1, 6)
    kwargs = {
        "default": {},
        "baseline": {"baselines": torch.randn(1, 6) * 0.3},
        "groups": {"feature_mask": torch.tensor([[0, 0, 1, 1, 2, 2]])},
    }[setting]
    torch.manual_seed(17)
    theirs = captum_attr.Lime(model).attribute(x, target=1, n_samples=40, **kwargs)
    torch.manual_seed(17)  # the same coins: torch's global generator, as Captum
    ours = lime(model, x, 1, n_samples=40, **kwargs)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layer_input", [False, True])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"n_steps": 20, "method": "riemann_trapezoid"}, {"n_steps": 7, "method": "riemann_left"}],
)
def test_layer_conductance_matches_captum(kwargs, layer_input) -> None:
    from neuronkit.interpretability import layer_conductance

    torch.manual_seed(18)
    model = nn.Sequential(
        nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3)
    ).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    base, target = torch.randn(1, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    theirs, theirs_delta = captum_attr.LayerConductance(model, model[2]).attribute(
        x,
        baselines=base.expand_as(x),
        target=target,
        attribute_to_layer_input=layer_input,
        return_convergence_delta=True,
        **kwargs,
    )
    ours, delta = layer_conductance(
        model,
        x,
        "2",
        target,
        baselines=base,
        layer_input=layer_input,
        return_convergence_delta=True,
        **kwargs,
    )
    torch.testing.assert_close(ours, theirs.detach(), rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(delta, theirs_delta.detach(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("grouped", [False, True])
def test_feature_permutation_matches_captum(grouped) -> None:
    """The same permutations: torch.randperm from the global generator, in feature order."""
    from neuronkit.interpretability import feature_permutation

    torch.manual_seed(19)
    model = nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 3)).double()
    x, target = torch.randn(5, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
    mask = torch.tensor([[0, 0, 1, 1, 2, 2]]) if grouped else None
    torch.manual_seed(20)
    theirs = captum_attr.FeaturePermutation(model).attribute(x, target=target, feature_mask=mask)
    torch.manual_seed(20)
    ours = feature_permutation(model, x, target, feature_mask=mask, batch_size=16)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_matches_captum(normalize) -> None:
    """Captum's default perturbation is the caller's: both get the same function."""
    from captum.metrics import infidelity as captum_infidelity

    from neuronkit.interpretability import infidelity

    torch.manual_seed(21)
    model = _cnn().double()
    x, target = torch.randn(4, 1, 6, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    attributions = saliency(model, x, target, abs=False)
    shifts = torch.randn(4 * 7, 1, 6, 6, dtype=torch.float64) * 0.1

    def perturb(rows):
        return shifts, rows - shifts

    theirs = captum_infidelity(
        model, perturb, x, attributions, target=target, n_perturb_samples=7, normalize=normalize
    )
    ours = infidelity(
        model, x, attributions, target, perturbation=perturb, n_samples=7, normalize=normalize
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-18)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_sensitivity_max_matches_captum(method) -> None:
    from captum.metrics import sensitivity_max as captum_sensitivity_max

    from neuronkit.interpretability import sensitivity_max

    torch.manual_seed(22)
    model = _cnn().double()
    x, target = torch.randn(3, 1, 6, 6, dtype=torch.float64), torch.tensor([0, 1, 2])
    shifts = (torch.rand(3 * 5, 1, 6, 6, dtype=torch.float64) - 0.5) * 0.1

    def perturb(rows):
        return rows + shifts

    if method == "saliency":
        theirs_fn, ours_fn, kwargs = captum_attr.Saliency(model).attribute, saliency, {}
    else:
        theirs_fn, ours_fn = captum_attr.IntegratedGradients(model).attribute, integrated_gradients
        kwargs = {"baselines": torch.rand(3, 1, 6, 6, dtype=torch.float64), "n_steps": 10}
    theirs = captum_sensitivity_max(
        theirs_fn, x, perturb_func=perturb, n_perturb_samples=5, target=target, **kwargs
    )
    ours = sensitivity_max(ours_fn, model, x, target, perturbation=perturb, n_samples=5, **kwargs)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


def _small_cnn(seed: int, pool: type[nn.Module] = nn.AvgPool2d, inplace: bool = False) -> nn.Module:
    """Average pooling by default: Captum's DeepLIFT skips its max-pool rule after a ReLU
    (see neuronkit.interpretability.deeplift), the other methods do not care."""
    torch.manual_seed(seed)
    return (
        nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1),
            nn.ReLU(),
            pool(2),
            nn.Conv2d(4, 6, 3, padding=1),
            nn.ReLU(inplace=inplace),
            nn.Flatten(),
            nn.Linear(6 * 4 * 4, 3),
        )
        .double()
        .eval()
    )


def _neuron_cnn() -> nn.Module:
    return _small_cnn(23)


NEURON_METHODS = {
    "NeuronGradient": ("saliency", {"abs": False}),
    "NeuronIntegratedGradients": ("integrated_gradients", {}),
    "NeuronDeepLift": ("deeplift", {}),
    "NeuronGuidedBackprop": ("guided_backprop", {}),
    "NeuronDeconvolution": ("deconvolution", {}),
    "NeuronFeatureAblation": ("feature_ablation", {}),
}


@pytest.mark.parametrize("captum_name", NEURON_METHODS)
@pytest.mark.parametrize(
    ("layer", "neuron"),
    [("3", (2, 1, 1)), ("4", (1, slice(0, 2), 2)), ("6", 1), ("3", lambda a: a[:, 0].sum((1, 2)))],
)
def test_input_methods_of_a_neuron_output_match_captums_neuron_methods(
    captum_name, layer, neuron
) -> None:
    import neuronkit.interpretability as nki

    model = _neuron_cnn()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    ours_name, kwargs = NEURON_METHODS[captum_name]
    ours = getattr(nki, ours_name)(nki.neuron_output(model, layer, neuron), x, **kwargs)
    cls = getattr(captum_attr, captum_name)
    theirs = cls(model, model[int(layer)]).attribute(x, neuron)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("layer_input", [False, True])
@pytest.mark.parametrize(
    ("layer", "neuron"), [("3", (2, 1, 1)), ("4", (1, slice(0, 2), 2)), ("6", 1)]
)
@pytest.mark.parametrize("kwargs", [{}, {"n_steps": 9, "method": "gausslegendre"}])
def test_neuron_conductance_matches_captum(layer, neuron, layer_input, kwargs) -> None:
    from neuronkit.interpretability import neuron_conductance

    model = _neuron_cnn()
    if layer_input and layer == "6":
        neuron = 5
    x, base = torch.randn(3, 1, 8, 8, dtype=torch.float64), torch.randn(1, 1, 8, 8).double()
    target = torch.tensor([0, 1, 2])
    theirs = captum_attr.NeuronConductance(model, model[int(layer)]).attribute(
        x,
        neuron,
        baselines=base.expand_as(x),
        target=target,
        attribute_to_neuron_input=layer_input,
        **kwargs,
    )
    ours = neuron_conductance(
        model, x, layer, neuron, target, baselines=base, layer_input=layer_input, **kwargs
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("layer_input", [False, True])
@pytest.mark.parametrize("layer", ["3", "6"])
def test_layer_gradient_x_activation_and_internal_influence_match_captum(
    layer, layer_input
) -> None:
    from neuronkit.interpretability import internal_influence, layer_gradient_x_activation

    model = _small_cnn(24, nn.MaxPool2d, inplace=True)
    x, target = torch.randn(3, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2])
    base = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    module = model[int(layer)]
    for multiply in (True, False):
        theirs = captum_attr.LayerGradientXActivation(
            model, module, multiply_by_inputs=multiply
        ).attribute(x, target, attribute_to_layer_input=layer_input)
        ours = layer_gradient_x_activation(
            model, x, layer, target, layer_input=layer_input, multiply_by_activations=multiply
        )
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)
    theirs = captum_attr.InternalInfluence(model, module).attribute(
        x, base.expand_as(x), target, n_steps=20, attribute_to_layer_input=layer_input
    )
    ours = internal_influence(
        model, x, layer, target, baselines=base, n_steps=20, layer_input=layer_input
    )
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("layer_input", [False, True])
@pytest.mark.parametrize("layer", ["3", "6"])
def test_layer_feature_ablation_matches_captum(layer, layer_input) -> None:
    from neuronkit.interpretability import layer_feature_ablation

    model = _small_cnn(25, nn.MaxPool2d, inplace=True)
    x, target = torch.randn(3, 1, 8, 8, dtype=torch.float64), torch.tensor([0, 1, 2])
    theirs = captum_attr.LayerFeatureAblation(model, model[int(layer)]).attribute(
        x, target=target, attribute_to_layer_input=layer_input
    )
    ours = layer_feature_ablation(model, x, layer, target, layer_input=layer_input)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)
    if layer == "3" and not layer_input:  # whole channels, a baseline, several per forward
        mask = torch.arange(6).view(1, 6, 1, 1)
        theirs = captum_attr.LayerFeatureAblation(model, model[3]).attribute(
            x, target=target, layer_mask=mask, layer_baselines=0.3
        )
        ours = layer_feature_ablation(
            model, x, "3", target, layer_mask=mask, layer_baselines=0.3, batch_size=7
        )
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


def test_layer_feature_permutation_matches_captum() -> None:
    """Captum's LayerFeaturePermutation selects the target twice, so it runs only without
    one: the model here returns one number per example."""
    from neuronkit.interpretability import layer_feature_permutation

    class Pick(nn.Module):
        def forward(self, out):
            return out[:, 1]

    torch.manual_seed(26)
    cnn = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3)
    ).double()
    model = nn.Sequential(cnn, Pick())
    x, mask = torch.randn(5, 1, 8, 8, dtype=torch.float64), torch.arange(4).view(1, 4, 1, 1)
    torch.manual_seed(27)
    theirs = captum_attr.LayerFeaturePermutation(model, cnn[1]).attribute(x, layer_mask=mask)
    torch.manual_seed(27)
    ours = layer_feature_permutation(model, x, "0.1", layer_mask=mask)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-14)


class _IdTokenizer:
    """Text of space-separated token ids: what Captum's TextTokenInput needs of a tokenizer."""

    def encode(self, text, return_tensors=None):
        return torch.tensor([[int(t) for t in text.split()]])

    def convert_ids_to_tokens(self, ids):
        return [str(i) for i in (ids if isinstance(ids, list) else [ids])]

    def convert_tokens_to_ids(self, tokens):
        return [int(t) for t in tokens]

    def decode(self, ids, **kwargs):
        return " ".join(str(int(i)) for i in (ids if hasattr(ids, "__len__") else [ids]))

    def __call__(self, text, return_offsets_mapping=True, add_special_tokens=True, **kwargs):
        ids, offsets, pos = [], [], 0
        for token in text.split():
            start = text.index(token, pos)
            ids.append(int(token))
            offsets.append((start, start + len(token)))
            pos = start + len(token)
        return {"input_ids": ids, "offset_mapping": offsets}


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [("FeatureAblation", {}), ("ShapleyValueSampling", {"n_samples": 4}), ("ShapleyValues", {})],
)
def test_llm_attribution_matches_captum_on_a_tiny_gpt2(method, kwargs) -> None:
    """Captum decodes the target token by token (``use_cached_outputs=False``: its default KV
    cache path, with transformers 5.24, gives other log-probabilities than the model's own
    uncached forward, 2e-3 apart here); neuronkit runs prompt + target in one teacher-forced
    pass: for a causal model the log-probabilities are the same."""
    transformers = pytest.importorskip("transformers")
    from neuronkit.interpretability import llm_attribution

    config = transformers.GPT2Config(vocab_size=20, n_embd=16, n_layer=1, n_head=2, n_positions=32)
    torch.manual_seed(28)
    model = transformers.GPT2LMHeadModel(config).eval()
    prompt, target, tokenizer = "1 5 7 3 9 2", torch.tensor([4, 8, 6]), _IdTokenizer()
    llm = captum_attr.LLMAttribution(getattr(captum_attr, method)(model), tokenizer)
    torch.manual_seed(29)
    theirs = llm.attribute(
        captum_attr.TextTokenInput(prompt, tokenizer, skip_tokens=[1]),
        target=target,
        use_cached_outputs=False,
        **kwargs,
    )
    name = {"FeatureAblation": "feature_ablation", "ShapleyValueSampling": "shapley_value_sampling"}
    torch.manual_seed(29)
    ours = llm_attribution(
        model,
        tokenizer.encode(prompt),
        target,
        method=name.get(method, "shapley_values"),
        skip_tokens=[1],
        **kwargs,
    )
    # Captum's log-softmax is float32, neuronkit's float64 (of the same float32 logits)
    torch.testing.assert_close(ours.seq_attr.float(), theirs.seq_attr, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours.token_attr.float(), theirs.token_attr, rtol=0, atol=1e-5)


def test_llm_gradient_attribution_matches_captum_on_a_tiny_gpt2() -> None:
    transformers = pytest.importorskip("transformers")
    from neuronkit.interpretability import llm_gradient_attribution

    config = transformers.GPT2Config(vocab_size=20, n_embd=16, n_layer=1, n_head=2, n_positions=32)
    torch.manual_seed(30)
    model = transformers.GPT2LMHeadModel(config).eval()
    prompt, target, tokenizer = "1 5 7 3 9 2", torch.tensor([4, 8, 6]), _IdTokenizer()
    lig = captum_attr.LayerIntegratedGradients(model, model.transformer.wte)
    theirs = captum_attr.LLMGradientAttribution(lig, tokenizer).attribute(
        captum_attr.TextTokenInput(prompt, tokenizer, skip_tokens=[1]), target=target
    )
    ours = llm_gradient_attribution(model, tokenizer.encode(prompt), target, skip_tokens=[1])
    torch.testing.assert_close(ours.token_attr, theirs.token_attr, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours.seq_attr, theirs.seq_attr, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("layer", "layer_input"),
    [("0", False), ("3", False), ("4", False), ("6", False), ("0", True), ("3", True), ("6", True)],
)
def test_layer_deeplift_matches_captum(layer, layer_input) -> None:
    """At a rule module's input (the ReLU "4" with layer_input=True) Captum leaves that
    module's rule out (its convergence delta 0.012 on this model, neuronkit's 1e-17), and
    after a max pool that follows a ReLU it leaves the pool's (see deeplift): average pooling
    here."""
    from neuronkit.interpretability import layer_deeplift

    model = _neuron_cnn()
    x, base = torch.randn(3, 1, 8, 8, dtype=torch.float64), torch.randn(1, 1, 8, 8).double()
    target = torch.tensor([0, 1, 2])
    theirs = captum_attr.LayerDeepLift(model, model[int(layer)]).attribute(
        x, base.expand_as(x), target=target, attribute_to_layer_input=layer_input
    )
    ours = layer_deeplift(model, x, layer, target, baselines=base, layer_input=layer_input)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


def test_layer_and_neuron_deeplift_shap_match_captum() -> None:
    from neuronkit.interpretability import deeplift_shap, layer_deeplift_shap, neuron_output

    model = _neuron_cnn()
    x, refs = torch.randn(3, 1, 8, 8).double(), torch.randn(4, 1, 8, 8).double()
    target = torch.tensor([0, 1, 2])
    for layer, layer_input in (("3", False), ("6", True)):
        theirs = captum_attr.LayerDeepLiftShap(model, model[int(layer)]).attribute(
            x, refs, target=target, attribute_to_layer_input=layer_input
        )
        ours = layer_deeplift_shap(model, x, layer, refs, target, layer_input=layer_input)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)
    theirs = captum_attr.NeuronDeepLiftShap(model, model[3]).attribute(x, (2, 1, 1), refs)
    ours = deeplift_shap(neuron_output(model, "3", (2, 1, 1)), x, refs)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("layers", [None, ["2"]])
def test_tracin_matches_captum(tmp_path, layers) -> None:
    """TracInCP on checkpoint files with their learning rates, every parameter or the last
    layer's: influence and self-influence."""
    from captum.influence import TracInCP
    from torch.utils.data import TensorDataset

    from neuronkit.interpretability import tracin_influence, tracin_self_influence

    gen = torch.Generator().manual_seed(20)
    x = torch.randn(10, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (10,), generator=gen)
    x_test = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    y_test = torch.randint(0, 3, (4,), generator=gen)
    paths, rates = [], [0.3, 0.05]
    for seed in (21, 22):
        torch.manual_seed(seed)
        paths.append(str(tmp_path / f"{seed}.pt"))
        net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
        torch.save({"state": net.state_dict(), "lr": rates[len(paths) - 1]}, paths[-1])

    def load(model: nn.Module, path: str) -> float:
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["state"])
        return float(saved["lr"])

    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    theirs = TracInCP(
        model,
        TensorDataset(x, y),
        paths,
        checkpoints_load_func=load,
        layers=layers,
        loss_fn=nn.CrossEntropyLoss(reduction="none"),
        batch_size=4,
    )
    expected = theirs.influence((x_test, y_test))
    expected_self = theirs.self_influence()
    states = [torch.load(p, weights_only=True)["state"] for p in paths]
    ours = tracin_influence(
        model, states, (x, y), (x_test, y_test), learning_rates=rates, layers=layers
    )
    ours_self = tracin_self_influence(model, states, (x, y), learning_rates=rates, layers=layers)
    torch.testing.assert_close(ours, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(ours_self, expected_self, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("metric", "direction"), [("cosine", "max"), ("euclidean", "min"), ("dot", "max")]
)
def test_similarity_influence_matches_captum(tmp_path, metric, direction) -> None:
    from captum.influence import SimilarityInfluence
    from captum.influence._core.similarity_influence import cosine_similarity, euclidean_distance
    from torch.utils.data import TensorDataset

    from neuronkit.interpretability import similarity_influence

    gen = torch.Generator().manual_seed(25)
    x, x_test = torch.randn(30, 5, generator=gen), torch.randn(4, 5, generator=gen)
    torch.manual_seed(26)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    captum_metric = {"cosine": cosine_similarity, "euclidean": euclidean_distance}.get(
        metric, lambda a, b: a.flatten(1) @ b.flatten(1).T
    )
    theirs = SimilarityInfluence(
        model,
        ["0", "2"],
        TensorDataset(x),
        str(tmp_path),
        similarity_metric=captum_metric,
        similarity_direction=direction,
        batch_size=8,
    ).influence(x_test, top_k=5)
    ours = similarity_influence(model, x, x_test, ["0", "2"], metric=metric, top_k=5)
    for layer in ("0", "2"):
        indices, values = theirs[layer]
        torch.testing.assert_close(ours[layer][0], values, rtol=1e-5, atol=1e-6)
        assert torch.equal(ours[layer][1], indices)


def test_last_layer_tracin_matches_captum_tracincp_fast(tmp_path) -> None:
    """Captum's TracInCPFast takes the last layer's weight gradient as ``g a^T`` and leaves
    its bias out: the same as neuronkit's last-layer TracIn on a layer without a bias."""
    from captum.influence import TracInCPFast
    from torch.utils.data import TensorDataset

    from neuronkit.interpretability import tracin_influence, tracin_self_influence

    gen = torch.Generator().manual_seed(23)
    x, y = torch.randn(9, 5, generator=gen).double(), torch.randint(0, 3, (9,), generator=gen)
    x_test, y_test = torch.randn(4, 5, generator=gen).double(), torch.tensor([0, 2, 1, 1])
    torch.manual_seed(24)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3, bias=False)).double()
    path = str(tmp_path / "ckpt.pt")
    torch.save(model.state_dict(), path)

    def load(module: nn.Module, file: str) -> float:  # the learning rate: 1
        module.load_state_dict(torch.load(file, weights_only=True))
        return 1.0

    theirs = TracInCPFast(
        model,
        model[2],
        TensorDataset(x, y),
        [path],
        checkpoints_load_func=load,
        loss_fn=nn.CrossEntropyLoss(reduction="sum"),
        batch_size=4,
    )
    states = [model.state_dict()]
    ours = tracin_influence(model, states, (x, y), (x_test, y_test), layers=["2"])
    torch.testing.assert_close(ours, theirs.influence((x_test, y_test)), rtol=1e-10, atol=1e-12)
    ours_self = tracin_self_influence(model, states, (x, y), layers=["2"])
    torch.testing.assert_close(ours_self, theirs.self_influence(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("method", "layers", "rank"),
    [
        ("exact", None, None),
        ("exact", ["2"], None),
        ("exact", ["2"], 5),
        ("arnoldi", None, 10),
        ("arnoldi", ["2"], 10),
    ],
)
def test_hessian_influence_matches_captum(tmp_path, method, layers, rank) -> None:
    """Captum's NaiveInfluenceFunction (every direction, a projection as large as the
    parameters, or the 5 of largest curvature) and ArnoldiInfluenceFunction (its defaults for
    damping and tol, 30 Krylov steps, 10 directions, the same start vector from the same
    seed): influence and self-influence."""
    from captum.influence import NaiveInfluenceFunction
    from captum.influence._core.arnoldi_influence_function import ArnoldiInfluenceFunction
    from torch.utils.data import TensorDataset

    from neuronkit.interpretability import hessian_influence, hessian_self_influence

    gen = torch.Generator().manual_seed(20)
    x = torch.randn(12, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=gen)
    x_test = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    y_test = torch.randint(0, 3, (4,), generator=gen)
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    torch.save(model.state_dict(), tmp_path / "model.pt")

    def load(net: nn.Module, path: str) -> float:
        net.load_state_dict(torch.load(path, weights_only=True))
        return 1.0

    common = {"checkpoints_load_func": load, "layers": layers, "batch_size": 5}
    common["loss_fn"] = nn.CrossEntropyLoss(reduction="none")
    settings: dict = {"layers": layers, "rank": rank, "batch_size": 5}
    if method == "exact":
        cls, extra, tolerance = NaiveInfluenceFunction, {"projection_dim": rank or 10_000}, 1e-9
    else:
        cls, extra, tolerance = ArnoldiInfluenceFunction, {"projection_dim": rank}, 1e-8
        extra["arnoldi_dim"] = 30
        settings |= {"damping": 1e-3, "tol": 1e-4, "method": "arnoldi", "arnoldi_dim": 30}
    theirs = cls(model, TensorDataset(x, y), str(tmp_path / "model.pt"), **common, **extra)
    atol = 1e-11 if method == "exact" else 1e-9
    ours = hessian_influence(model, (x, y), (x_test, y_test), **settings)
    expected = theirs.influence((x_test, y_test))
    torch.testing.assert_close(ours, expected, rtol=tolerance, atol=atol)
    own = hessian_self_influence(model, (x, y), **settings)
    torch.testing.assert_close(own, theirs.self_influence(), rtol=tolerance, atol=atol)
