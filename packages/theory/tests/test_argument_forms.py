"""Arguments in forms users have at hand: read-only numpy arrays (copied, not shared with a
tensor torch warns about), 0-d tensors and arrays where a scalar is documented, and big
tensors passed by mistake (named in a short message, not printed whole)."""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import neuronkit.theory as T
from neuronkit.theory._utils import as_float_tensor, check_positive_int, label_tensor
from neuronkit.theory.ntk.optimality import relu_dual


@pytest.fixture
def no_read_only_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.as_tensor refuses a read-only numpy array (torch itself warns once per process:
    "The given NumPy array is not writable ... undefined behavior")."""
    as_tensor = torch.as_tensor

    def spy(data: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        if isinstance(data, np.ndarray) and not data.flags.writeable:
            raise AssertionError("a read-only numpy array was wrapped by torch.as_tensor")
        return as_tensor(data, *args, **kwargs)

    monkeypatch.setattr(torch, "as_tensor", spy)


def _read_only(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


@pytest.mark.usefixtures("no_read_only_arrays")
def test_read_only_arrays_are_copied_before_torch_wraps_them() -> None:
    h = np.random.default_rng(0).normal(size=(30, 4))
    y = np.repeat(np.arange(3), 10)
    h[y == 1] += 3
    ro_h, ro_y = _read_only(h), _read_only(y)
    t = as_float_tensor("x", ro_h, 2, "[N, D]")
    assert not np.shares_memory(t.numpy(), ro_h)
    assert torch.equal(label_tensor("labels", ro_y), torch.as_tensor(y))
    assert T.nc1(ro_h, ro_y) == pytest.approx(T.nc1(h, y))
    fitted = T.DeepNTKClassifier(relu_dual(), depth=2).fit(ro_h, ro_y % 2)
    assert np.array_equal(
        fitted.predict(h), T.DeepNTKClassifier(relu_dual(), 2).fit(h, y % 2).predict(h)
    )
    rho = _read_only(np.array([0.2, 0.4]))
    torch.testing.assert_close(
        T.ntk_recursion(rho, 2, relu_dual()), T.ntk_recursion(rho.copy(), 2, relu_dual())
    )


def test_zero_dimensional_tensors_and_arrays_count_as_integers() -> None:
    assert check_positive_int("steps", torch.tensor(3)) == 3
    assert check_positive_int("steps", np.array(3)) == 3
    with pytest.raises(TypeError, match=r"^steps must be an integer"):
        check_positive_int("steps", torch.tensor(3.5))


CASES: dict[str, tuple[Callable[[torch.Tensor], Any], str]] = {
    "gp x_range": (lambda big: T.data.gp.sample_gp_tasks(2, x_range=big), "x_range must be a pair"),
    "KAN widths": (lambda big: T.KAN(big), "widths must be a sequence"),
    "Lion betas": (lambda big: T.scaling.Lion([torch.zeros(1)], betas=big), "betas must be a pair"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_big_tensor_by_mistake_gets_a_short_message(name: str) -> None:
    call, start = CASES[name]
    with pytest.raises((TypeError, ValueError), match=f"^{start}") as err:
        call(torch.rand(64, 64))
    assert len(str(err.value)) < 250  # the whole tensor was printed: thousands of characters
