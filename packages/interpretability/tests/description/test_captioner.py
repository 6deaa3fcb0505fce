"""Captioners p(d | E): exemplar encoder, beam search, attention-LSTM decoder, HF adapter."""

from __future__ import annotations

import itertools
import math
from types import SimpleNamespace
from typing import ClassVar

import pytest
import torch

from neuronkit.interpretability.description import (
    Captioner,
    ExemplarCaptioner,
    ExemplarEncoder,
    HFCaptioner,
    Vocabulary,
    beam_search,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_encoder_masked_pooling_matches_reference() -> None:
    enc = ExemplarEncoder(width=4, seed=0)
    x = torch.rand(2, 3, 3, 8, 8, generator=_gen(0))
    m = (torch.rand(2, 3, 1, 8, 8, generator=_gen(1)) > 0.5).float()
    m[1, 2] = 0.0
    f = enc(x, m)
    assert f.shape == (2, 3, 12)
    maps = enc.feature_maps(x.reshape(-1, 3, 8, 8))
    w = m.reshape(-1, 1, 8, 8)
    ref = torch.cat([(a * w).sum((2, 3)) / w.sum((2, 3)).clamp_min(1e-12) for a in maps], 1)
    torch.testing.assert_close(f.reshape(-1, 12), ref)
    assert bool((f[1, 2] == 0).all())  # empty mask -> zero features
    torch.testing.assert_close(enc(x[0, :1]), enc(x[0, :1], torch.ones(1, 1, 8, 8)))
    # indexed encoding shares CNN passes but gives the same features
    images = torch.rand(10, 3, 8, 8, generator=_gen(2))
    idx = torch.tensor([[3, 3, 7], [0, 9, 3]])
    masks = (torch.rand(2, 3, 1, 8, 8, generator=_gen(3)) > 0.3).float()
    torch.testing.assert_close(
        enc.encode_indexed(images, idx, masks, batch_size=2), enc(images[idx], masks)
    )
    torch.testing.assert_close(ExemplarEncoder(width=4, seed=0)(x, m), f)  # seeded init


def test_encoder_pretraining_learns_dense_labels() -> None:
    x = torch.zeros(32, 3, 8, 8)
    labels = torch.zeros(32, 1, 8, 8, dtype=torch.long)
    x[:16, 0, 2:6, 2:6] = 1.0  # red squares -> class 1
    labels[:16, 0, 2:6, 2:6] = 1
    x[16:, 2, 2:6, 2:6] = 1.0  # blue squares -> class 2
    labels[16:, 0, 2:6, 2:6] = 2
    enc = ExemplarEncoder(width=8, seed=0)
    before = [p.clone() for p in enc.parameters()]
    history = enc.pretrain(x, labels, epochs=15, batch_size=8, lr=1e-2, seed=0)
    assert history[-1] < 0.3 * history[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, enc.parameters(), strict=True))
    with pytest.raises(TypeError, match="pixel_labels"):
        enc.pretrain(x, labels.float())
    with pytest.raises(ValueError, match="pixel_labels"):
        enc.pretrain(x, labels[:4])
    with pytest.raises(ValueError, match="images"):
        enc.pretrain(x[:, :2], labels)


def test_beam_search_matches_brute_force() -> None:
    vocab_size, eos = 5, 2
    table = torch.log_softmax(torch.randn(vocab_size, vocab_size, generator=_gen(4)), dim=-1)

    def step(tokens: torch.Tensor, state: tuple[torch.Tensor, ...]):
        return table[tokens], state

    got = beam_search(
        step, (torch.zeros(1, 1),), bos=1, eos=eos, beam_size=50, max_length=3, banned=(0, 1)
    )
    words = (3, 4)
    brute = []
    for n in range(0, 4):
        for seq in itertools.product(words, repeat=n):
            path = (1, *seq, eos)
            brute.append((list(seq), float(sum(table[a, b] for a, b in itertools.pairwise(path)))))
    brute.sort(key=lambda x: -x[1])
    assert len(got) == len(brute) == 15
    for (_s1, v1), (_s2, v2) in zip(got, brute, strict=True):
        assert v1 == pytest.approx(v2, abs=1e-5)
    assert got[0][0] == brute[0][0]
    small = beam_search(step, (torch.zeros(1, 1),), bos=1, eos=eos, beam_size=3, max_length=3)
    assert small[0][1] == pytest.approx(brute[0][1], abs=1e-5) or small[0][1] > brute[0][1]
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(step, (torch.zeros(1, 1),), bos=1, eos=eos, beam_size=0, max_length=3)


def _captioner(seed: int = 0) -> ExemplarCaptioner:
    vocab = Vocabulary.from_descriptions(["red shapes", "blue shapes", "shapes"])
    return ExemplarCaptioner(vocab, ExemplarEncoder(width=4, seed=seed), hidden_size=16, seed=seed)


def test_log_prob_is_teacher_forced_chain_rule_and_propose_is_consistent() -> None:
    cap = _captioner()
    assert isinstance(cap, Captioner)
    images = torch.rand(4, 3, 8, 8, generator=_gen(5))
    masks = torch.ones(4, 1, 8, 8)
    lp = cap.log_prob(images, masks, ["red shapes", "shapes"])
    cap.eval()
    with torch.no_grad():
        feats = cap.norm(cap.encode(images[None], masks[None]))
        state = cap.init_state(feats)
        v = cap.vocabulary
        total, token = 0.0, torch.tensor([v.bos])
        for w in [*v.ids("red shapes"), v.eos]:
            logp, state = cap.step(feats, token, state)
            total += float(logp[0, w])
            token = torch.tensor([w])
    assert float(lp[0]) == pytest.approx(total, abs=1e-5)
    proposals = cap.propose(images, masks, beam_size=5, max_length=3)
    assert 1 <= len(proposals) <= 5
    scores = [s for _, s in proposals]
    assert scores == sorted(scores, reverse=True)
    again = cap.log_prob(images, masks, [t for t, _ in proposals])
    torch.testing.assert_close(again, torch.tensor(scores), atol=1e-5, rtol=0)


def test_fit_learns_exemplar_dependent_descriptions() -> None:
    cap = _captioner(1)
    red = torch.zeros(8, 5, 3, 8, 8)
    red[:, :, 0, 2:6, 2:6] = 1.0
    blue = torch.zeros(8, 5, 3, 8, 8)
    blue[:, :, 2, 2:6, 2:6] = 1.0
    images = torch.cat([red, blue])
    masks = torch.ones(16, 5, 1, 8, 8)
    annotations = [["red shapes", "shapes"]] * 8 + [["blue shapes", "shapes"]] * 8
    history = cap.fit(images, masks, annotations, epochs=60, batch_size=8, lr=1e-2, seed=0)
    assert history[-1] < history[0]
    lp_red = cap.log_prob(red[0], masks[0], ["red shapes", "blue shapes", "shapes"]).exp()
    lp_blue = cap.log_prob(blue[0], masks[0], ["red shapes", "blue shapes", "shapes"]).exp()
    assert float(lp_red[0]) > 0.3
    assert float(lp_red[1]) < 0.1
    assert float(lp_blue[1]) > 0.3
    assert float(lp_blue[0]) < 0.1
    assert float(lp_red.sum()) <= 1.0 + 1e-5
    with pytest.raises(ValueError, match="annotations must have one list"):
        cap.fit(images, masks, annotations[:3])
    with pytest.raises(ValueError, match="masks"):
        cap.fit(images, masks[:, :2], annotations)
    with pytest.raises(ValueError, match="features"):
        cap.fit_features(torch.zeros(2, 5, 7), [["a"], ["b"]])


def test_captioner_bad_inputs() -> None:
    cap = _captioner()
    images, masks = torch.rand(3, 3, 8, 8), torch.ones(3, 1, 8, 8)
    with pytest.raises(ValueError, match="masks"):
        cap.log_prob(images, masks[:2], ["shapes"])
    with pytest.raises(TypeError, match="descriptions"):
        cap.log_prob(images, masks, "shapes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="images"):
        cap.propose(images[0], masks[0])
    bad = images.clone()
    bad[0, 0, 0, 0] = math.inf
    with pytest.raises(ValueError, match="images"):
        cap.log_prob(bad, masks, ["shapes"])
    with pytest.raises(TypeError, match="encoder"):
        ExemplarCaptioner(cap.vocabulary, None)  # type: ignore[arg-type]


class _FakeTokenizer:
    words: ClassVar[dict[str, int]] = {"red": 3, "shapes": 4, "blue": 5}

    def __call__(self, texts, padding: bool = True, return_tensors: str = "pt"):
        rows = [[self.words[w] for w in t.split()] + [2] for t in texts]
        width = max(map(len, rows))
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        att = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            att[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": att}

    def batch_decode(self, ids, skip_special_tokens: bool = True):
        inv = {v: k for k, v in self.words.items()}
        return [" ".join(inv[int(i)] for i in row if int(i) in inv) for row in ids]


class _FakeImageToText:
    """Logits depend on the image's mean red intensity and the position only."""

    def __call__(self, pixel_values: torch.Tensor, labels: torch.Tensor) -> SimpleNamespace:
        red = pixel_values[:, 0].mean((1, 2))
        t = torch.arange(labels.shape[1], dtype=torch.float)
        logits = torch.zeros(labels.shape[0], labels.shape[1], 6)
        logits[:, :, 3] = 4 * red[:, None]
        logits[:, :, 4] = t[None]
        return SimpleNamespace(logits=logits)

    def generate(self, pixel_values: torch.Tensor, num_beams: int, **kwargs):
        return torch.tensor([[3, 4, 2], [5, 4, 2]]).repeat(pixel_values.shape[0], 1)


def test_hf_captioner_adapter() -> None:
    model, tok = _FakeImageToText(), _FakeTokenizer()
    cap = HFCaptioner(model, tok, highlight=0.5, candidates=["shapes"])
    assert isinstance(cap, Captioner)
    images = torch.rand(2, 3, 4, 4, generator=_gen(6))
    masks = torch.zeros(2, 1, 4, 4)
    masks[0, :, :2] = 1.0
    shown = cap.pixel_values(images, masks)
    torch.testing.assert_close(shown, images * (0.5 + 0.5 * masks))
    lp = cap.log_prob(images, masks, ["red shapes", "shapes"])
    # reference: mean over exemplars of the summed label log-probs
    ref = []
    for text in ("red shapes", "shapes"):
        enc = tok([text])
        per = []
        for j in range(2):
            out = model(shown[j : j + 1], enc["input_ids"])
            logp = torch.log_softmax(out.logits, -1)[0]
            per.append(sum(float(logp[t, i]) for t, i in enumerate(enc["input_ids"][0])))
        ref.append(sum(per) / 2)
    torch.testing.assert_close(lp, torch.tensor(ref))
    proposals = cap.propose(images, masks, beam_size=2, max_length=4)
    assert {t for t, _ in proposals} == {"red shapes", "blue shapes", "shapes"}
    assert [s for _, s in proposals] == sorted((s for _, s in proposals), reverse=True)
    with pytest.raises(ValueError, match="highlight"):
        HFCaptioner(model, tok, highlight=2.0)
    with pytest.raises(TypeError, match="tokenizer"):
        HFCaptioner(model, None)


def test_a_float64_encoder_runs_in_float64() -> None:
    """Images and masks are cast to the encoder's dtype (a hard .float() broke .double())."""
    from neuronkit.interpretability.description.captioner import ExemplarEncoder

    encoder = ExemplarEncoder(3, 4, seed=0).double()
    masks = torch.rand(2, 3, 1, 8, 8, dtype=torch.float64)
    assert encoder(torch.rand(2, 3, 3, 8, 8), masks).dtype == torch.float64
    assert encoder(torch.rand(2, 3, 3, 8, 8)).dtype == torch.float64


def _modes(module: torch.nn.Module) -> list[bool]:
    return [m.training for m in module.modules()]


def test_captioning_restores_every_submodules_own_mode() -> None:
    cap = _captioner()
    images, masks = torch.rand(2, 3, 8, 8, generator=_gen(0)), torch.ones(2, 1, 8, 8)
    cap.train()
    cap.encoder.eval()  # a frozen encoder the user keeps in eval mode
    modes = _modes(cap)
    cap.log_prob(images, masks, ["red shapes"])
    assert _modes(cap) == modes
    cap.propose(images, masks, beam_size=2, max_length=3)
    assert _modes(cap) == modes
    cap.fit(images[None], masks[None], [["red shapes"]], epochs=1)
    assert _modes(cap) == modes


def test_a_failed_fit_restores_the_modes(monkeypatch) -> None:
    cap = _captioner().eval()
    images, masks = torch.rand(1, 2, 3, 8, 8, generator=_gen(0)), torch.ones(1, 2, 1, 8, 8)

    def fail(*args: object) -> torch.Tensor:
        raise RuntimeError("boom")

    monkeypatch.setattr(cap, "_sequence_log_prob", fail)
    with pytest.raises(RuntimeError, match="boom"):
        cap.fit(images, masks, [["red shapes"]], epochs=1)
    assert not any(_modes(cap))


def test_training_under_no_grad_and_on_inputs_that_require_grad() -> None:
    images, masks = torch.rand(2, 2, 3, 8, 8, generator=_gen(0)), torch.ones(2, 2, 1, 8, 8)
    annotations = [["red shapes"], ["blue shapes"]]
    expected = _captioner().fit(images, masks, annotations, epochs=2, seed=0)
    with torch.no_grad():
        assert _captioner().fit(images, masks, annotations, epochs=2, seed=0) == expected
    cap = _captioner()
    features = cap.encode(images, masks).requires_grad_(True)
    assert cap.fit_features(features, annotations, epochs=2, seed=0) == expected
    assert features.grad is None
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"ExemplarCaptioner\.fit needs"):
        _captioner().fit(images, masks, annotations, epochs=1)

    x = torch.rand(4, 3, 8, 8, generator=_gen(1))
    labels = (x[:, :1] > 0.5).long()
    history = ExemplarEncoder(width=4, seed=0).pretrain(x, labels, epochs=2, batch_size=2)
    enc = ExemplarEncoder(width=4, seed=0)
    enc.layers[0].eval()
    modes = _modes(enc)
    with torch.no_grad():
        xg = x.clone().requires_grad_(True)
        assert enc.pretrain(xg, labels, epochs=2, batch_size=2) == history
    assert xg.grad is None
    assert _modes(enc) == modes


def test_bool_indices_and_complex_exemplars_are_refused_by_name() -> None:
    enc = ExemplarEncoder(width=4, seed=0)
    images = torch.rand(4, 3, 8, 8, generator=_gen(0))
    with pytest.raises(ValueError, match="indices must be an integer"):
        enc.encode_indexed(images, torch.tensor([[True, False]]), torch.ones(1, 2, 1, 8, 8))
    vocab = Vocabulary.from_descriptions(["red circles", "blue squares"])
    cap = ExemplarCaptioner(vocab, enc, embedding_size=4, hidden_size=8)
    masks = torch.ones(2, 1, 8, 8)
    with pytest.raises(TypeError, match="images must be a real-valued tensor"):
        cap.log_prob(images[:2].to(torch.complex64), masks, ["red circles"])
    with pytest.raises(TypeError, match="masks must be a real-valued tensor"):
        cap.propose(images[:2], masks.to(torch.complex64), beam_size=2, max_length=2)


def test_fit_features_without_exemplars_is_refused_and_leaves_the_weights_finite() -> None:
    # k = 0 exemplars used to train on the mean of nothing: NaN loss, NaN weights ever after
    cap = _captioner()
    with pytest.raises(ValueError, match=r"features must be \[S, k, 12\] with S, k >= 1"):
        cap.fit_features(torch.randn(1, 0, 12), [["red shapes"]], epochs=1)
    assert all(bool(p.isfinite().all()) for p in cap.parameters())
    with pytest.raises(TypeError, match="features must be a floating-point tensor"):
        cap.fit_features(torch.ones(1, 2, 12, dtype=torch.long), [["red shapes"]], epochs=1)


def test_encoder_edge_cases_are_named_or_empty() -> None:
    enc = ExemplarEncoder(width=4, seed=0)
    images = torch.rand(3, 3, 5, 5, generator=_gen(1))
    for shape in ((0, 2), (2, 0)):  # used to fail in torch.cat of no CNN batches
        out = enc.encode_indexed(
            images, torch.zeros(shape, dtype=torch.long), torch.ones(*shape, 1, 5, 5)
        )
        assert out.shape == (*shape, 12)
    with pytest.raises(ValueError, match="masks must be finite"):
        enc.encode_indexed(
            images, torch.zeros(1, 2, dtype=torch.long), torch.full((1, 2, 1, 5, 5), math.nan)
        )
    with pytest.raises(ValueError, match=r"pixel_labels must hold A >= 1 label maps"):
        enc.pretrain(images, torch.zeros(3, 0, 5, 5, dtype=torch.long), epochs=1)


def test_beam_search_names_bad_token_ids() -> None:
    def step(tokens: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple]:
        return torch.log_softmax(torch.zeros(len(tokens), 6), -1), state

    def run(**kwargs):  # type: ignore[no-untyped-def]
        args = {"bos": 1, "eos": 2, "beam_size": 2, "max_length": 3, **kwargs}
        return beam_search(step, (torch.zeros(1, 3),), **args)

    with pytest.raises(ValueError, match="eos must be >= 0, got -1"):  # used to read logp[:, -1]
        run(eos=-1)
    with pytest.raises(ValueError, match=r"eos must be < 6 \(the step's vocabulary\), got 9"):
        run(eos=9)
    with pytest.raises(ValueError, match=r"banned must hold token ids < 6 .*got \[0, 9\]"):
        run(banned=[0, 9])
    with pytest.raises(TypeError, match="banned must be a sequence of token ids, got 3"):
        run(banned=3)
    with pytest.raises(TypeError, match="bos must be an integer, got float"):
        run(bos=1.5)


def test_hf_captioner_refuses_a_string_of_candidates_and_integer_images() -> None:
    model, tok = _FakeImageToText(), _FakeTokenizer()
    with pytest.raises(TypeError, match="candidates must be a sequence of strings, got str"):
        HFCaptioner(model, tok, candidates="red shapes")  # used to give one per character
    cap = HFCaptioner(model, tok, image_processor=lambda images, return_tensors: None)
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)  # clamped to [0, 1]: white
    with pytest.raises(TypeError, match=r"images must be a floating-point tensor .*uint8"):
        cap.pixel_values(images, torch.ones(2, 1, 4, 4))
