"""Code/feature alignment: contingency counts, top codes, precision and recall."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuronkit.interpretability.codebook.analysis import code_feature_alignment, code_feature_counts


def test_counts_match_a_loop() -> None:
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(-1, 6, (4, 7, 2), generator=g)
    labels = torch.randint(-1, 3, (4, 7), generator=g)
    counts = code_feature_counts(codes, labels, num_codes=6, num_features=3)
    ref = torch.zeros(6, 3, dtype=torch.long)
    for c_row, y in zip(codes.reshape(-1, 2).tolist(), labels.reshape(-1).tolist()):
        for c in c_row:
            if c >= 0 and y >= 0:
                ref[c, y] += 1
    torch.testing.assert_close(counts, ref)


def test_precision_and_recall_by_hand() -> None:
    # feature 0: code 2 on 3 of 4 tokens; code 2 also fires once on feature 1
    codes = torch.tensor([2, 2, 2, 5, 2, 4, 4, -1])[:, None]
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, -1])
    al = code_feature_alignment(codes, labels, num_codes=6, num_features=3)
    np.testing.assert_array_equal(al.features, [0, 1])  # feature 2 never occurs
    np.testing.assert_array_equal(al.top_code, [2, 4])
    np.testing.assert_allclose(al.precision, [3 / 4, 1.0])
    np.testing.assert_allclose(al.recall, [3 / 4, 2 / 3])
    assert al.code_for(1) == 4
    assert al.distinct_top_codes == 2
    assert al.mean_precision == pytest.approx(0.875)


def test_one_code_per_feature_is_perfect() -> None:
    labels = torch.randint(0, 10, (50,), generator=torch.Generator().manual_seed(1))
    codes = (labels * 3 + 1)[:, None]
    al = code_feature_alignment(codes, labels, num_codes=40, num_features=10)
    assert al.mean_precision == 1.0
    assert al.mean_recall == 1.0


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="codes must have shape"):
        code_feature_counts(
            torch.zeros(3, dtype=torch.long),
            torch.zeros(3, dtype=torch.long),
            num_codes=2,
            num_features=2,
        )
    with pytest.raises(TypeError, match="integer"):
        code_feature_counts(
            torch.zeros(3, 1), torch.zeros(3, dtype=torch.long), num_codes=2, num_features=2
        )
    with pytest.raises(ValueError, match="labels must be < num_features"):
        code_feature_counts(
            torch.zeros(3, 1, dtype=torch.long), torch.full((3,), 5), num_codes=2, num_features=2
        )
    with pytest.raises(ValueError, match="at least one non-negative"):
        code_feature_alignment(
            torch.zeros(3, 1, dtype=torch.long), torch.full((3,), -1), num_codes=2, num_features=2
        )
    al = code_feature_alignment(
        torch.zeros(2, 1, dtype=torch.long),
        torch.zeros(2, dtype=torch.long),
        num_codes=2,
        num_features=2,
    )
    with pytest.raises(ValueError, match="feature must be one of"):
        al.code_for(1)


def test_reference_precision_counts_every_token_and_picks_the_most_precise_code() -> None:
    # feature 0 (tokens 0-3): code 1 on 3 tokens, code 2 on 1 token. Code 1 also fires on 3
    # unlabelled tokens; code 2 never fires elsewhere. The reference's code search
    # (code_search_utils.get_code_precision_and_recall) counts firings over every token and
    # takes the most precise code with recall > 1%: code 2, precision 1.
    codes = torch.tensor([1, 1, 1, 2, 1, 1, 1, 3])[:, None]
    labels = torch.tensor([0, 0, 0, 0, -1, -1, -1, 1])
    old = code_feature_alignment(codes, labels, num_codes=4, num_features=2)
    assert old.top_code[0] == 1
    assert old.precision[0] == pytest.approx(1.0)  # labelled tokens only
    al = code_feature_alignment(
        codes, labels, num_codes=4, num_features=2, precision_over="all", top_code="most_precise"
    )
    assert al.top_code.tolist() == [2, 3]
    np.testing.assert_allclose(al.precision, [1.0, 1.0])
    np.testing.assert_allclose(al.recall, [0.25, 1.0])
    freq_all = code_feature_alignment(
        codes, labels, num_codes=4, num_features=2, precision_over="all"
    )
    assert freq_all.top_code[0] == 1
    assert freq_all.precision[0] == pytest.approx(0.5)
    # a recall floor above code 2's recall leaves code 1
    floor = code_feature_alignment(
        codes,
        labels,
        num_codes=4,
        num_features=2,
        precision_over="all",
        top_code="most_precise",
        min_recall=0.3,
    )
    assert floor.top_code[0] == 1
    with pytest.raises(ValueError, match="precision_over"):
        code_feature_alignment(codes, labels, num_codes=4, num_features=2, precision_over="x")


def test_bool_complex_and_negative_codes_are_refused_by_name() -> None:
    codes = torch.tensor([[0], [1], [2]])
    labels = torch.tensor([0, 1, 1])
    with pytest.raises(TypeError, match="codes must be an integer tensor"):
        code_feature_counts(codes.bool(), labels, num_codes=3, num_features=2)
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        code_feature_counts(codes, labels.bool(), num_codes=3, num_features=2)
    with pytest.raises(TypeError, match="codes must be an integer tensor"):
        code_feature_counts(codes.to(torch.complex64), labels, num_codes=3, num_features=2)
    with pytest.raises(ValueError, match="codes must be >= -1"):
        code_feature_counts(codes - 5, labels, num_codes=3, num_features=2)


def test_codes_without_a_k_axis_entry_are_refused_by_name() -> None:
    # [..., 0] codes used to fail inside a reshape ("cannot reshape tensor of 0 elements")
    codes = torch.zeros(3, 0, dtype=torch.long)
    labels = torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match=r"codes must hold k >= 1 ids per token .*\(3, 0\)"):
        code_feature_counts(codes, labels, num_codes=3, num_features=2)
    with pytest.raises(ValueError, match=r"codes must hold k >= 1 ids per token"):
        code_feature_alignment(codes, labels, num_codes=3, num_features=2)
