"""Single-head and multi-head curricula."""

import numpy as np
import pytest
import torch

from neuronkit.theory.timescales import (
    TimescaleRNN,
    curriculum_heads,
    evaluate_heads,
    train_curriculum,
)


def _fast(model: TimescaleRNN, curriculum: str, **kw):
    opts = dict(
        max_steps=8,
        steps_per_epoch=2,
        batch_size=8,
        test_batch_size=16,
        optimizer="adam",
        lr=1e-3,
        seed=0,
    )
    opts.update(kw)
    return train_curriculum(model, curriculum, **opts)


def test_stages_advance_one_n_per_solved_epoch() -> None:
    model = TimescaleRNN(1, 6, num_heads=5, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    multi = _fast(model, "multi", threshold=0.0)  # every epoch solves its stage
    assert multi.ns == [2, 3, 4, 5]
    assert multi.n_max == 5
    assert multi.steps == 8
    assert [s.ns for s in multi.stages] == [(2,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]
    assert [s.step for s in multi.stages] == [2, 4, 6, 8]
    assert [h["ns"] for h in multi.history] == [[2], [2, 3], [2, 3, 4], [2, 3, 4, 5]]
    single = _fast(model, "single", threshold=0.0)
    assert single.ns == [2, 3, 4, 5]
    assert all(s.ns == (s.n,) for s in single.stages)
    for k, v in model.state_dict().items():  # the input model is not trained
        assert torch.equal(v, before[k])
    assert multi.model is not model
    # stage snapshots restore the weights of that moment
    first = multi.model_at(2)
    assert torch.equal(first.w_rec, multi.stages[0].state["w_rec"])
    np.testing.assert_allclose(first.effective_tau().detach().numpy(), multi.stages[0].tau)
    with pytest.raises(ValueError, match="solved span"):
        multi.model_at(9)


def test_budget_cap_and_unsolved_runs() -> None:
    model = TimescaleRNN(1, 6, num_heads=5, seed=0)
    capped = _fast(model, "multi", threshold=0.0, n_max=3)
    assert capped.ns == [2, 3]
    assert capped.steps == 4
    none = _fast(model, "single", threshold=1.0, max_steps=5)
    assert none.stages == []
    assert none.n_max == 1
    assert none.steps == 5
    assert len(none.history) == 3
    assert none.mean_taus == []
    dms = _fast(model, "multi", task="dms", threshold=0.0, n_max=4)
    assert dms.task == "dms"
    assert dms.ns == [2, 3, 4]


def test_seeded_and_tau_is_trained() -> None:
    model = TimescaleRNN(1, 6, num_heads=3, seed=1)
    a = _fast(model, "multi", threshold=0.5)
    b = _fast(model, "multi", threshold=0.5)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert not np.allclose(a.model.tau.detach().numpy(), model.tau.detach().numpy())
    frozen = TimescaleRNN(1, 6, num_heads=3, train_tau=False, seed=1)
    c = _fast(frozen, "multi", threshold=0.5)
    assert torch.equal(c.model.tau, frozen.tau)


def test_learns_two_parity() -> None:
    model = TimescaleRNN(1, 16, num_heads=1, seed=0)
    res = train_curriculum(
        model,
        "single",
        n_max=2,
        max_steps=600,
        steps_per_epoch=25,
        batch_size=32,
        optimizer="adam",
        lr=0.05,
        threshold=0.95,
        seed=0,
    )
    assert res.ns == [2]
    acc = evaluate_heads(
        res.model,
        "parity",
        (2,),
        [0],
        batch_size=512,
        batches=1,
        generator=torch.Generator().manual_seed(5),
    )
    assert acc[0] >= 0.9


def test_heads_and_bad_inputs() -> None:
    assert curriculum_heads("single", (4,), 2) == [0]
    assert curriculum_heads("multi", (2, 3, 4), 2) == [0, 1, 2]
    model = TimescaleRNN(1, 4, num_heads=2, seed=0)
    with pytest.raises(ValueError, match="n_max"):
        train_curriculum(model, "multi", n_max=4)
    with pytest.raises(ValueError, match="curriculum"):
        train_curriculum(model, "sliding")
    with pytest.raises(ValueError, match="task"):
        train_curriculum(model, "single", "copy")
    with pytest.raises(TypeError, match="model"):
        train_curriculum(torch.nn.RNN(1, 4), "single")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_size"):
        train_curriculum(TimescaleRNN(2, 4, seed=0), "single")
    with pytest.raises(ValueError, match="threshold"):
        train_curriculum(model, "single", threshold=1.5)
    with pytest.raises(ValueError, match="optimizer"):
        train_curriculum(model, "single", optimizer="rmsprop")
    with pytest.raises(ValueError, match="n_start"):
        train_curriculum(model, "single", "dms", n_start=1)
    with pytest.raises(TypeError, match="callback"):
        train_curriculum(model, "single", callback=3)  # type: ignore[arg-type]
    # were checked only after the first epoch, named as evaluate_heads' batch_size / batches
    fast = {"max_steps": 1, "steps_per_epoch": 1, "batch_size": 2}
    with pytest.raises(ValueError, match=r"^test_batch_size must be >= 1"):
        train_curriculum(model, "single", test_batch_size=0, **fast)
    with pytest.raises(ValueError, match=r"^test_batches must be >= 1"):
        train_curriculum(model, "single", test_batches=0, **fast)
    with pytest.raises(TypeError, match="generator"):
        evaluate_heads(model, "parity", (2,), [0], batch_size=4, batches=1, generator=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heads"):
        evaluate_heads(
            model, "parity", (2, 3), [0], batch_size=4, batches=1, generator=torch.Generator()
        )


def test_solved_criterion_uses_the_reference_test_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # reference train.py: after each epoch, TEST_STEPS = 50 batches of BATCH_SIZE = 256 sequences,
    # each batch with its own random length; one batch of 256 (one length draw) let stages whose
    # accuracy on 5120 fresh sequences was ~0.95 pass the 0.98 threshold
    import neuronkit.theory.timescales.curriculum as cur

    calls = []
    real = cur.evaluate_heads

    def spy(*args, **kwargs):
        calls.append((kwargs["batch_size"], kwargs["batches"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(cur, "evaluate_heads", spy)
    model = TimescaleRNN(1, 4, num_heads=2, seed=0)
    train_curriculum(model, "single", max_steps=1, steps_per_epoch=1, batch_size=4, seed=0)
    assert calls == [(256, 50)]


def test_evaluation_equals_batch_by_batch_accuracy() -> None:
    # the test batches (each its own length) run as one ragged batch: the accuracies must be
    # those of evaluating the same draws batch by batch
    from neuronkit.common import correct_predictions
    from neuronkit.theory.timescales.curriculum import _batch

    model = TimescaleRNN(1, 12, num_heads=4, seed=3)
    with torch.no_grad():
        model.w_rec.mul_(2.0)
        model.tau.mul_(3.0)
    ns, heads = (2, 3, 4), [0, 1, 2]
    got = evaluate_heads(
        model,
        "parity",
        ns,
        heads,
        batch_size=32,
        batches=6,
        generator=torch.Generator().manual_seed(4),
    )
    gen, correct = torch.Generator().manual_seed(4), torch.zeros(3)
    with torch.no_grad():
        for _ in range(6):
            x, h0, labels = _batch(model, "parity", ns, 32, gen)
            correct += correct_predictions(model(x, h0, heads=heads), labels).float().sum(1)
    assert got == [float(c) / (32 * 6) for c in correct]
    assert len(set(got)) > 1  # the heads differ: not a constant
