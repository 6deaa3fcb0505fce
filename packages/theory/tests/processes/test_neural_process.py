"""Neural-process building blocks: mixture predictive, decoder, CNP/NP and the training loop."""

import math

import pytest
import torch

from neuronkit.theory.data.gp import sample_gp_tasks
from neuronkit.theory.processes import (
    ConditionalNeuralProcess,
    GaussianDecoder,
    NeuralProcess,
    ProcessPrediction,
    gaussian_log_prob,
    mixture_cdf,
    mixture_log_likelihood,
    mixture_quantile,
    predictive_coverage,
    train_process,
)


def _mixture(k: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(k, 2, 5, 1, generator=g, dtype=torch.float64)
    std = 0.2 + torch.rand(k, 2, 5, 1, generator=g, dtype=torch.float64)
    y = torch.randn(2, 5, 1, generator=g, dtype=torch.float64)
    return y, mean, std


def test_mixture_log_likelihood_reference() -> None:
    y, mean, std = _mixture()
    dens = torch.distributions.Normal(mean, std).log_prob(y).exp().mean(0)[..., 0]
    assert torch.allclose(mixture_log_likelihood(y, mean, std), dens.log())
    one = mixture_log_likelihood(y, mean[:1], std[:1])
    assert torch.allclose(one, torch.distributions.Normal(mean[0], std[0]).log_prob(y)[..., 0])
    # identical components: the mixture is the component
    same = mixture_log_likelihood(y, mean[:1].expand(4, -1, -1, -1), std[:1].expand(4, -1, -1, -1))
    assert torch.allclose(same, one)
    assert torch.allclose(
        gaussian_log_prob(y, mean[0], std[0]),
        torch.distributions.Normal(mean[0], std[0]).log_prob(y),
    )


def test_mixture_quantiles_invert_the_cdf_and_coverage_agrees() -> None:
    y, mean, std = _mixture(k=4, seed=1)
    for q in (0.05, 0.5, 0.95):
        x = mixture_quantile(q, mean, std)
        assert torch.allclose(mixture_cdf(x, mean, std), torch.full_like(x, q), atol=1e-9)
    pred = ProcessPrediction(mean, std)
    lo, hi = pred.interval(0.9)
    inside = (y >= lo) & (y <= hi)
    assert torch.equal(pred.coverage(y, 0.9), inside)
    # a single Gaussian: the central 90% interval is mean +- 1.6449 std
    m, s = mean[:1], std[:1]
    z = 1.6448536269514722
    assert bool(predictive_coverage(m[0] + 0.999 * z * s[0], m, s).all())
    assert not bool(predictive_coverage(m[0] + 1.001 * z * s[0], m, s).any())


def test_prediction_moments_total_variance() -> None:
    mean = torch.tensor([0.0, 2.0], dtype=torch.float64).view(2, 1, 1, 1)
    std = torch.tensor([1.0, 1.0], dtype=torch.float64).view(2, 1, 1, 1)
    pred = ProcessPrediction(mean, std)
    assert float(pred.predictive_mean()) == pytest.approx(1.0)
    assert float(pred.predictive_std()) == pytest.approx(math.sqrt(2.0))


def test_decoder_split_first_layer_equals_concatenation() -> None:
    torch.manual_seed(0)
    dec = GaussianDecoder(2, 5, 1, hidden=8, depth=3, min_std=0.1)
    x = torch.randn(3, 7, 2)
    r = torch.randn(3, 5)
    mean, std = dec(x, r)
    h = torch.cat([x, r.unsqueeze(1).expand(-1, 7, -1)], -1)
    out = dec.net(dec.input(h))
    assert torch.allclose(mean, out[..., :1], atol=1e-6)
    assert torch.allclose(std, 0.1 + 0.9 * torch.nn.functional.softplus(out[..., 1:]), atol=1e-6)
    assert bool((std >= 0.1).all())
    # leading sample dimension broadcasts
    mk, _ = dec(x.unsqueeze(0), r.unsqueeze(0).expand(4, -1, -1))
    assert mk.shape == (4, 3, 7, 1)
    assert torch.allclose(mk[2], mean, atol=1e-6)


def test_cnp_shapes_invariance_and_seed() -> None:
    t = sample_gp_tasks(4, num_context=6, num_target=5, seed=0)
    cnp = ConditionalNeuralProcess(hidden=16, seed=1)
    pred = cnp(t.xc, t.yc, t.xt)
    assert pred.mean.shape == pred.std.shape == (1, 4, 5, 1)
    assert bool((pred.std >= 0.1).all())
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    pred2 = cnp(t.xc[:, perm], t.yc[:, perm], t.xt)
    assert torch.allclose(pred.mean, pred2.mean, atol=1e-6)
    again = ConditionalNeuralProcess(hidden=16, seed=1)
    assert torch.equal(again(t.xc, t.yc, t.xt).mean, pred.mean)
    loss = cnp.loss(t.xc, t.yc, t.xt, t.yt)
    assert float(loss.detach()) == pytest.approx(-pred.log_likelihood(t.yt).mean().item(), rel=1e-5)


def test_np_sampling_and_elbo() -> None:
    t = sample_gp_tasks(3, num_context=5, num_target=4, seed=1)
    model = NeuralProcess(hidden=16, latent_dim=4, seed=0)
    pred = model(t.xc, t.yc, t.xt, num_samples=7, generator=torch.Generator().manual_seed(0))
    assert pred.mean.shape == (7, 3, 4, 1)
    assert float(pred.mean.detach().std(0).mean()) > 0  # samples of z differ
    again = model(t.xc, t.yc, t.xt, num_samples=7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pred.mean, again.mean)
    loss = model.loss(t.xc, t.yc, t.x, t.y, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0
    assert math.isfinite(loss.item())
    # the importance-weighted bound with many samples is tighter than the ELBO
    elbo = [
        model.loss(t.xc, t.yc, t.x, t.y, generator=torch.Generator().manual_seed(i)).item()
        for i in range(20)
    ]
    iw = model.loss(
        t.xc, t.yc, t.x, t.y, num_samples=64, generator=torch.Generator().manual_seed(0)
    )
    assert iw.item() <= sum(elbo) / len(elbo)
    # KL >= 0, so the negative ELBO is at least the expected negative log-likelihood
    with torch.no_grad():
        q = model.latent(t.x, t.y)
        assert bool((torch.distributions.kl_divergence(q, model.latent(t.xc, t.yc)) >= 0).all())


def test_training_reduces_the_loss() -> None:
    batch = sample_gp_tasks(8, num_context=10, num_target=10, seed=0)
    model = ConditionalNeuralProcess(hidden=16, seed=0)
    before = model.loss(batch.xc, batch.yc, batch.x, batch.y).item()
    seen: list[tuple[int, float]] = []
    log = train_process(
        model, lambda step: batch, steps=30, lr=1e-2, callback=lambda *a: seen.append(a)
    )
    assert len(log.losses) == 30
    assert seen == list(zip(range(1, 31), log.losses, strict=True))  # 1-based update count
    assert len(log.smoothed(10)) == 30
    assert model.loss(batch.xc, batch.yc, batch.x, batch.y).item() < before - 0.1


def test_bad_inputs() -> None:
    cnp = ConditionalNeuralProcess(hidden=8, seed=0)
    x = torch.zeros(2, 3, 1)
    with pytest.raises(ValueError, match="xc"):
        cnp(torch.zeros(3, 1), x, x)
    with pytest.raises(ValueError, match="yc"):
        cnp(x, torch.zeros(2, 4, 1), x)
    with pytest.raises(ValueError, match="xt"):
        cnp(x, x, torch.zeros(3, 3, 1))
    with pytest.raises(ValueError, match="yt"):
        cnp.loss(x, x, x, torch.zeros(2, 3, 2))
    with pytest.raises(TypeError, match="xc"):
        cnp([[0.0]], x, x)
    with pytest.raises(ValueError, match="finite"):
        cnp(x, torch.full((2, 3, 1), float("nan")), x)
    with pytest.raises(ValueError, match="num_samples"):
        NeuralProcess(hidden=8)(x, x, x, num_samples=0)
    with pytest.raises(ValueError, match="min_std"):
        ConditionalNeuralProcess(min_std=1.0)
    with pytest.raises(ValueError, match="depth"):
        GaussianDecoder(1, 4, 1, hidden=4, depth=1)
    # were named by the encoder's and decoder's own argument, "depth"
    for cls in (ConditionalNeuralProcess, NeuralProcess):
        with pytest.raises(ValueError, match=r"^encoder_depth must be >= 1"):
            cls(hidden=8, encoder_depth=0)
        with pytest.raises(ValueError, match=r"^decoder_depth must be >= 2"):
            cls(hidden=8, decoder_depth=1)
    y, mean, std = _mixture()
    with pytest.raises(ValueError, match="std"):
        mixture_log_likelihood(y, mean, -std)
    with pytest.raises(ValueError, match="y"):
        mixture_cdf(y[:, :2], mean, std)
    with pytest.raises(ValueError, match="q"):
        mixture_quantile(1.0, mean, std)
    with pytest.raises(ValueError, match="level"):
        predictive_coverage(y, mean, std, level=0.0)
    with pytest.raises(TypeError, match="tasks"):
        train_process(cnp, [1, 2], steps=1)
    with pytest.raises(ValueError, match="steps"):
        train_process(cnp, lambda s: None, steps=0)


def test_predictive_std_and_tail_cdf_keep_float32_precision() -> None:
    offsets = torch.tensor([0.0, 1e-3, 2e-3, -1e-3, -2e-3])
    std = torch.full((5, 1, 1, 1), 0.1)
    for mu in (100.0, 1000.0):  # E[std^2 + mean^2] - m^2 cancels here in float32
        mean = (mu + offsets).reshape(5, 1, 1, 1)
        exact = math.sqrt(0.01 + float((offsets.double() ** 2).mean()))
        pred = ProcessPrediction(mean, std)
        assert float(pred.predictive_std()) == pytest.approx(exact, rel=1e-3)
    mean = torch.tensor([0.0, 0.5]).reshape(2, 1, 1, 1)
    std = torch.tensor([1.0, 0.3]).reshape(2, 1, 1, 1)
    tail = 0.5 * (math.erfc(6 / math.sqrt(2)) + math.erfc(6.5 / 0.3 / math.sqrt(2))) / 2
    assert float(mixture_cdf(torch.full((1, 1, 1), -6.0), mean, std)) == pytest.approx(
        tail, rel=1e-4
    )


def test_interrupted_training_leaves_the_model_in_eval_mode_like_a_complete_run() -> None:
    # model.train() ... model.eval() had no finally: a KeyboardInterrupt from the callback (or
    # a diverging loss) left the model in train mode, a complete run leaves it in eval mode
    batch = sample_gp_tasks(2, num_context=3, num_target=3, seed=0)
    model = ConditionalNeuralProcess(hidden=8, seed=0).eval()

    def interrupt(done: int, loss: float) -> None:
        assert model.training
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_process(model, lambda step: batch, steps=3, callback=interrupt)
    assert not any(m.training for m in model.modules())

    def tasks(step: int):
        if step == 1:
            raise RuntimeError("task sampler failed")
        return batch

    model.train()
    with pytest.raises(RuntimeError, match="task sampler failed"):
        train_process(model, tasks, steps=2)
    assert not any(m.training for m in model.modules())
    train_process(model, lambda step: batch, steps=1)
    assert not any(m.training for m in model.modules())
    # an argument refused up front leaves the modes alone
    model.train()
    model.decoder.eval()
    modes = [m.training for m in model.modules()]
    with pytest.raises(ValueError, match="steps"):
        train_process(model, lambda step: batch, steps=0)
    assert [m.training for m in model.modules()] == modes
