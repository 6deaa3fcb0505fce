"""Attribution, activation recording, attacks, feature visualization, codebooks and the
analysis methods (attribution evaluation, information, geometry, representations, fusion,
neuron descriptions, MDS clustering, facets) on every available device: results stay on the
model's device and equal the CPU's where the method is deterministic."""

import copy
import importlib.util
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.common.testing import devices
from neuronkit.interpretability import (
    GeoTopological,
    WideDeep,
    accuracy,
    compare_networks,
    compute_exemplars,
    deeplift,
    diffroar,
    discover_facets,
    fgsm_attack,
    gradient_shap,
    identification_accuracy,
    insert_codebooks,
    insert_hf_codebooks,
    integrated_gradients,
    kde_information,
    keep_mask,
    layer_activations,
    level_set_traversal,
    line_confidence,
    lrp,
    mask_inputs,
    maximize_activation,
    mds_clustering,
    mutual_information,
    pgd_attack,
    saliency,
    smoothgrad,
    track_information_plane,
    train_classifier,
    triangle_confidence,
    visualize_facets,
)
from neuronkit.interpretability.data.cell_types import on_off_population
from neuronkit.interpretability.data.twelve_bit import twelve_bit_task
from neuronkit.interpretability.description import (
    DescriptionLM,
    ExemplarCaptioner,
    ExemplarEncoder,
    HFCaptioner,
    HFLanguagePrior,
    Vocabulary,
    describe,
)
from neuronkit.interpretability.dynamics import binned_information
from neuronkit.interpretability.evaluators import PairwiseSample, hf_pipeline_judge
from neuronkit.interpretability.fusion import (
    LateFusionClassifier,
    StreamCNN,
    robustness_curves,
    train_head,
)
from neuronkit.interpretability.stimuli import optimize_stimuli
from neuronkit.interpretability.visualization import (
    CenterBias,
    TotalVariation,
    class_logit,
    standard_transforms,
)


@pytest.fixture(autouse=True)
def _full_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPU and CUDA results are compared: no TF32 in CUDA convolutions."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)
    ).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    return x, torch.arange(5) % 3


@pytest.mark.parametrize("device", devices())
def test_attributions_on_device_equal_the_cpu(device: str) -> None:
    model, (x, y) = _cnn(), _batch()
    on_device = _cnn().to(device)
    xd, yd = x.to(device), y.to(device)
    for method in (saliency, integrated_gradients, deeplift, lrp):
        ref, out = method(model, x, y), method(on_device, xd, yd)
        assert out.device.type == device
        assert out.shape == x.shape
        torch.testing.assert_close(out.cpu(), ref, rtol=1e-4, atol=1e-5)
    first = smoothgrad(on_device, xd, yd, n_samples=4, stdev=0.1, seed=3)
    again = smoothgrad(on_device, xd, yd, n_samples=4, stdev=0.1, seed=3)
    assert first.device.type == device
    assert torch.equal(first, again)
    refs = x[:2].to(device) * 0.5
    shap = gradient_shap(on_device, xd, refs, yd, stdev=0.1, seed=3)
    assert shap.device.type == device
    assert torch.equal(shap, gradient_shap(on_device, xd, refs, yd, stdev=0.1, seed=3))


@pytest.mark.parametrize("device", devices())
def test_layer_activations_and_attack_on_device(device: str) -> None:
    model, (x, y) = _cnn(), _batch()
    on_device = _cnn().to(device)
    ref = layer_activations(model, x, ["1", "3"])
    acts = layer_activations(on_device, x.to(device), ["1", "3"], batch_size=2)
    for name in ("1", "3"):
        torch.testing.assert_close(acts[name].cpu(), ref[name], rtol=1e-5, atol=1e-6)
    adv = pgd_attack(on_device, x.to(device), y.to(device), eps=0.05, n_steps=3, clamp=(0, 1))
    assert adv.device.type == device
    assert float((adv - x.to(device)).abs().max()) <= 0.05 + 1e-6


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_feature_visualization_on_device(device: str, param: str) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 10 * 10, 2))
    res = maximize_activation(
        model.to(device),
        class_logit(0),
        param=param,
        shape=(2, 3, 12, 12),
        transforms=standard_transforms(),
        regularizers=[TotalVariation(0.01), CenterBias(phases=2)],
        steps=20,
        lr=0.1,
        seed=0,
    )
    assert res.image.device.type == device
    assert res.image.shape == (2, 3, 12, 12)
    assert bool((res.activation > res.initial_activation).all())


class _Net(nn.Module):
    def __init__(self, d: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(5, d)
        self.mlp = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, d))
        self.head = nn.Linear(d, 5)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        return self.head(h + self.mlp(h))


@pytest.mark.parametrize("device", devices())
def test_codebooks_train_and_force_on_device(device: str) -> None:
    torch.manual_seed(0)
    cbm = insert_codebooks(_Net().to(device), ["mlp"], num_codes=8, groups=2).to(device)
    ids = torch.randint(0, 5, (3, 6), generator=torch.Generator().manual_seed(0)).to(device)
    cbm.initialize_codebooks(ids)
    logits = cbm(ids)
    loss = nn.functional.cross_entropy(logits.reshape(-1, 5), ids.reshape(-1))
    (loss + cbm.codebook_loss()).backward()
    layer = cbm.codebooks["mlp"]
    assert logits.device.type == device
    assert layer.codebook.grad is not None
    assert layer.counts.device.type == device
    assert int(layer.counts.sum()) > 0
    with torch.no_grad(), cbm.force_codes({"mlp": [[3], [5]]}, positions=[2]):
        forced = cbm(ids)
    assert forced.device.type == device
    assert layer.last_codes is not None
    assert torch.equal(layer.last_codes[:, 2].cpu(), torch.tensor([[[3], [5]]] * 3))


# ----------------------------------------------------------------- attribution evaluation, attacks


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    x = torch.randn(n, 6, generator=gen) * 0.5
    x[:, 0] += 2.0 * y - 1.0
    return x, y


def _mlp(device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)).to(device)


@pytest.mark.parametrize("device", devices())
def test_robustness_helpers_on_device_equal_the_cpu(device: str) -> None:
    x, y = _blobs(64, 0)
    cpu, dev = _mlp("cpu"), _mlp(device)
    xd, yd = x.to(device), y.to(device)
    hist_cpu = train_classifier(cpu, x, y, epochs=3, batch_size=16, lr=1e-2, seed=0)
    hist_dev = train_classifier(dev, xd, yd, epochs=3, batch_size=16, lr=1e-2, seed=0)
    np.testing.assert_allclose(hist_dev, hist_cpu, rtol=1e-4, atol=1e-6)
    assert accuracy(dev, xd, yd) == accuracy(cpu, x, y)
    adv = fgsm_attack(dev, xd, yd, eps=0.1)
    assert adv.device.type == device
    assert float((adv - xd).abs().max()) <= 0.1 + 1e-6
    # a seeded random start is drawn on the CPU: the same start on every device
    kw = dict(eps=0.1, n_steps=1, step_size=0.0, random_start=True, seed=3)
    for norm in ("linf", "l2"):
        start = pgd_attack(dev, xd, yd, norm=norm, **kw)  # type: ignore[arg-type]
        torch.testing.assert_close(start.cpu(), pgd_attack(cpu, x, y, norm=norm, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("device", devices())
def test_attribution_evaluation_on_device(device: str) -> None:
    x, y = _blobs(80, 1)
    xt, yt = _blobs(40, 2)
    attr, attr_t = x.abs(), xt.abs()
    keep = keep_mask(attr.to(device), 2)
    assert keep.device.type == device
    assert torch.equal(keep.cpu(), keep_mask(attr, 2))
    masked = mask_inputs(x.to(device), keep, x.mean(0).to(device))
    torch.testing.assert_close(masked.cpu(), mask_inputs(x, keep.cpu(), x.mean(0)))

    def trainer(xs: torch.Tensor, ys: torch.Tensor) -> nn.Module:
        model = _mlp(str(xs.device.type))
        train_classifier(model, xs, ys, epochs=4, batch_size=20, lr=1e-2, seed=0)
        return model

    args = (x, y, xt, yt, attr, attr_t)
    res = diffroar(*(a.to(device) for a in args), k=2, trainer=trainer)
    ref = diffroar(*args, k=2, trainer=trainer)
    assert res.top_accuracy == pytest.approx(ref.top_accuracy, abs=0.05)
    assert res.bottom_accuracy == pytest.approx(ref.bottom_accuracy, abs=0.05)


# ----------------------------------------------------------------- information, information plane


@pytest.mark.parametrize("device", devices())
def test_information_estimators_take_device_tensors(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(50, 3, generator=gen) * 2 - 1
    y = torch.randint(0, 2, (50,), generator=gen)
    td, yd = t.to(device), y.to(device)
    assert kde_information(td, yd) == kde_information(t, y)
    assert binned_information(td, yd, n_bins=5) == binned_information(t, y, n_bins=5)
    codes = (t[:, 0] > 0).long()
    assert mutual_information(codes.to(device), yd) == mutual_information(codes, y)


@pytest.mark.parametrize("device", devices())
def test_information_plane_trains_on_the_input_device(device: str) -> None:
    task = twelve_bit_task()
    train, _ = task.split(0.8, seed=0)
    kw = dict(hidden=(6, 4), n_runs=2, epochs=2, n_records=2, batch_size=512, kde_samples=32)
    ref = track_information_plane(task.x, task.y, train, **kw)  # type: ignore[arg-type]
    got = track_information_plane(task.x.to(device), task.y.to(device), train, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.ixt["kde"], ref.ixt["kde"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.ity["kde"], ref.ity["kde"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.train_accuracy, ref.train_accuracy, atol=5e-3)
    assert np.isfinite(got.ixt["binning"]).all()


# ----------------------------------------------------------------- late fusion, geometry


@pytest.mark.parametrize("device", devices())
def test_late_fusion_trains_and_attacks_on_device(device: str) -> None:
    def fused() -> LateFusionClassifier:
        return LateFusionClassifier(
            StreamCNN(width=4, n_features=8, seed=0),
            StreamCNN(width=4, n_features=6, stride=2, seed=1),
            3,
            box=(4, 4, 8, 8),
        )

    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(24, 1, 16, 16, generator=gen), torch.randint(0, 3, (24,), generator=gen)
    torch.manual_seed(0)
    cpu = fused()
    dev = copy.deepcopy(cpu).to(device)
    xd, yd = x.to(device), y.to(device)
    torch.testing.assert_close(dev(xd).detach().cpu(), cpu(x).detach(), rtol=1e-4, atol=1e-5)
    ref = train_head(cpu, x, y, epochs=3, lr=0.05, batch_size=8, alpha=0.1, seed=0)
    got = train_head(dev, xd, yd, epochs=3, lr=0.05, batch_size=8, alpha=0.1, seed=0)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    dev.eval()
    curves = robustness_curves(dev, xd, yd, fgsm_eps=(0.1,), pgd_eps=(0.1,), blur_sigmas=(1.0,))
    assert 0.0 <= curves.fgsm[0] <= 1.0
    assert 0.0 <= curves.blur[0] <= 1.0


def _linear64(classes: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(6, classes)).double().eval()


@pytest.mark.parametrize("device", devices())
def test_geometry_on_device_equals_the_cpu(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    src = torch.rand(3, 1, 2, 3, generator=gen, dtype=torch.float64)
    trg = torch.rand(3, 1, 2, 3, generator=gen, dtype=torch.float64)
    cpu = _linear64(3)
    dev = copy.deepcopy(cpu).to(device)
    sd, td = src.to(device), trg.to(device)
    ref = level_set_traversal(cpu, src, trg, n_iterations=10, init_noise=0.1, seed=2)
    got = level_set_traversal(dev, sd, td, n_iterations=10, init_noise=0.1, seed=2)
    assert got.final.device.type == device
    torch.testing.assert_close(got.final.cpu(), ref.final)  # seeded start noise: same draw
    torch.testing.assert_close(got.confidences.cpu(), ref.confidences)
    labels = ref.labels
    lc = line_confidence(dev, sd, td, labels.to(device), n_points=5)
    torch.testing.assert_close(lc.cpu(), line_confidence(cpu, src, trg, labels, n_points=5))
    tri = triangle_confidence(dev, sd, td, sd.flip(0), labels.to(device), n_interps=3)
    ref_tri = triangle_confidence(cpu, src, trg, src.flip(0), labels, n_interps=3)
    assert tri.confidences.device.type == device
    torch.testing.assert_close(tri.confidences.cpu(), ref_tri.confidences)
    torch.testing.assert_close(tri.edge_min.cpu(), ref_tri.edge_min)


# ----------------------------------------------------------------- representations, evaluators


@pytest.mark.parametrize("device", devices())
def test_representation_comparisons_take_device_tensors(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    acts_a = {
        "conv": torch.randn(6, 3, 2, 2, generator=gen),
        "fc": torch.randn(6, 4, generator=gen),
    }
    acts_b = {
        "conv": torch.randn(6, 3, 2, 2, generator=gen),
        "fc": torch.randn(6, 5, generator=gen),
    }
    ref = compare_networks(acts_a, acts_b, n_permutations=2)
    got = compare_networks(
        {k: v.to(device) for k, v in acts_a.items()},
        {k: v.to(device) for k, v in acts_b.items()},
        n_permutations=2,
    )
    for name in ("conv", "fc"):
        np.testing.assert_allclose(got[name].blocks.between, ref[name].blocks.between)
        np.testing.assert_array_equal(got[name].matching.partner, ref[name].matching.partner)
    rdms = torch.rand(8, 6, generator=gen)
    labels, groups = torch.arange(8) % 2, torch.arange(8) // 2
    want = identification_accuracy(rdms.numpy(), labels.numpy(), groups.numpy())
    assert identification_accuracy(rdms.to(device), labels.to(device), groups.to(device)) == want
    gt = GeoTopological(0.1, 0.9)
    np.testing.assert_allclose(gt.fit_transform(rdms.to(device)), gt.fit_transform(rdms.numpy()))


class _ModelJudge:
    """A judge whose scores come from a tiny torch model on some device."""

    def __init__(self, device: str) -> None:
        torch.manual_seed(0)
        self.model = nn.Linear(1, 2).to(device)
        self.device = device

    def __call__(self, prompt: str) -> str:
        if "list as many evaluation perspectives" in prompt:
            return "1. accuracy\n2. detail"
        x = torch.tensor([[len(prompt) / 1000.0]], device=self.device)
        with torch.no_grad():
            a, b = (self.model(x)[0] * 3 + 5).round().clamp(1, 10).tolist()
        return f"Assistant 1: {a:g}\nAssistant 2: {b:g}"


@pytest.mark.parametrize("device", devices())
def test_widedeep_with_a_judge_on_device(device: str) -> None:
    samples = [PairwiseSample("q?", "a" * n, "b") for n in (1, 40, 400)]
    got = WideDeep(_ModelJudge(device), width=2, depth=2).predict(samples)
    ref = WideDeep(_ModelJudge("cpu"), width=2, depth=2).predict(samples)
    np.testing.assert_array_equal(got, ref)
    judge = _ModelJudge(device)

    def pipeline(prompt: str, **_: object) -> list[dict[str, str]]:
        return [{"generated_text": judge(prompt)}]

    assert WideDeep(hf_pipeline_judge(pipeline), width=2).predict(samples).shape == (3,)


# ----------------------------------------------------------------- neuron descriptions (MILAN)


def _conv_net(device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv", nn.Conv2d(3, 4, 3, padding=1)),
                ("relu", nn.ReLU()),
                ("pool", nn.AdaptiveAvgPool2d(1)),
                ("flat", nn.Flatten()),
            ]
        )
    ).to(device)


@pytest.mark.parametrize("device", devices())
def test_compute_exemplars_on_device_equals_the_cpu(device: str) -> None:
    x = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    for layer in ("conv", "flat"):  # spatial masks, then all-ones masks
        ref = compute_exemplars(_conv_net("cpu"), x, layer, units=[0, 2], k=3)
        got = compute_exemplars(_conv_net(device), x.to(device), layer, units=[0, 2], k=3)
        assert got.masks.device.type == got.thresholds.device.type == device
        assert torch.equal(got.indices.cpu(), ref.indices)
        torch.testing.assert_close(got.thresholds.cpu(), ref.thresholds, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.images.cpu(), ref.images)
        assert float((got.masks.cpu() != ref.masks).float().mean()) < 0.01


@pytest.mark.parametrize("device", devices())
def test_captioner_and_prior_on_device(device: str) -> None:
    texts = ["red shapes", "blue shapes", "shapes"]
    vocab = Vocabulary.from_descriptions(texts)
    images = torch.rand(2, 4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    masks = torch.ones(2, 4, 1, 8, 8)
    cpu = ExemplarCaptioner(
        vocab, ExemplarEncoder(width=4, seed=0), hidden_size=8, dropout=0.0, seed=0
    )  # no dropout: CPU and CUDA RNGs differ
    dev = copy.deepcopy(cpu).to(device)
    imd, mad = images.to(device), masks.to(device)
    enc = dev.encoder
    torch.testing.assert_close(enc(imd).cpu(), cpu.encoder(images), rtol=1e-4, atol=1e-5)
    labels = torch.randint(0, 2, (4, 1, 8, 8), generator=torch.Generator().manual_seed(2))
    hist = copy.deepcopy(enc).pretrain(imd[0], labels.to(device), epochs=2, batch_size=2, seed=0)
    assert len(hist) == 2
    annotations = [["red shapes"], ["blue shapes", "shapes"]]
    ref = cpu.fit(images, masks, annotations, epochs=2, batch_size=2, seed=0)
    got = dev.fit(imd, mad, annotations, epochs=2, batch_size=2, seed=0)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)
    lp = dev.log_prob(imd[0], mad[0], texts)
    assert lp.device.type == device
    torch.testing.assert_close(
        lp.cpu(), cpu.log_prob(images[0], masks[0], texts), atol=1e-3, rtol=0
    )
    proposals = dev.propose(imd[0], mad[0], beam_size=3, max_length=3)
    assert 1 <= len(proposals) <= 3
    lm = DescriptionLM(vocab, seed=0).to(device)
    assert len(lm.fit(texts, epochs=2, batch_size=2, seed=0)) == 2
    assert lm.log_prob(texts).device.type == device
    out = describe(dev, imd[0], mad[0], prior=lm, lam=0.2, beam_size=3, max_length=3)
    assert out.text in [t for t, _, _ in out.candidates]
    assert np.isfinite(out.score)


class _Tokenizer:
    bos_token_id, eos_token_id = 1, 2
    words: ClassVar[dict[str, int]] = {"red": 3, "shapes": 4, "blue": 5}

    def __call__(self, texts: Any, padding: bool = True, return_tensors: str = "pt", **_: Any):
        if isinstance(texts, str):  # a causal LM prior tokenizes one description at a time
            return {"input_ids": [self.words[w] for w in texts.split()]}
        rows = [[self.words[w] for w in t.split()] + [2] for t in texts]
        ids = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
        return {"input_ids": ids, "attention_mask": (ids > 0).long()}

    def batch_decode(self, ids: torch.Tensor, skip_special_tokens: bool = True) -> list[str]:
        names = {v: k for k, v in self.words.items()}
        return [" ".join(names[i] for i in row.tolist() if i in names) for row in ids]


class _HFModel:
    """A Hugging Face style model on one device: inputs elsewhere fail, as in transformers."""

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)
        self.table = torch.randn(6, 6, generator=torch.Generator().manual_seed(0)).to(device)

    def __call__(self, *, labels=None, pixel_values=None, input_ids=None, attention_mask=None):
        from types import SimpleNamespace

        ids = input_ids if labels is None else labels.clamp_min(0)
        logits = nn.functional.embedding(ids, self.table)
        if pixel_values is not None:
            logits = logits + pixel_values.mean((1, 2, 3))[:, None, None]
        return SimpleNamespace(logits=logits)

    def generate(self, pixel_values: torch.Tensor, num_beams: int, **_: Any) -> torch.Tensor:
        return torch.tensor([[3, 4, 2]], device=pixel_values.device).repeat(len(pixel_values), 1)


def _processor(images: list[np.ndarray], return_tensors: str = "pt") -> dict[str, torch.Tensor]:
    """CPU pixel values, as Hugging Face image processors return them."""
    return {"pixel_values": torch.as_tensor(np.stack(images)).permute(0, 3, 1, 2).float() / 255}


@pytest.mark.parametrize("device", devices())
def test_hugging_face_captioner_and_prior_adapters_on_device(device: str) -> None:
    images = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    masks = (torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    texts = ["red shapes", "blue"]
    for processor in (None, _processor):
        ref = HFCaptioner(_HFModel("cpu"), _Tokenizer(), image_processor=processor)
        cap = HFCaptioner(_HFModel(device), _Tokenizer(), image_processor=processor)
        lp = cap.log_prob(images.to(device), masks.to(device), texts)
        assert lp.device.type == device
        torch.testing.assert_close(lp.cpu(), ref.log_prob(images, masks, texts))
        assert cap.propose(images.to(device), masks.to(device), beam_size=2)
    prior = HFLanguagePrior(_HFModel(device), _Tokenizer())
    want = HFLanguagePrior(_HFModel("cpu"), _Tokenizer()).log_prob(texts)
    torch.testing.assert_close(prior.log_prob(texts).cpu(), want)


# ----------------------------------------------------------------- MDS clustering, facets


@pytest.mark.parametrize("device", devices())
def test_mds_clustering_on_device_equals_the_cpu(device: str) -> None:
    pop = on_off_population(8, 6, seed=3)
    kw = dict(n_steps=10, norm=2.0, max_iter=3, n_norm_samples=32, seed=0)
    ref = mds_clustering(pop, pop.stimulus_shape, 3, **kw)  # type: ignore[arg-type]
    dev_pop = copy.deepcopy(pop).to(device)
    got = mds_clustering(dev_pop, pop.stimulus_shape, 3, **kw)  # type: ignore[arg-type]
    assert got.stimuli.device.type == got.labels.device.type == device
    assert torch.equal(got.labels.cpu(), ref.labels)
    torch.testing.assert_close(got.stimuli.cpu(), ref.stimuli, rtol=1e-3, atol=1e-4)
    split = mds_clustering(dev_pop, pop.stimulus_shape, 1, split=True, **kw)  # type: ignore[arg-type]
    assert split.labels.device.type == device
    # a generator passed by the user is drawn on its own device
    gen = torch.Generator(device).manual_seed(0)
    stim, obj = optimize_stimuli(
        dev_pop, ref.labels.to(device), pop.stimulus_shape, n_steps=2, seed=gen
    )
    assert stim.device.type == obj.device.type == device


def _facet_model(device: str) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([("flat", nn.Flatten()), ("fc", nn.Linear(36, 2))]))
    return model.to(device)


@pytest.mark.parametrize("device", devices())
def test_facets_on_device_equal_the_cpu(device: str) -> None:
    x = torch.rand(20, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    kw = dict(layer="flat", n_facets=2, top_k=12, embedding="pca", n_nearest=3)
    ref = discover_facets(_facet_model("cpu"), x, class_logit(0), **kw)  # type: ignore[arg-type]
    model = _facet_model(device)
    got = discover_facets(model, x.to(device), class_logit(0), **kw)  # type: ignore[arg-type]
    assert torch.equal(got.indices, ref.indices)
    torch.testing.assert_close(got.init_images, ref.init_images)
    vis = visualize_facets(model, class_logit(0), got, steps=3, lr=0.05)
    assert vis.image.device.type == device
    assert vis.image.shape == (2, 1, 6, 6)


# ----------------------------------------------------------------- Hugging Face codebooks


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers")
@pytest.mark.parametrize("device", devices())
def test_hf_codebooks_on_device_equal_the_cpu(device: str) -> None:
    import transformers

    cfg = transformers.GPT2Config(
        vocab_size=7, n_embd=16, n_layer=1, n_head=2, n_positions=16,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    cpu = transformers.GPT2LMHeadModel(cfg).eval()
    dev = copy.deepcopy(cpu).to(device)
    ids = torch.randint(0, 7, (2, 6), generator=torch.Generator().manual_seed(0))
    kw = dict(components=("attention_heads", "mlp"), num_codes=8, k=1)
    cb_cpu = insert_hf_codebooks(cpu, **kw)  # type: ignore[arg-type]
    cb_dev = insert_hf_codebooks(dev, **kw)  # type: ignore[arg-type]
    with torch.no_grad(), cb_cpu.record_codes() as rec_cpu:
        ref = cb_cpu(input_ids=ids).logits
    with torch.no_grad(), cb_dev.record_codes() as rec_dev:
        got = cb_dev(input_ids=ids.to(device)).logits
    assert got.device.type == device
    torch.testing.assert_close(got.cpu(), ref, rtol=1e-4, atol=1e-4)
    for name, codes in rec_cpu.items():
        assert torch.equal(rec_dev[name][0].cpu(), codes[0])
