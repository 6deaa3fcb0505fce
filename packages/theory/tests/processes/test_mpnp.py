"""Martingale Posterior NP: generator symmetries, the predictive mixture and the loss terms."""

import math

import pytest
import torch

from neuronkit.theory.data.gp import sample_gp_tasks
from neuronkit.theory.processes import (
    MartingalePosteriorNP,
    MultiheadAttentionBlock,
    PseudoContextGenerator,
    gaussian_log_prob,
    mpnp_losses,
    train_process,
)


def test_attention_block_is_permutation_equivariant() -> None:
    torch.manual_seed(0)
    mab = MultiheadAttentionBlock(8, num_heads=2)
    q, k = torch.randn(3, 5, 8), torch.randn(3, 6, 8)
    out = mab(q, k)
    assert out.shape == (3, 5, 8)
    pq, pk = torch.randperm(5), torch.randperm(6)
    assert torch.allclose(mab(q[:, pq], k[:, pk]), out[:, pq], atol=1e-5)


def test_generator_shapes_and_context_order_invariance() -> None:
    torch.manual_seed(0)
    gen = PseudoContextGenerator(8, num_heads=2)
    rc = torch.randn(3, 6, 8)
    a = gen(rc, 4, 5, generator=torch.Generator().manual_seed(1))
    assert a.shape == (5, 3, 4, 8)
    b = gen(rc[:, torch.randperm(6)], 4, 5, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(a, b, atol=1e-5)
    c = gen(rc, 4, 5, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(a, c)  # the noise makes the sets random


def test_predictive_mixture_and_pooling() -> None:
    t = sample_gp_tasks(2, num_context=6, num_target=3, seed=0)
    model = MartingalePosteriorNP(hidden=16, num_heads=2, seed=0)
    g = torch.Generator().manual_seed(0)
    rc, pseudo = model.generate(t.xc, t.yc, num_sets=4, generator=g)
    assert rc.shape == (2, 6, 16)
    assert pseudo.shape == (4, 2, 6, 16)
    pred = model(t.xc, t.yc, t.xt, num_samples=4, generator=torch.Generator().manual_seed(0))
    assert pred.mean.shape == (4, 2, 3, 1)
    # component k decodes the mean of the union of real and pseudo representations
    r = torch.cat([rc, pseudo[1]], dim=1).mean(1)
    mean, _ = model.decoder(t.xt, r)
    assert torch.allclose(pred.mean[1], mean, atol=1e-5)
    assert float(pred.mean.detach().std(0).mean()) > 0
    fixed = MartingalePosteriorNP(hidden=16, num_heads=2, num_pseudo=3, seed=0)
    assert fixed.generate(t.xc, t.yc, num_sets=2)[1].shape == (2, 2, 3, 16)
    base = model.predict_context_only(t.xc, t.yc, t.xt)
    assert base.mean.shape == (1, 2, 3, 1)


def test_loss_terms_match_their_definitions() -> None:
    torch.manual_seed(0)
    t = sample_gp_tasks(3, num_context=5, num_target=4, seed=2)
    model = MartingalePosteriorNP(hidden=16, num_heads=2, seed=0)
    rc, pseudo = model.generate(t.xc, t.yc, num_sets=3, generator=torch.Generator().manual_seed(0))
    terms = mpnp_losses(model.decoder, rc, pseudo, t.xt, t.yt)
    nt = t.yt.shape[1]

    def joint(r: torch.Tensor) -> torch.Tensor:
        m, s = model.decoder(t.xt, r)
        return gaussian_log_prob(t.yt, m, s).sum(dim=(1, 2))

    marg = torch.stack([joint(torch.cat([rc, pseudo[k]], 1).mean(1)) for k in range(3)])
    pse = torch.stack([joint(pseudo[k].mean(1)) for k in range(3)])
    ref_marg = -((torch.logsumexp(marg, 0) - math.log(3)) / nt).mean()
    ref_pse = -((torch.logsumexp(pse, 0) - math.log(3)) / nt).mean()
    ref_amort = -(joint(rc.mean(1)) / nt).mean()
    assert torch.allclose(terms["marginal"], ref_marg, atol=1e-5)
    assert torch.allclose(terms["pseudo"], ref_pse, atol=1e-5)
    assert torch.allclose(terms["amortized"], ref_amort, atol=1e-5)
    assert torch.allclose(terms["total"], ref_marg + ref_amort + ref_pse, atol=1e-5)
    only = mpnp_losses(model.decoder, rc, pseudo, t.xt, t.yt, amortized_weight=0, pseudo_weight=0)
    assert torch.allclose(only["total"], only["marginal"])
    # Jensen: the log of the mean likelihood is >= the mean log-likelihood
    assert float(ref_marg.detach()) <= float(-(marg.detach().mean(0) / nt).mean()) + 1e-6


def test_gradients_reach_the_generator_and_training_helps() -> None:
    batch = sample_gp_tasks(4, num_context=6, num_target=6, seed=0)
    model = MartingalePosteriorNP(hidden=8, num_heads=2, num_train_samples=2, seed=0)
    loss = model.loss(batch.xc, batch.yc, batch.x, batch.y)
    loss.backward()
    grads = [p.grad for p in model.generator.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    model.zero_grad()
    g = torch.Generator().manual_seed(0)
    before = model.loss(batch.xc, batch.yc, batch.x, batch.y, generator=g).item()
    train_process(model, lambda s: batch, steps=15, lr=2e-2, generator=torch.Generator())
    after = model.loss(batch.xc, batch.yc, batch.x, batch.y, generator=g).item()
    assert after < before - 0.1


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="num_heads"):
        MultiheadAttentionBlock(10, num_heads=3)
    with pytest.raises(ValueError, match="num_pseudo"):
        MartingalePosteriorNP(hidden=8, num_heads=2, num_pseudo=0)
    with pytest.raises(ValueError, match="pseudo_weight"):
        MartingalePosteriorNP(hidden=8, num_heads=2, pseudo_weight=-1.0)
    # were named by the encoder's and decoder's own argument, "depth"
    with pytest.raises(ValueError, match=r"^encoder_depth must be >= 1"):
        MartingalePosteriorNP(hidden=8, num_heads=2, encoder_depth=0)
    with pytest.raises(TypeError, match=r"^decoder_depth must be an integer"):
        MartingalePosteriorNP(hidden=8, num_heads=2, decoder_depth=2.5)  # type: ignore[arg-type]
    model = MartingalePosteriorNP(hidden=8, num_heads=2, seed=0)
    x = torch.zeros(2, 3, 1)
    with pytest.raises(ValueError, match="num_samples"):
        model(x, x, x, num_samples=0)
    with pytest.raises(ValueError, match="xt"):
        model(x, x, torch.zeros(2, 3, 2))
    with pytest.raises(ValueError, match="context"):
        model.generator(torch.zeros(2, 3, 4), 2)
    with pytest.raises(ValueError, match="pseudo"):
        mpnp_losses(model.decoder, torch.zeros(2, 3, 8), torch.zeros(1, 3, 3, 8), x, x)
    with pytest.raises(TypeError, match="decoder"):
        mpnp_losses("dec", torch.zeros(2, 3, 8), torch.zeros(1, 2, 3, 8), x, x)
