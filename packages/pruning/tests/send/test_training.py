"""Tests of SeND training on a tiny GPT-NeoX (neuronkit.pruning.send.training)."""

from __future__ import annotations

import pytest
import torch

from neuronkit.pruning.send.corpus import WordTokenizer
from neuronkit.pruning.send.training import (
    NeuronDropout,
    SeNDConfig,
    decoder_layers,
    language_model_loss,
    neuron_module,
    record_activations,
    sample_response_embeddings,
    tiny_gpt_neox,
    train_send,
)

pytest.importorskip("transformers", reason="SeND training needs the transformers extra")

LINES = ["the capital of a is b .", "the capital of c is d .", "x works as a e ."] * 4


def _setup(seed: int = 0):
    tok = WordTokenizer.from_texts(LINES)
    model = tiny_gpt_neox(len(tok), hidden_size=16, layers=2, heads=2, seed=seed)
    ids, mask = tok.batch(LINES)
    t_ids, t_mask = tok.batch(["the capital of a is", "x works as a"], eos=False)
    return tok, model, ids, mask, t_ids, t_mask


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors


def test_tiny_model_is_seeded_and_found() -> None:
    _, m1, *_ = _setup(0)
    _, m2, *_ = _setup(0)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(a, b)
    assert len(decoder_layers(m1)) == 2
    assert isinstance(neuron_module(m1, -1, "mlp"), torch.nn.Module)


def test_neuron_dropout_zeroes_chosen_units_and_is_removable() -> None:
    _, model, ids, mask, *_ = _setup()
    base = record_activations(model, ids, mask, [0], "mlp")
    drop = NeuronDropout(model, [0], "mlp")
    drop.set({0: torch.tensor([1, 5])}, {0: base.shape[-1]})
    store = {}
    h = neuron_module(model, 0, "mlp").register_forward_hook(
        lambda m, a, o: store.__setitem__("o", o.detach())
    )
    model(input_ids=ids, attention_mask=mask)
    h.remove()
    # the recording hook runs after the dropout hook, so it sees the dropped output
    assert torch.all(store["o"][..., [1, 5]] == 0)
    with drop.suspended():
        again = record_activations(model, ids, mask, [0], "mlp")
    assert torch.allclose(again, base)
    out_dropped = model(input_ids=ids, attention_mask=mask).logits
    drop.remove()
    out_plain = model(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(out_dropped, out_plain)
    assert torch.allclose(record_activations(model, ids, mask, [0], "mlp"), base)


def test_train_send_drops_records_and_cleans_up() -> None:
    _, model, ids, mask, t_ids, t_mask = _setup()
    cfg = SeNDConfig(steps=12, batch_size=4, checkpoint_every=2, window=2, drop_fraction=0.25)
    hist = train_send(model, ids, mask, t_ids, t_mask, cfg, seed=0)
    assert len(hist.loss) == 12
    assert hist.checkpoints == [0, 2, 4, 6, 8, 10]
    assert [d["step"] for d in hist.drops] == [2, 6, 10]
    # default site "hidden": a quarter of the layer's 16 output-embedding indices
    assert all(len(d["indices"]) == int(0.25 * 16) for d in hist.drops)
    for m in model.modules():
        assert not m._forward_hooks


def test_drop_fraction_zero_is_plain_training_with_same_order() -> None:
    _, m1, ids, mask, t_ids, t_mask = _setup()
    _, m2, *_ = _setup()
    cfg = SeNDConfig(steps=5, batch_size=4, drop_fraction=0.0)
    h1 = train_send(m1, ids, mask, t_ids, t_mask, cfg, seed=3)
    h2 = train_send(m2, ids, mask, t_ids, t_mask, cfg, seed=3)
    assert h1.loss == h2.loss
    assert not h1.drops
    assert language_model_loss(m1, ids, mask) < 1.1 * h1.loss[0]


def test_sample_response_embeddings_shapes_and_seed() -> None:
    tok, model, *_ = _setup()
    prompts = [tok.encode("the capital of a is"), tok.encode("x works as")]
    e1 = sample_response_embeddings(model, prompts, 4, max_new_tokens=2, seed=0)
    e2 = sample_response_embeddings(model, prompts, 4, max_new_tokens=2, seed=0)
    assert e1.shape == (2, 4, 16)
    assert torch.equal(e1, e2)


def test_bad_inputs() -> None:
    _tok, model, ids, mask, t_ids, t_mask = _setup()
    with pytest.raises(ValueError, match="site"):
        neuron_module(model, 0, "attention")
    with pytest.raises(ValueError, match="layer must lie"):
        neuron_module(model, 5)
    with pytest.raises(ValueError, match="drop_fraction"):
        SeNDConfig(drop_fraction=1.0)
    with pytest.raises(ValueError, match="window"):
        SeNDConfig(window=1)
    with pytest.raises(ValueError, match="release_steps must leave room for a drop"):
        SeNDConfig(steps=6, checkpoint_every=1, window=2, release_steps=5)
    SeNDConfig(steps=6, checkpoint_every=1, window=2, release_steps=4)  # drops at step 1
    with pytest.raises(ValueError, match="input_mask must match"):
        train_send(model, ids, mask[:, :-1], t_ids, t_mask, SeNDConfig(steps=1, drop_fraction=0))
    with pytest.raises(ValueError, match="hidden_size must be divisible"):
        tiny_gpt_neox(10, hidden_size=10, heads=3)
    with pytest.raises(ValueError, match="k"):
        sample_response_embeddings(model, [[1, 2]], 1)
    with pytest.raises(ValueError, match="distinct"):
        NeuronDropout(model, [0, -2], "mlp")
    with pytest.raises(ValueError, match="decoder layers"):
        decoder_layers(torch.nn.Linear(2, 2))


def test_nothing_is_dropped_in_the_release_steps() -> None:
    _, model, ids, mask, t_ids, t_mask = _setup()
    cfg = SeNDConfig(
        steps=12, batch_size=4, checkpoint_every=2, window=2, drop_fraction=0.25, release_steps=5
    )
    hist = train_send(model, ids, mask, t_ids, t_mask, cfg, seed=0)
    assert [d["step"] for d in hist.drops] == [2, 6]  # the selection at step 10 is released
    assert all(step < 7 for step in hist.checkpoints)


def test_a_failed_set_keeps_every_mask() -> None:
    """``set`` checks every layer before it installs any mask: an out-of-range index (or a
    layer missing from ``width``) in a later layer leaves the earlier ones as they were."""
    _, model, *_ = _setup()
    with NeuronDropout(model, [0, 1], "mlp") as drop:
        drop.set({1: torch.tensor([2])}, {1: 8})
        before = drop.dropped()
        bad = (
            ({0: 8, 1: 8}, [99], r"dropped\[1\] indices must lie in \[0, 8\)"),
            ({0: 8}, [3], "width must give the neuron count of layer 1"),
        )
        for width, idx, match in bad:
            with pytest.raises(ValueError, match=match):
                drop.set({0: torch.tensor([1]), 1: torch.tensor(idx)}, width)
            after = drop.dropped()
            assert after.keys() == before.keys()
            assert all(torch.equal(after[k], v) for k, v in before.items())
            assert after[0].numel() == 0
            assert after[1].tolist() == [2]


def test_a_model_with_a_dropper_pickles_and_its_copies_keep_the_masks_of_their_time() -> None:
    import copy
    import pickle

    _, model, ids, *_ = _setup()
    model.eval()
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    dropper = NeuronDropout(model, [0], "mlp")
    dropper.set({0: torch.arange(32)}, {0: 64})
    with torch.no_grad():
        dropped = model(input_ids=ids).logits
    assert not torch.allclose(dropped, plain)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        dropper.set(None)  # the original stops dropping ...
        with torch.no_grad():
            torch.testing.assert_close(twin(input_ids=ids).logits, dropped)  # ... the copy not
            torch.testing.assert_close(model(input_ids=ids).logits, plain)
        dropper.set({0: torch.arange(32)}, {0: 64})
    dropper.remove()
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, plain)


def test_record_activations_checks_every_layer_before_hooking_any() -> None:
    _, model, ids, mask, *_ = _setup()
    with pytest.raises(ValueError, match="layer must lie in"):
        record_activations(model, ids, mask, [0, 5], "mlp")
    assert not any(m._forward_hooks for m in model.modules())


def test_train_send_ignores_the_callers_grad_mode() -> None:
    """Under torch.no_grad() training failed with torch's own message; token tensors made
    under torch.inference_mode() could not be saved for backward."""
    _, m1, ids, mask, t_ids, t_mask = _setup()
    _, m2, *_ = _setup()
    cfg = SeNDConfig(steps=3, batch_size=4, checkpoint_every=1, window=2, drop_fraction=0.25)
    h1 = train_send(m1, ids, mask, t_ids, t_mask, cfg, seed=3)
    with torch.inference_mode():
        ids_i, mask_i = ids.clone(), mask.clone()
    with torch.no_grad():
        h2 = train_send(m2, ids_i, mask_i, t_ids, t_mask, cfg, seed=3)
    assert h1.loss == h2.loss
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^train_send needs autograd"):
        train_send(m2, ids, mask, t_ids, t_mask, cfg, seed=3)


def test_train_send_names_float16_parameters_adamw_cannot_train() -> None:
    """AdamW's eps (1e-8) is 0 in float16: a float16 model's weights turned NaN after one step
    and training failed later on "activations must be finite" (float32 was named)."""
    _, model, ids, mask, t_ids, t_mask = _setup()
    model = model.half()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = SeNDConfig(steps=3, batch_size=4, checkpoint_every=1, window=2, layers=(0,))
    with pytest.raises(TypeError, match=r"model: Adam cannot train float16 parameters \('"):
        train_send(model, ids, mask, t_ids, t_mask, config)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    bf16 = train_send(model.bfloat16(), ids, mask, t_ids, t_mask, config)  # what it suggests
    assert all(torch.isfinite(torch.tensor(x)) for x in bf16.loss)
