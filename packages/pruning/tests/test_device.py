"""Pruning of models that live on an accelerator: the graph is built, the plan scored and the
model pruned on the model's device, and the pruned model still equals the soft-pruning oracle
there; OBSPA, lottery tickets, federated supermasks, FTWT, SeND / EigenScore, bricks, the NAS
controller and GBNN run there without a host round trip and give the CPU's results where the
method is deterministic (seeded draws use a CPU generator, so they do not depend on the
device)."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from neuronkit.common.testing import devices
from neuronkit.pruning import (
    DependencyGraph,
    OBSImportance,
    count_macs,
    layer_hessians,
    obspa_prune,
    plan_pruning,
    prune,
    soft_prune,
    zoo,
)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_prune_on_device_matches_oracle(
    device: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full-precision convs
    ctor, shape = zoo()[name]
    torch.manual_seed(0)
    model = ctor().eval().to(device)
    x = torch.randn((2, *shape), generator=torch.Generator().manual_seed(0)).to(device)
    graph = DependencyGraph(model, x)
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan).eval(), soft_prune(graph, plan).eval()
    assert all(p.device.type == device for p in hard.parameters())
    assert all(b.device.type == device for b in hard.buffers())
    with torch.no_grad():
        torch.testing.assert_close(hard(x), soft(x), rtol=1e-4, atol=1e-4)
    assert count_macs(model, x[:1]) >= 3 * count_macs(hard, x[:1])


@pytest.mark.parametrize("device", devices())
def test_hugging_face_model_prunes_on_device(device: str) -> None:
    transformers = pytest.importorskip(
        "transformers", reason="Hugging Face models need the optional transformers dependency"
    )
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=32, vocab_size=128)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg).eval().to(device)
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(1)).to(device)
    graph = DependencyGraph(model, ids)
    plan = plan_pruning(graph, "l2", 0.5)
    hard, soft = prune(graph, plan), soft_prune(graph, plan)
    assert all(p.device.type == device for p in hard.parameters())
    with torch.no_grad():
        y_hard = hard(ids, use_cache=False).logits
        y_soft = soft(ids, use_cache=False).logits
    torch.testing.assert_close(y_hard, y_soft, atol=1e-4, rtol=1e-4)
    assert hard.lm_head.weight is hard.transformer.wte.weight


def _two_layer(device: str) -> nn.Module:
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(10)  # a BatchNorm (data-free synthesis) and a consumer without bias
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    model = nn.Sequential(nn.Linear(6, 10), bn, nn.ReLU(), nn.Linear(10, 3, bias=False))
    return model.eval().to(device)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("calibrated", [False, True])
def test_obspa_on_device_matches_cpu(device: str, calibrated: bool) -> None:
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0)) + 0.5
    results = []
    for dev in ("cpu", device):
        graph = DependencyGraph(_two_layer(dev), x[:2].to(dev))
        inputs = x.to(dev) if calibrated else None  # None: data-free synthetic activations
        hessians = layer_hessians(graph, inputs=inputs, samples=32, seed=0)
        scores = OBSImportance(hessians)(graph)
        pruned, plan = obspa_prune(graph, 0.4, hessians=hessians)
        assert all(h.device.type == dev for h in hessians.values())
        assert all(p.device.type == dev for p in pruned.parameters())
        with torch.no_grad():
            results.append((hessians, scores, plan, pruned(x.to(dev))))
    (h_ref, s_ref, plan_ref, y_ref), (h, sc, plan, y) = results
    for name in h_ref:
        torch.testing.assert_close(h[name].cpu(), h_ref[name], rtol=1e-6, atol=1e-8)
    for g in s_ref:  # through a damped inverse Hessian: float32 activations' rounding grows
        torch.testing.assert_close(sc[g], s_ref[g], rtol=1e-3, atol=1e-8)
    assert {g: r.tolist() for g, r in plan.removed.items()} == {
        g: r.tolist() for g, r in plan_ref.removed.items()
    }
    torch.testing.assert_close(y.cpu(), y_ref, rtol=1e-3, atol=1e-4)


def _lottery_net(device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3)).to(
        device
    )


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_lottery_masks_rewinding_and_stability_on_device(device: str) -> None:
    from neuronkit.pruning.lottery import (
        TrainConfig,
        accuracy,
        apply_masks,
        clone_state,
        global_magnitude_prune,
        interpolate_states,
        interpolation_errors,
        linear_mode_connectivity,
        ones_masks,
        random_masks_like,
        train,
    )

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(48, 6, generator=gen)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    xd, yd = x.to(device), y.to(device)
    net, ref = _lottery_net(device), _lottery_net("cpu")
    masks = global_magnitude_prune(net, ones_masks(net), 0.5)
    ref_masks = global_magnitude_prune(ref, ones_masks(ref), 0.5)
    assert all(m.device.type == device for m in masks.values())
    assert all(torch.equal(masks[n].cpu(), ref_masks[n]) for n in masks)
    shuffled = random_masks_like(masks, seed=3)  # a CPU generator: the CPU's masks
    ref_shuffled = random_masks_like(ref_masks, seed=3)
    assert all(torch.equal(shuffled[n].cpu(), ref_shuffled[n]) for n in masks)
    cfg = TrainConfig(iterations=6, batch_size=16, lr=0.05)
    start = clone_state(net)
    saved = train(net, xd, yd, cfg, masks=masks, checkpoints=[2, 6])
    assert all(v.device.type == device for v in saved[6].values())
    for n, p in net.named_parameters():
        if n in masks:
            assert bool((p[~masks[n]] == 0).all())
    assert 0.0 <= accuracy(net, xd, yd) <= 1.0
    _, errors = interpolation_errors(net, start, saved[6], xd, yd, points=3, masks=masks)
    assert errors.shape == (3,)
    assert bool(((errors >= 0) & (errors <= 1)).all())
    on_cpu = {k: v.cpu() for k, v in saved[6].items()}  # e.g. a checkpoint loaded on the CPU
    mid = interpolate_states(saved[2], on_cpu, 0.5)
    assert all(v.device.type == device for v in mid.values())
    torch.testing.assert_close(mid["0.weight"], (saved[2]["0.weight"] + saved[6]["0.weight"]) / 2)
    lmc = linear_mode_connectivity(
        net, saved[2], xd, yd, xd, yd, cfg, start_iteration=2, masks=masks, points=3
    )
    assert lmc.errors.shape == (3,)
    assert all(v.device.type == device for v in lmc.state_a.values())
    apply_masks(net, masks)


def _fed_net(device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(8, 16, bias=False), nn.ReLU(), nn.Linear(16, 3, bias=False)
    ).to(device)


def _fed_data(n: int, seed: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, generator=gen)
    return x.to(device), x[:, 0, :3].argmax(1).long().to(device)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_synflow_and_federated_supermask_rounds_on_device(device: str) -> None:
    from neuronkit.pruning.federated.loop import (
        LocalConfig,
        run_binary_supermask,
        run_fedavg,
        run_hidenseek,
    )
    from neuronkit.pruning.federated.supermask import BinarySupermask, SignSupermask
    from neuronkit.pruning.federated.synflow import synflow_prune, synflow_scores

    net = _fed_net(device)
    scores = synflow_scores(net, (1, 8))
    ref_scores = synflow_scores(_fed_net("cpu"), (1, 8))
    for n in ref_scores:
        assert scores[n].device.type == device
        torch.testing.assert_close(scores[n].cpu(), ref_scores[n], rtol=1e-6, atol=1e-12)
    masks = synflow_prune(net, 0.5, (1, 8), iterations=5)
    ref_masks = synflow_prune(_fed_net("cpu"), 0.5, (1, 8), iterations=5)
    assert all(torch.equal(masks[n].cpu(), ref_masks[n]) for n in masks)
    clients = [_fed_data(12, k, device) for k in range(2)]
    xt, yt = _fed_data(20, 9, device)
    local = LocalConfig(epochs=1, batch_size=6, lr=0.2, optimizer="adam")
    sign = SignSupermask(net, masks)
    binary = BinarySupermask(net, {"1.weight": 0.5, "3.weight": 0.5}, seed=0)
    ref_binary = BinarySupermask(_fed_net("cpu"), {"1.weight": 0.5, "3.weight": 0.5}, seed=0)
    for n in binary.names:  # seeded scores are drawn on the CPU: the same on every device
        assert torch.equal(binary.get_scores()[n].cpu(), ref_binary.get_scores()[n])
    for hist in (
        run_hidenseek(sign, clients, xt, yt, rounds=2, local=local, seed=1),
        run_binary_supermask(binary, clients, xt, yt, rounds=2, local=local, seed=1),
        run_fedavg(net, clients, xt, yt, rounds=1, local=local, seed=1),
    ):
        assert all(0.0 <= a <= 1.0 for a in hist.accuracy)
        assert hist.model is not None
        assert all(p.device.type == device for p in hist.model.parameters())
        assert all(v.device.type == device for v in hist.scores.values())
    # Flower's parameter arrays round-trip into scores on the supermask's device
    from neuronkit.pruning.federated.flower import _arrays_to_scores, _scores_to_arrays

    back = _arrays_to_scores(sign, _scores_to_arrays(sign, sign.get_scores()))
    for n, v in sign.get_scores().items():
        assert back[n].device.type == device
        assert torch.equal(back[n][sign.mask(n)], v[sign.mask(n)].float())


def _ftwt_net(device: str):
    from neuronkit.pruning import DigitsCNN
    from neuronkit.pruning.dynamic import DynamicCNN

    torch.manual_seed(0)
    model = DigitsCNN(widths=(4, 6, 5)).eval()
    head = nn.Sequential(model.pool, nn.Flatten(), model.fc)
    return DynamicCNN.from_sequential(model.features, head, ratio=0.8).eval().to(device)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_ftwt_dynamic_pruning_on_device(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from neuronkit.pruning.dynamic import (
        FTWTConfig,
        estimate_flops,
        l1_filter_masks,
        static_keep_counts,
        train_ftwt,
    )

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full-precision convs
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 1, 8, 8, generator=gen)
    y = torch.randint(0, 10, (16,), generator=gen)
    net, ref = _ftwt_net(device), _ftwt_net("cpu")
    est, est_ref = estimate_flops(net, x.to(device)), estimate_flops(ref, x)
    # discrete rules on float outputs: a near-tie may fall the other way on another device
    assert est.keep_fractions == pytest.approx(est_ref.keep_fractions, abs=0.02)
    assert est.macs == pytest.approx(est_ref.macs, rel=0.02)
    out = net.run(x.to(device), "dynamic")
    out_ref = ref.run(x, "dynamic")
    assert out.logits.device.type == device
    assert all((m.cpu() == r).float().mean() > 0.95 for m, r in zip(out.masks, out_ref.masks))
    torch.testing.assert_close(out.logits.cpu(), out_ref.logits, rtol=1e-4, atol=1e-5)
    counts, macs = static_keep_counts(net, x.to(device), 0.5 * float(out.macs[0]))
    masks = l1_filter_masks(net, counts)
    assert all(m.device.type == device for m in masks)
    assert [int(m.sum()) for m in masks] == counts
    assert all(torch.equal(m.cpu(), r) for m, r in zip(masks, l1_filter_masks(ref, counts)))
    net.set_static_masks(masks)
    assert torch.allclose(net.run(x.to(device), "static").macs.cpu(), torch.full((16,), macs))
    cfg = FTWTConfig(epochs=2, batch_size=8, warmup_epochs=1, cooldown=1.0)
    hist = train_ftwt(net, x.to(device), y.to(device), cfg, seed=0)
    assert all(np.isfinite(v).all() for v in hist.values())


LINES = ["the capital of a is b .", "the capital of c is d .", "x works as a e ."] * 2


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_send_and_eigenscore_on_device(device: str) -> None:
    pytest.importorskip("transformers", reason="SeND training needs the transformers extra")
    from neuronkit.pruning.send.corpus import WordTokenizer
    from neuronkit.pruning.send.eigenscore import efficient_eigenscore, eigenscore
    from neuronkit.pruning.send.training import (
        NeuronDropout,
        SeNDConfig,
        record_activations,
        sample_response_embeddings,
        tiny_gpt_neox,
        train_send,
    )

    tok = WordTokenizer.from_texts(LINES)
    ids, mask = (t.to(device) for t in tok.batch(LINES))
    t_ids, t_mask = (t.to(device) for t in tok.batch(["the capital of a is"], eos=False))
    model = tiny_gpt_neox(len(tok), hidden_size=16, layers=2, heads=2, seed=0).to(device)
    ref_model = tiny_gpt_neox(len(tok), hidden_size=16, layers=2, heads=2, seed=0)
    acts = record_activations(model, ids, mask, [0, 1], "mlp")
    torch.testing.assert_close(
        acts, record_activations(ref_model, ids.cpu(), mask.cpu(), [0, 1], "mlp"),
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip
    with NeuronDropout(model, [0], "mlp") as drop:
        drop.set({0: torch.tensor([1, 5], device=device)}, {0: acts.shape[-1]})
        dropped = record_activations(model, ids, mask, [0], "mlp")
        assert bool((dropped[..., [1, 5]] == 0).all())
    cfg = SeNDConfig(steps=4, batch_size=3, checkpoint_every=1, window=2, drop_fraction=0.25)
    hist = train_send(model, ids, mask, t_ids, t_mask, cfg, seed=0)
    assert len(hist.loss) == 4
    assert all(np.isfinite(hist.loss))
    assert all(p.device.type == device for p in model.parameters())
    prompts = [tok.encode("the capital of a is"), tok.encode("x works as")]
    emb = sample_response_embeddings(model, prompts, 4, max_new_tokens=2, seed=0)
    assert emb.device.type == device
    assert emb.shape == (2, 4, 16)
    assert torch.equal(emb, sample_response_embeddings(model, prompts, 4, max_new_tokens=2))
    on_device = torch.Generator(device=device).manual_seed(0)
    emb_gen = sample_response_embeddings(model, prompts, 4, max_new_tokens=2, seed=on_device)
    assert emb_gen.shape == (2, 4, 16)
    z = torch.randn(3, 6, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = eigenscore(z.to(device))
    torch.testing.assert_close(exact.cpu(), eigenscore(z))
    for probes in (3, 8):  # Rademacher probes and the exact trace
        ees = efficient_eigenscore(z.to(device), probes=probes, seed=0)
        assert ees.device.type == device
        torch.testing.assert_close(ees.cpu(), efficient_eigenscore(z, probes=probes, seed=0))
        gen = torch.Generator(device=device).manual_seed(0)
        assert torch.isfinite(efficient_eigenscore(z.to(device), probes=probes, seed=gen)).all()
    torch.testing.assert_close(ees.cpu(), exact.cpu(), rtol=0.05, atol=0.05)


def _task_data(device: str):
    from neuronkit.pruning.bricks.tasks import TaskData, make_task_data

    data = make_task_data(["affine", "reverse"], 24, seq_len=4, n_digits=5, seed=0)
    moved = TaskData(
        data.tokens.to(device), data.targets.to(device), data.task_ids.to(device),
        data.tasks, data.n_digits,
    )  # fmt: skip
    return data, moved


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_bricks_on_device(device: str) -> None:
    from neuronkit.pruning.bricks.discovery import (
        BrickDiscovery,
        ablation_damage,
        ffn_activations,
        random_ablation_masks,
    )
    from neuronkit.pruning.bricks.growing import grow_ffn
    from neuronkit.pruning.bricks.model import BrickTransformer, task_accuracy, train_multitask
    from neuronkit.pruning.bricks.routing import MoEfication, split_ffn

    data, data_d = _task_data(device)
    torch.manual_seed(0)
    ref = BrickTransformer(data.vocab_size, data.seq_len, d_model=8, n_heads=2, d_ff=16)
    model = copy.deepcopy(ref).to(device)
    res = train_multitask(model, data_d, steps=3, batch_size=8, warmup=1, log_every=1)
    assert all(np.isfinite(res.loss))
    ref.load_state_dict({k: v.cpu() for k, v in model.state_dict().items()})
    model.eval(), ref.eval()
    acc = task_accuracy(model, data_d)
    torch.testing.assert_close(acc, task_accuracy(ref, data))
    _, hid, _ = ffn_activations(model, data_d)
    _, hid_ref, _ = ffn_activations(ref, data)
    torch.testing.assert_close(hid[0].cpu(), hid_ref[0], rtol=1e-4, atol=1e-5)
    disc = BrickDiscovery(3, seed=0).fit(model, data_d)
    assert disc.frequency_[0].shape == (2, 16)
    gates = disc.ablation_gates(0)
    masks = random_ablation_masks([4, 4], [16, 16], seed=0)
    dmg = ablation_damage(model, data_d, [masks], base=acc)
    assert torch.allclose(dmg[0], acc - task_accuracy(model, data_d, [(~m).float() for m in masks]))
    assert task_accuracy(model, data_d, gates).shape == (2,)
    assert disc.transform(hid)[0].shape == (hid[0].shape[0], 3)
    # growing keeps the function and the device; the new keys come from a CPU generator
    ffn = model.ffns[0]
    grown, _ = grow_ffn(ffn, 4, method="zero", seed=1)
    grown_ref, _ = grow_ffn(ref.ffns[0], 4, method="zero", seed=1)
    assert all(p.device.type == device for p in grown.parameters())
    torch.testing.assert_close(grown.w_in.weight.cpu(), grown_ref.w_in.weight)
    h = torch.randn(5, 8, generator=torch.Generator().manual_seed(0)).to(device)
    torch.testing.assert_close(grown(h), ffn(h), rtol=1e-5, atol=1e-6)
    # MoEfication: experts, routers and gates live with the FFNs
    labels = split_ffn(ffn, 4, seed=0)
    assert np.array_equal(np.sort(np.bincount(labels)), [4, 4, 4, 4])
    split_ffn(ffn, 4, method="coactivation", hidden=hid[0], seed=0)
    moe = MoEfication(4, router_epochs=1, seed=0).fit(model, data_d)
    assert all(p.device.type == device for r in moe.routers_ for p in r.parameters())
    torch.testing.assert_close(task_accuracy(model, data_d, moe.gates(1.0)), acc)
    assert task_accuracy(model, data_d, moe.oracle_gates(model, 0.5)).shape == (2,)
    assert len(moe.recall(model, data_d, 0.5)) == 2


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_nas_controller_on_device(device: str) -> None:
    from neuronkit.pruning.nas import CellSpace, ENASController, ReinforceConfig, ReinforceTrainer

    space = CellSpace(num_nodes=3)
    ctrl = ENASController(space, hidden=8, seed=0).to(device)
    ref = ENASController(space, hidden=8, seed=0)
    s = ctrl.sample(6, seed=1)  # a CPU generator: the CPU's architectures
    s_ref = ref.sample(6, seed=1)
    assert s.log_prob.device.type == device
    assert [a.ops for a in s.architectures] == [a.ops for a in s_ref.architectures]
    log_prob, log_prob_ref = s.log_prob.detach().cpu(), s_ref.log_prob.detach()
    torch.testing.assert_close(log_prob, log_prob_ref, rtol=1e-5, atol=1e-6)
    on_device = ctrl.sample(4, generator=torch.Generator(device=device).manual_seed(0))
    assert on_device.sequences.device.type == device
    trainer = ReinforceTrainer(ctrl, ReinforceConfig(lr=0.05))
    before = [p.detach().clone() for p in ctrl.parameters()]
    out = trainer.step(s, torch.linspace(0.0, 1.0, 6))  # rewards measured on the CPU
    assert np.isfinite(out["pg_loss"])
    assert any(not torch.equal(p, q) for p, q in zip(ctrl.parameters(), before))
    probs = ctrl.decision_probabilities(s.architectures)
    assert all(p.device.type == device for p in probs)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("device", devices())
def test_gbnn_exported_network_on_device(device: str) -> None:
    from neuronkit.pruning.boosting import GBNNRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X[:, 0] - 2 * X[:, 1] ** 2
    reg = GBNNRegressor(n_units=8, units_per_step=2, max_iter=10, random_state=0).fit(X, y)
    net = reg.to_torch().to(device)
    with torch.no_grad():
        out = net(torch.as_tensor(X).to(device))
    assert out.device.type == device
    np.testing.assert_allclose(out.cpu().numpy()[:, 0], reg.predict(X), rtol=1e-6, atol=1e-8)
