"""Validation, atomic IO, seeding, device selection and weight IO."""

from __future__ import annotations

import importlib
import json
import math
import random
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuronkit.common import (
    as_float_array,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    check_choice,
    check_class_labels,
    check_finite,
    check_floating,
    check_interval,
    check_ndim,
    check_number,
    check_probability,
    check_seed,
    check_shape,
    check_type,
    correct_predictions,
    discover,
    host_array,
    integer_dtype,
    plain_tensor,
    reproduce,
    seed_everything,
    under_torch_func,
)
from neuronkit.common.io import atomic_path, replace_dir


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: check_number("tau", -1.0, gt=0), ValueError, "tau must be > 0, got -1.0"),
        (lambda: check_number("T", 0, ge=1, integer=True), ValueError, "T must be >= 1, got 0"),
        (lambda: check_number("T", 2.5, integer=True), TypeError, "T must be an integer"),
        (lambda: check_number("lr", True), TypeError, "lr must be a real number"),
        (lambda: check_number("lr", math.inf), ValueError, "lr must be finite"),
        (lambda: check_probability("p", 1.5), ValueError, "p must be <= 1"),
        (lambda: check_probability("ratio", 1.0, open_right=True), ValueError, "ratio must be < 1"),
        (
            lambda: check_choice("reset", "zero", ["subtract", "none"]),
            ValueError,
            "reset must be one of",
        ),
        (lambda: check_type("x", 3, str), TypeError, "x must be str, got int"),
        (
            lambda: check_ndim("x", np.zeros((2, 3)), 3, "[T, B, N]"),
            ValueError,
            r"x must have 3 dimensions \[T, B, N\], got ndarray of shape \(2, 3\)",
        ),
        (lambda: check_ndim("x", [1, 2], 1), TypeError, "x must be an array or tensor"),
        (
            lambda: check_shape("state", np.zeros((2, 3)), (2, 4)),
            ValueError,
            r"state must have shape \[2, 4\]",
        ),
        (lambda: check_finite("x", np.array([1.0, np.nan])), ValueError, "x must be finite"),
        (lambda: as_float_array("x", "1.5"), TypeError, "x must be a real array, got str"),
        (
            lambda: as_float_array("pts", [[1.0], [1.0, 2.0]], "[n, d]"),
            TypeError,
            r"pts must be a real array \[n, d\], got list",
        ),
        (lambda: check_choice("mode", True, [1, 2]), ValueError, "mode must be one of"),
        (
            lambda: as_float_array("z", np.array([1.0 + 2.0j])),
            TypeError,
            r"z must be a real array, got ndarray \(complex values\)",
        ),
        (
            lambda: check_finite("x", np.array([1.0, np.nan], dtype=object)),
            ValueError,
            "x must be finite",
        ),
        # None would become NaN, strings would be parsed, dates read as day counts
        (lambda: as_float_array("x", [1.0, None]), TypeError, "x must be a real array"),
        (lambda: as_float_array("x", ["1.5", "2"]), TypeError, "x must be a real array"),
        (lambda: check_interval("c", np.array(5.0)), TypeError, "c must be a"),
        (lambda: check_interval("c", {0: 1, 2: 3}), TypeError, "c must be a"),
        (lambda: check_seed(10**400), ValueError, "seed must be < 2"),
        (lambda: check_number("n", 10**400, le=10), ValueError, "n must be <= 10"),
        # were OverflowError: int too large to convert to float
        (lambda: check_interval("c", (10**400, 2)), ValueError, r"c\[0\] must be within float"),
        # were AttributeError: 'list' object has no attribute 'min' / TypeError: len() of ...
        (lambda: check_class_labels("y", [0, 5], 3), ValueError, r"y must hold class labels"),
        (lambda: check_class_labels("y", np.array(1), 3), TypeError, r"y must be \[N\] class"),
        (lambda: check_class_labels("y", "abc", 3), TypeError, r"y must be \[N\] class"),
        (lambda: check_class_labels("y", 3, 3), TypeError, r"y must be \[N\] class"),
        (lambda: check_class_labels("y", np.array(["a"]), 3), TypeError, "y must hold integer"),
        # was ValueError: cannot convert float NaN to integer
        (lambda: check_class_labels("y", np.array([0.0, np.nan]), 3), ValueError, "y must hold"),
        (  # 0.5 was truncated to class 0
            lambda: check_class_labels("y", np.array([0.0, 0.5]), 3),
            ValueError,
            "y must hold integer class labels, got a fractional value",
        ),
        # was AttributeError: 'types.UnionType' object has no attribute '__name__'
        (lambda: check_type("x", "s", int | None), TypeError, r"x must be int \| None, got str"),
        # were "The truth value of an array ... is ambiguous", not naming the argument
        (lambda: check_choice("mode", np.array([1, 2]), [1, 2]), ValueError, "mode must be one"),
        # was numpy's "setting an array element with a sequence"
        (lambda: check_finite("x", [[1.0], [1.0, 2.0]]), TypeError, "x must be an array or"),
        # non-bool flags were taken as True
        (lambda: seed_everything(0, deterministic="no"), TypeError, "deterministic must be bool"),
        (lambda: discover(strict="no"), TypeError, "strict must be bool"),
        (lambda: reproduce(["a.b"]), TypeError, "reproduction_id must be str, got list"),
        # was AttributeError: 'list' object has no attribute 'argmax'
        (lambda: correct_predictions([[0.1, 0.9]], [1]), TypeError, "logits must be a tensor"),
    ],
)
def test_errors_name_the_argument(call, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        call()


def test_torch_and_plot_helpers_name_bad_arguments() -> None:
    pytest.importorskip("torch", reason="select_device and module_placement need torch")
    pytest.importorskip("matplotlib", reason="new_figure needs matplotlib")
    from neuronkit.common import module_placement, new_figure, select_device

    with pytest.raises(ValueError, match="device must be a torch device"):
        select_device(10**400)  # was torch's "Overflow when unpacking long long"
    with pytest.raises(TypeError, match=r"module must be an nn\.Module, got list"):
        module_placement([1])  # was AttributeError: 'list' object has no attribute 'parameters'
    with pytest.raises(TypeError, match="nrows must be an integer"):
        new_figure("2")  # was matplotlib's "can't multiply sequence by non-int of type 'float'"
    with pytest.raises(ValueError, match="ncols must be >= 1"):
        new_figure(1, -1)  # was "figure size must be positive finite not (-4.0, 3.2)"


def test_check_finite_takes_python_ints_beyond_float_range() -> None:
    check_finite("x", [10**400, 1])  # was OverflowError: int too large to convert to float
    check_finite("x", 10**400)


def test_checks_name_a_missing_array_as_a_type_error() -> None:
    for value, got in [(None, "got None"), ([1.0, None], "got a None entry")]:
        with pytest.raises(TypeError, match=f"x must be an array or tensor of numbers, {got}"):
            check_finite("x", value)  # was "x must be finite, got NaN or infinity in None"
    for value, shape in [([[1, 2]], (1, 2)), (3.0, ())]:  # a list: ValueError; 3.0 passed
        with pytest.raises(TypeError, match=r"x must be an array or tensor, got (list|float)"):
            check_shape("x", value, shape)
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got list"):
        check_floating("x", [1.0])  # was AttributeError: 'list' object has no attribute ...


def test_atomic_writes_name_bad_arguments_and_leave_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    for call, error, message in [
        # were AttributeError: 'bytes' object has no attribute 'encode' / memoryview's message
        (lambda: atomic_write_text(tmp_path / "t.txt", b"x"), TypeError, "text must be str"),
        (lambda: atomic_write_bytes(tmp_path / "b.bin", "x"), TypeError, "data must be bytes"),
        # were "[Errno 21] Is a directory: '.../.folder.xyz.tmp' -> ..." (the temporary file)
        # and "[Errno 17] File exists" (from mkdir)
        (lambda: atomic_write_json(tmp_path / "folder", {}), IsADirectoryError, "not a folder"),
        (lambda: atomic_write_json(tmp_path / "file/a.json", {}), NotADirectoryError, "a file"),
        (lambda: atomic_write_json(tmp_path / "s.json", {"x": {1}}), TypeError, "set"),
    ]:
        with pytest.raises(error, match=message):
            call()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file", "folder"]
    (tmp_path / "to_folder").symlink_to(tmp_path / "folder")
    atomic_write_text(tmp_path / "to_folder", "x")  # a link is replaced, as before
    assert (tmp_path / "to_folder").read_text() == "x"
    assert (tmp_path / "folder").is_dir()


def test_as_float_array_reads_what_numpy_reads() -> None:
    out = as_float_array("x", [[1, 2], [3, 4]])
    assert out.dtype == np.float64
    assert out.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_as_float_array_names_sparse_input() -> None:
    class Sparse:  # scipy.sparse's interface: numpy read it as a 0-d object array
        nnz = 1

        def toarray(self) -> np.ndarray:
            return np.eye(2)

    with pytest.raises(
        TypeError,
        match=r"^x must be a dense real array \[n, d\], got the sparse "
        r"Sparse \(sparse input is not supported: densify it with \.toarray",
    ):
        as_float_array("x", Sparse(), "[n, d]")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_as_float_array_reads_half_precision_tensors_exactly(dtype: str) -> None:
    torch = pytest.importorskip("torch", reason="tensors need torch")
    x = torch.tensor([[0.1, -2.5], [3.0, 1e-3]], dtype=getattr(torch, dtype), requires_grad=True)
    out = as_float_array("x", x)  # numpy has no bfloat16: 0.1.10 raised TypeError
    assert out.dtype == np.float64
    assert out.tolist() == x.detach().double().tolist()


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_host_array_upcasts_low_precision_and_leaves_the_rest(dtype: str) -> None:
    torch = pytest.importorskip("torch", reason="tensors need torch")
    x = (torch.randint(-32, 33, (3, 2)).float() / 8).requires_grad_(True)  # exact in both
    arr = host_array((x * 1).to(getattr(torch, dtype)))  # in an autograd graph
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr, x.detach().numpy())
    assert host_array(torch.arange(3)).dtype == np.int64
    assert host_array(torch.ones(2, dtype=torch.float64)).dtype == np.float64
    listed = [[1.0, 2.0]]
    assert host_array(listed) is listed


def test_checks_read_tensors_inside_torch_func_transforms() -> None:
    """vmap's batched tensors refuse ``.item()``: checks read the plain tensor beneath, which
    holds every example, so a NaN in one example is still found."""
    torch = pytest.importorskip("torch", reason="tensors need torch")
    from torch.func import grad, vmap

    x = torch.tensor([[0.5, 1.0], [2.0, 3.0]])
    assert plain_tensor(x) is x
    assert not under_torch_func()
    assert vmap(lambda row: torch.tensor(under_torch_func()))(x).all()
    with torch.autograd.forward_ad.dual_level():  # dual tensors take no out= either
        assert under_torch_func()
    assert not under_torch_func()
    assert plain_tensor([1.0]) == [1.0]
    seen = []
    vmap(lambda row: seen.append(plain_tensor(row)) or row)(x)
    assert seen[0] is x  # the tensor under the batched wrapper

    def loss(row: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        check_finite("row", row)
        check_class_labels("label", label.unsqueeze(0), 3)
        return row.sum()

    assert vmap(grad(loss))(x, torch.tensor([0, 2])).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    with pytest.raises(ValueError, match="row must be finite"):
        vmap(grad(loss))(torch.tensor([[0.5, 1.0], [2.0, math.nan]]), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"label must hold class labels in \[0, 2\]"):
        vmap(grad(loss))(x, torch.tensor([0, 3]))


def test_valid_inputs_pass() -> None:
    check_shape("x", np.zeros((2, 3)), (None, 3))
    check_finite("labels", np.array([1, 2, 3]))
    assert check_choice("mode", "a", ["a", "b"]) == "a"


@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(0, 10))
def test_check_number_bounds_property(value: float, bound: float) -> None:
    if value > bound:
        check_number("x", value, gt=bound)
    else:
        with pytest.raises(ValueError, match="x must be >"):
            check_number("x", value, gt=bound)


def test_atomic_write_replaces_or_keeps(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.txt"
    atomic_write_text(target, "one")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "one"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]
    assert target.stat().st_mode & 0o777 == 0o644  # not mkstemp's owner-only 0600


def test_replace_dir_keeps_the_old_folder_when_the_move_fails(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "old.txt").write_text("old")
    with pytest.raises(FileNotFoundError):
        replace_dir(tmp_path / "missing", dst)
    assert (dst / "old.txt").read_text() == "old"
    new = tmp_path / "new"
    new.mkdir()
    replace_dir(new, dst)
    assert list(dst.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst"]  # nothing left behind


def test_seed_everything_takes_numpy_integers() -> None:
    assert seed_everything(np.int64(3)).random() == seed_everything(3).random()


def test_json_makes_numpy_and_nan_safe(tmp_path: Path) -> None:
    path = atomic_write_json(
        tmp_path / "r.json",
        {"a": np.float32(1.5), "b": np.arange(3), "c": math.nan, "d": (1, math.inf)},
    )
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": [1, None]}


def test_seed_everything_repeats() -> None:
    a = (seed_everything(5).random(), random.random(), np.random.random())  # noqa: NPY002
    b = (seed_everything(5).random(), random.random(), np.random.random())  # noqa: NPY002
    assert a == b
    with pytest.raises(ValueError, match="seed must be >= 0"):
        seed_everything(-1)


def test_torch_generator_seeds_and_passes_through() -> None:
    torch = pytest.importorskip("torch", reason="torch_generator needs torch")
    from neuronkit.common import torch_generator

    a = torch.rand(3, generator=torch_generator(7))
    assert torch.equal(a, torch.rand(3, generator=torch_generator(7)))
    gen = torch.Generator()
    assert torch_generator(gen) is gen
    assert isinstance(torch_generator(None), torch.Generator)
    with pytest.raises(ValueError, match="seed"):
        torch_generator(-1)
    with pytest.raises(ValueError, match="seed must be < "):  # was torch's overflow message
        torch_generator(2**70)


def test_torch_generator_without_seed_follows_the_global_seed() -> None:
    torch = pytest.importorskip("torch", reason="torch_generator needs torch")
    from neuronkit.common import torch_generator

    draws = []
    for _ in range(2):  # seed=None drew from the OS: seed_everything did not repeat it
        seed_everything(3)
        draws.append(torch.rand(2, generator=torch_generator(None)))
    assert torch.equal(draws[0], draws[1])
    with torch.device("meta"):  # the draw stays on the CPU under any default device
        assert torch_generator(None).device == torch.device("cpu")


def test_torch_rng_seeded_forks_and_seeds_the_global_rng() -> None:
    torch = pytest.importorskip("torch", reason="torch_rng_seeded needs torch")
    from neuronkit.common import torch_generator, torch_rng_seeded

    torch.manual_seed(0)
    state = torch.get_rng_state()
    with torch_rng_seeded(5):
        a = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(1)
    with torch_rng_seeded(5):
        assert torch.equal(torch.rand(3), a)  # the seed, not the caller's state
    with torch_rng_seeded(5):  # not the stream of a Generator seeded with 5 (the batch order)
        assert not torch.equal(torch.rand(3), torch.rand(3, generator=torch_generator(5)))
    with pytest.raises(TypeError, match="seed"), torch_rng_seeded(1.5):  # type: ignore[arg-type]
        pass


def test_module_placement_reads_device_and_floating_dtype() -> None:
    torch = pytest.importorskip("torch", reason="module_placement needs torch")
    from neuronkit.common import module_placement

    cpu = torch.device("cpu")
    assert module_placement(torch.nn.Linear(2, 2).double()) == (cpu, torch.float64)
    assert module_placement(torch.nn.ReLU()) == (cpu, torch.get_default_dtype())
    counter = torch.nn.Module()
    counter.register_buffer("steps", torch.zeros((), dtype=torch.long))
    assert module_placement(counter) == (cpu, torch.get_default_dtype())  # no float parameter
    with torch.device("meta"):
        assert module_placement(torch.nn.Linear(2, 2))[0].type == "meta"


def test_weights_round_trip(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="weight IO needs the [weights] extra")
    pytest.importorskip("safetensors", reason="weight IO needs the [weights] extra")
    from neuronkit.common import load_weights, save_weights, select_device

    layer = torch.nn.Linear(3, 2)
    path = save_weights(layer, tmp_path / "w.safetensors", metadata={"paper": "x"})
    other = load_weights(path, torch.nn.Linear(3, 2))
    assert torch.equal(other.weight, layer.weight)
    with pytest.raises(FileNotFoundError, match="path must be an existing"):
        load_weights(tmp_path / "missing.safetensors")
    with pytest.raises(TypeError, match="module_or_state must be"):
        save_weights([1, 2], tmp_path / "x.safetensors")
    # were AttributeErrors ('list' object has no attribute 'items' / 'state_dict'), safetensors'
    # "argument 'tensor_dict'", and a string flag taken as True
    with pytest.raises(TypeError, match="metadata must map str to str, got"):
        save_weights(layer, tmp_path / "x.safetensors", metadata=["paper"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="module_or_state's keys must be str"):
        save_weights({1: torch.zeros(1)}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match=r"module must be an nn\.Module or None"):
        load_weights(path, [layer])
    with pytest.raises(TypeError, match="strict must be bool"):
        load_weights(path, torch.nn.Linear(3, 2), strict="no")  # type: ignore[arg-type]
    assert not (tmp_path / "x.safetensors").exists()
    assert select_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="device must be"):
        select_device("not-a-device")


def test_weights_keep_a_modules_extra_state(tmp_path: Path) -> None:
    """A module's non-tensor extra state goes into the file's metadata and comes back."""
    torch = pytest.importorskip("torch", reason="weight IO needs the [weights] extra")
    pytest.importorskip("safetensors", reason="weight IO needs the [weights] extra")
    from neuronkit.common import load_weights, save_weights

    class Mode(torch.nn.Linear):
        hard = False

        def get_extra_state(self) -> dict[str, bool]:
            return {"hard": self.hard}

        def set_extra_state(self, state: dict[str, bool]) -> None:
            self.hard = state["hard"]

    saved = Mode(3, 2)
    saved.hard = True
    path = save_weights(saved, tmp_path / "w.safetensors", metadata={"paper": "x"})
    loaded = load_weights(path, Mode(3, 2))
    assert loaded.hard is True
    assert torch.equal(loaded.weight, saved.weight)
    assert load_weights(path)["_extra_state"] == {"hard": True}
    with pytest.raises(ValueError, match="reserved key"):
        save_weights(saved, tmp_path / "x.safetensors", metadata={"neuronkit.extra_state": "{}"})
    with pytest.raises(TypeError, match="must be JSON-serializable"):
        save_weights({"w": torch.ones(1), "bad": object()}, tmp_path / "y.safetensors")
    with pytest.raises(TypeError, match="int keys into strings or tuples into lists"):
        save_weights({"w": torch.ones(1), "lossy": {1: (2, 3)}}, tmp_path / "z.safetensors")
    assert not (tmp_path / "z.safetensors").exists()
    (tmp_path / "empty.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match=r"path .*empty\.safetensors.* is not a readable"):
        load_weights(tmp_path / "empty.safetensors")
    state = torch.get_rng_state()
    seed_everything(1)
    x = torch.rand(3)
    seed_everything(1)
    assert torch.equal(x, torch.rand(3))
    torch.set_rng_state(state)


@given(
    st.lists(
        st.floats(allow_nan=True, allow_infinity=True, width=64)
        | st.sampled_from([1e308, -1e308]),  # finite entries whose sum overflows
        min_size=1,
        max_size=8,
    )
)
def test_check_finite_raises_exactly_when_an_entry_is_not_finite(values: list[float]) -> None:
    arr = np.asarray(values)
    if all(math.isfinite(v) for v in values):
        check_finite("x", arr)
    else:
        with pytest.raises(ValueError, match="x must be finite"):
            check_finite("x", arr)


def test_value_checks_skip_while_tracing() -> None:
    """``check_finite`` reads values: under ``torch.fx`` and ``torch.export`` it is skipped (it
    raised a proxy TraceError / GuardOnDataDependentSymNode), in eager mode it still raises."""
    torch = pytest.importorskip("torch", reason="tracing needs torch")
    from neuronkit.common import values_hidden

    class Checked(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            check_finite("x", x)
            return x * 2

    x = torch.ones(3)
    assert not values_hidden(x)
    assert not values_hidden(np.ones(3))
    graph = torch.fx.symbolic_trace(Checked())
    assert torch.equal(graph(x), x * 2)
    exported = torch.export.export(Checked(), (x,)).module()
    assert torch.equal(exported(x), x * 2)
    with pytest.raises(ValueError, match="x must be finite"):
        Checked()(torch.tensor([1.0, math.nan]))


def test_run_readme_examples_runs_examples_in_order_and_imports_of_sketches(
    tmp_path: Path,
) -> None:
    from neuronkit.common.testing import run_readme_examples

    readme = tmp_path / "README.md"
    readme.write_text(
        "# demo\n\n```python\nimport math\nvalue = math.sqrt(16)\n```\n\ntext\n\n"
        "```python\n# sketch: model is yours\nfrom math import floor\nmodel(floor)\n```\n\n"
        "```python\nassert value == 4.0\n```\n\n```\nnot python\n```\n",
        encoding="utf-8",
    )
    assert run_readme_examples(readme) == 2  # the sketch's call of `model` never runs

    readme.write_text("```python\nvalue = 1 / 0\n```\n", encoding="utf-8")
    with pytest.raises(ZeroDivisionError):
        run_readme_examples(readme)
    readme.write_text("```python\n# sketch: x is yours\nfrom math import no_such\n```\n")
    with pytest.raises(ImportError, match="no_such"):
        run_readme_examples(readme)
    readme.write_text("# no examples\n", encoding="utf-8")
    with pytest.raises(ValueError, match="readme must contain"):
        run_readme_examples(readme)


def test_this_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from neuronkit.common.testing import run_readme_examples

    monkeypatch.chdir(tmp_path)
    assert run_readme_examples(Path(__file__).resolve().parents[1] / "README.md") >= 1


def test_run_docstring_examples_counts_and_reports_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neuronkit.common.testing import run_docstring_examples

    pkg = tmp_path / "nk_doc_demo"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Demo.\n\n>>> 1 + 1\n2\n"""\n', encoding="utf-8")
    (pkg / "sub" / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "sub" / "mod.py").write_text(
        'def f():\n    """>>> f()\n    [0, 1, ..., 9]\n    """\n    return list(range(10))\n',
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run_docstring_examples("nk_doc_demo") == 2  # submodules too; ELLIPSIS on

    (pkg / "sub" / "bad.py").write_text('"""\n>>> 2 * 2\n5\n"""\n', encoding="utf-8")
    with pytest.raises(AssertionError, match="1 of 3 docstring examples failed"):
        run_docstring_examples("nk_doc_demo")


def test_this_package_docstring_examples_run() -> None:
    from neuronkit.common.testing import run_docstring_examples

    assert run_docstring_examples("neuronkit.common") >= 1


def test_bad_argument_problems_flags_unclear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neuronkit.common.testing import bad_argument_problems

    (tmp_path / "nk_args_demo.py").write_text(
        "__all__ = ['clear', 'crashes', 'vague', 'accepts', 'no_args', 'Shape', 'text']\n"
        "def clear(x, *, n):\n"
        "    raise TypeError(f'x must be a tensor, got {type(x).__name__}')\n"
        "def crashes(x):\n    return x.shape\n"
        "def vague(x):\n    return float(x)\n"
        "def accepts(x):\n    return x\n"
        "def no_args(x=1):\n    return x\n"
        "class Shape:\n"
        "    def __init__(self, size):\n"
        "        raise ValueError(f'size must be a positive int, got {size!r}')\n"
        "def text(s):\n    return s.upper()\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    problems = bad_argument_problems("nk_args_demo", {"text": "takes any string"})
    assert [p.split(":")[0] for p in problems] == ["accepts", "crashes", "vague"]
    assert "AttributeError" in problems[1]
    assert "names no argument" in problems[2]
    assert bad_argument_problems("nk_args_demo", {"nope": "x"})[0].startswith("exempt names")


def test_check_seed_takes_64_bit_seeds() -> None:
    check_seed(0)
    check_seed(2**64 - 1)
    check_seed(np.int64(3))
    with pytest.raises(ValueError, match=r"seed must be < 2\*\*64"):
        check_seed(2**64)
    with pytest.raises(ValueError, match="run_seed must be >= 0"):
        check_seed(-1, "run_seed")
    with pytest.raises(TypeError, match="seed must be an integer"):
        check_seed(1.5)
    with pytest.raises(TypeError, match="seed must be an integer"):
        check_seed(True)


def test_estimator_params_follow_the_constructor() -> None:
    """get_params reads the constructor's arguments; set_params rebuilds through __init__, so
    arguments are validated again and derived settings follow."""
    from neuronkit.common import EstimatorParams

    class Ridge(EstimatorParams):
        def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True) -> None:
            check_number("alpha", alpha, ge=0)
            self.alpha = float(alpha)
            self.fit_intercept = fit_intercept
            self.scale_ = 2 * self.alpha  # derived

    est = Ridge(0.5)
    assert est.get_params() == {"alpha": 0.5, "fit_intercept": True}
    assert est.set_params(alpha=3) is est
    assert (est.alpha, est.scale_, est.fit_intercept) == (3.0, 6.0, True)
    assert repr(est) == "Ridge(alpha=3.0)"
    assert repr(Ridge()) == "Ridge()"
    assert repr(Ridge(fit_intercept=False)) == "Ridge(fit_intercept=False)"
    with pytest.raises(ValueError, match=r"params must be among \['alpha', 'fit_intercept'\]"):
        est.set_params(beta=1)
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        est.set_params(alpha=-1)

    class Assigning(EstimatorParams):  # assigns each argument as it checks it
        def __init__(self, a: float = 1.0, b: float = 1.0) -> None:
            self.a = a
            check_number("b", b, ge=0)
            self.b = b

    partial = Assigning()
    with pytest.raises(ValueError, match="b must be >= 0"):
        partial.set_params(a=5.0, b=-1.0)
    assert vars(partial) == {"a": 1.0, "b": 1.0}  # a refused value changes nothing
    sklearn_base = pytest.importorskip("sklearn.base", reason="clone needs scikit-learn")
    twin = sklearn_base.clone(est)
    assert twin.get_params() == est.get_params()
    assert twin is not est


def test_progress_bars_follow_show_and_close_on_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """``show_progress=None`` hides the bar off a terminal (pytest's stderr is not one);
    ``True`` forces it on stderr, never stdout; a loop that raises closes its bar; messages go
    to stderr."""
    pytest.importorskip("tqdm", reason="progress bars need tqdm")
    from neuronkit.common import progress, progress_write

    assert list(progress(range(3))) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    assert list(progress(range(3), show_progress=True, desc="steps")) == [0, 1, 2]
    out = capsys.readouterr()
    assert "steps" in out.err
    assert out.out == ""
    with pytest.raises(RuntimeError, match="stop"):
        for i in progress(range(5), show_progress=True):
            if i == 2:
                raise RuntimeError("stop")
    progress_write("a message")
    assert capsys.readouterr().err.endswith("a message\n")
    with pytest.raises(TypeError, match="show_progress must be bool"):
        list(progress(range(2), show_progress="yes"))  # type: ignore[arg-type]


def test_progress_bar_problems_finds_what_is_wrong() -> None:
    pytest.importorskip("tqdm", reason="progress bars need tqdm")
    from neuronkit.common import progress
    from neuronkit.common.testing import progress_bar_problems

    def good(show_progress: bool | None = None) -> None:
        list(progress(range(2), show_progress=show_progress, desc="good"))

    def noisy(show_progress: bool | None = None) -> None:
        print("step")  # stdout, and the argument ignored
        list(progress(range(2), show_progress=True, desc="noisy"))

    assert progress_bar_problems(good, "good") == []
    assert progress_bar_problems(noisy, "noisy") == [
        "show_progress=True: wrote to stdout",
        "show_progress=None: bar drawn",
        "show_progress=None: wrote to stdout",
        "show_progress=False: bar drawn",
        "show_progress=False: wrote to stdout",
        "show_progress='yes' raised no TypeError",
    ]


def test_correct_predictions_never_credits_a_nan_score_vector() -> None:
    import torch

    from neuronkit.common import correct_predictions

    logits = torch.tensor([[2.0, 1.0], [float("nan"), 0.0], [0.0, float("nan")], [1.0, 3.0]])
    labels = torch.tensor([0, 0, 1, 0])
    # argmax reads NaN as the largest score: rows 1 and 2 would count as correct
    assert (logits.argmax(1) == labels).tolist() == [True, True, True, False]
    assert correct_predictions(logits, labels).tolist() == [True, False, False, False]
    # the class axis can be any axis; +inf is an ordinary (largest) score
    time_major = torch.tensor([[[0.0, float("inf")]], [[float("nan"), 1.0]]])  # [T, B, C]
    assert correct_predictions(time_major, torch.tensor([[1], [1]])).tolist() == [[True], [False]]
    assert correct_predictions(logits.T, labels, dim=0).tolist() == [True, False, False, False]


def test_load_weights_that_do_not_fit_leave_the_module_unchanged(tmp_path: Path) -> None:
    import torch
    from torch import nn

    from neuronkit.common import load_weights, save_weights

    torch.manual_seed(0)
    path = save_weights(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3)), tmp_path / "a.st")
    wider = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 5))
    deeper = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 3), nn.Linear(3, 2))
    for module, match in [
        (wider, r"1\.weight: \(3, 8\) in the file, \(5, 8\) in module"),
        (deeper, r"missing from the file: \['2\.bias', '2\.weight'\]"),
    ]:
        before = {k: v.clone() for k, v in module.state_dict().items()}
        with pytest.raises(ValueError, match=match):
            load_weights(path, module)
        after = module.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before)  # layer 0 untouched too
    # strict=False loads the keys that fit and leaves the rest
    load_weights(path, deeper, strict=False)
    assert torch.equal(deeper[0].weight, load_weights(path)["0.weight"])


def test_a_failed_atomic_write_removes_the_folders_it_created(tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError, match="boom"), atomic_path(tmp_path / "kept/a/b/f.txt") as t:
        t.write_text("half")
        raise RuntimeError("boom")
    assert [p.name for p in tmp_path.rglob("*")] == ["kept"]
    atomic_write_text(tmp_path / "kept/a/b/f.txt", "whole")  # and a later write still works
    assert (tmp_path / "kept/a/b/f.txt").read_text() == "whole"


_RACER = """
import os, shutil, sys
from pathlib import Path
from neuronkit.common.io import replace_dir
root, n = Path(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    src = root / f".x.partial-{os.getpid()}-{i}"
    src.mkdir()
    (src / "result.json").write_text(str(os.getpid()))
    replace_dir(src, root / "x")
"""


def test_replace_dir_lets_the_last_of_concurrent_writers_win(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = tmp_path / "racer.py"
    script.write_text(_RACER)
    root = tmp_path / "out"
    root.mkdir()
    racers = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), "300"], stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    errors = [r.communicate(timeout=120)[1] for r in racers]
    assert [r.returncode for r in racers] == [0, 0], errors
    assert [p.name for p in root.iterdir()] == ["x"]  # nothing set aside is left
    assert (root / "x" / "result.json").read_text() in {str(r.pid) for r in racers}


def test_replace_dir_retries_when_the_folder_in_its_way_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the race CI met once: another writer's folder lands at dst just before our rename
    # (ENOTEMPTY) and is set aside again before we look: we retry, not fail
    import os

    from neuronkit.common import io

    dst, src = tmp_path / "x", tmp_path / ".x.partial"
    for folder, text in ((dst, "older"), (src, "mine")):
        folder.mkdir()
        (folder / "result.json").write_text(text)
    real_replace = os.replace
    raced: list[bool] = []

    def racing_replace(a: Any, b: Any) -> None:
        if Path(a) == src and not raced:
            raced.append(True)
            dst.mkdir()
            (dst / "result.json").write_text("other")  # another writer's folder lands
            try:
                real_replace(a, b)  # ENOTEMPTY
            finally:
                real_replace(dst, tmp_path / ".x.third")  # and is set aside again
        else:
            real_replace(a, b)

    monkeypatch.setattr(io.os, "replace", racing_replace)
    assert io.replace_dir(src, dst) == dst
    assert raced
    assert (dst / "result.json").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".x.third", "x"]


def test_new_figure_leaves_the_backend_and_pyplot_alone(tmp_path: Path) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    from neuronkit.common import new_figure

    plt.close("all")
    backend = matplotlib.get_backend()
    matplotlib.use("svg")  # a session's own (non-Agg) backend
    try:
        for _ in range(30):  # more than pyplot's 20-figure warning
            fig, axes = new_figure(1, 2, sharey=True, figsize=(4, 2))
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(backend)
    assert plt.get_fignums() == []
    assert axes.shape == (2,)
    assert axes[0].get_shared_y_axes().joined(axes[0], axes[1])
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "layout and constrained_layout cannot be used together"
        fig, _ = new_figure(layout="tight")
    assert fig.get_layout_engine().__class__.__name__ == "TightLayoutEngine"


def test_axes_or_new_passes_axes_through_and_makes_a_figure_otherwise() -> None:
    from neuronkit.common import axes_or_new, new_figure

    _, given = new_figure()
    assert axes_or_new(given, (1.0, 1.0)) is given
    made = axes_or_new(None, (5.0, 2.0))
    assert made is not given
    assert tuple(made.figure.get_size_inches()) == (5.0, 2.0)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes or None, got str"):
        axes_or_new("left", (1.0, 1.0))


def test_grad_enabled_overrides_no_grad_and_names_the_caller_under_inference_mode() -> None:
    torch = pytest.importorskip("torch")
    from neuronkit.common import grad_enabled

    w = torch.ones(2, requires_grad=True)
    with torch.no_grad(), grad_enabled("fit"):
        (w * 2).sum().backward()
    assert w.grad is not None
    assert w.grad.tolist() == [2.0, 2.0]
    assert torch.is_grad_enabled()  # the caller's mode is back
    with (
        torch.inference_mode(),
        pytest.raises(RuntimeError, match="fit needs autograd"),
        grad_enabled("fit"),
    ):
        pass


def test_grad_enabled_decorates_nests_and_restores_the_mode_on_errors() -> None:
    torch = pytest.importorskip("torch")
    from neuronkit.common import grad_enabled

    @grad_enabled("fit")
    def fit(fail: bool) -> bool:
        if fail:
            raise KeyError("boom")
        return torch.is_grad_enabled()

    with torch.no_grad():
        assert fit(False)
        with pytest.raises(KeyError):
            fit(True)
        assert not torch.is_grad_enabled()
        block = grad_enabled("fit")  # one object entered twice, nested
        with block:
            with torch.no_grad(), block:
                assert torch.is_grad_enabled()
            assert torch.is_grad_enabled()
        assert not torch.is_grad_enabled()
    with torch.inference_mode(), pytest.raises(RuntimeError, match="fit needs autograd"):
        fit(False)


def test_eval_mode_reaches_shared_and_nested_submodules_once_and_restores_them() -> None:
    torch = pytest.importorskip("torch")
    from neuronkit.common import eval_mode

    shared = torch.nn.Dropout(0.5)
    inner = torch.nn.Sequential(torch.nn.Linear(2, 2), shared)
    net = torch.nn.Sequential(inner, shared, torch.nn.BatchNorm1d(2).eval())
    net.register_module("absent", None)  # a child slot holding None
    net.train()
    net[2].eval()
    before = {name: m.training for name, m in net.named_modules(remove_duplicate=False)}
    with pytest.raises(KeyError), eval_mode(net, "not a module"):
        assert not any(m.training for m in net.modules())
        raise KeyError("boom")
    after = {name: m.training for name, m in net.named_modules(remove_duplicate=False)}
    assert after == before
    block = eval_mode(net)  # one object entered twice, nested
    with block:
        with block:
            pass
        assert not net.training  # the outer block still holds
    assert after == {name: m.training for name, m in net.named_modules(remove_duplicate=False)}
    assert net.training
    assert shared.training
    assert not net[2].training


def test_detached_input_leaves_the_callers_graph_and_grad_alone() -> None:
    torch = pytest.importorskip("torch")
    from neuronkit.common import detached_input

    x = torch.ones(3, requires_grad=True)
    y = detached_input(x * 2)
    assert not y.requires_grad
    assert y.grad_fn is None
    with torch.inference_mode():
        z = torch.ones(3)
    w = torch.ones(3, requires_grad=True)
    (detached_input(z) * w).sum().backward()  # an inference tensor cannot be saved for backward
    assert not detached_input(z).is_inference()
    assert detached_input([1, 2]) == [1, 2]


def _lazy_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, stub: str, modules: dict[str, str]
) -> Any:
    """A fresh package ``name`` whose ``__init__`` uses ``lazy_exports`` with ``stub`` as its
    ``__init__.pyi`` and ``modules`` (file name -> source) beside it, imported."""
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from neuronkit.common.lazy import lazy_exports\n"
        "__getattr__, __dir__, __all__ = lazy_exports(__name__, __file__)\n",
        encoding="utf-8",
    )
    (pkg / "__init__.pyi").write_text(stub, encoding="utf-8")
    for file, source in modules.items():
        (pkg / file).write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [m for m in sys.modules if m.startswith(name)]:
        monkeypatch.delitem(sys.modules, module)
    return importlib.import_module(name)


def test_lazy_exports_import_a_submodule_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = _lazy_package(
        tmp_path,
        monkeypatch,
        "nk_lazy_demo",
        "from . import heavy\nfrom .light import double as twice\n__all__ = ['heavy', 'twice']\n",
        {
            "heavy.py": "VALUE = 1\n",
            "light.py": "def double(x):\n    return 2 * x\n",
            "other.py": "",
        },
    )
    assert demo.__all__ == ["heavy", "twice"]
    assert "nk_lazy_demo.light" not in sys.modules
    assert "nk_lazy_demo.heavy" not in sys.modules
    assert {"heavy", "twice"} <= set(dir(demo))
    assert demo.twice(3) == 6
    assert "nk_lazy_demo.light" in sys.modules
    assert "nk_lazy_demo.heavy" not in sys.modules
    assert demo.heavy.VALUE == 1
    assert demo.other.__name__ == "nk_lazy_demo.other"  # unlisted submodules are reachable too
    with pytest.raises(AttributeError, match="module 'nk_lazy_demo' has no attribute 'missing'"):
        demo.missing  # noqa: B018
    assert not hasattr(demo, "light.double")


def test_lazy_exports_reject_a_stub_without_a_consistent_all(tmp_path: Path) -> None:
    from neuronkit.common.lazy import lazy_exports

    init = tmp_path / "__init__.py"
    (tmp_path / "__init__.pyi").write_text("from .a import f\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no __all__ list"):
        lazy_exports("nk_x", str(init))
    (tmp_path / "__init__.pyi").write_text(
        "from .a import f\n__all__ = ['f', 'g']\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"__all__ names \['g'\] that the stub does not import"):
        lazy_exports("nk_x", str(init))


def test_floating_dtype_defaults_to_torch_default_and_names_the_argument() -> None:
    torch = pytest.importorskip("torch", reason="dtypes need torch")
    from neuronkit.common import floating_dtype

    assert floating_dtype("dtype", None) is torch.get_default_dtype()
    assert floating_dtype("dtype", torch.float64) is torch.float64
    for bad in (torch.int64, "float32", float):
        with pytest.raises(TypeError, match=r"images_dtype must be a floating torch\.dtype"):
            floating_dtype("images_dtype", bad)


def test_forked_manual_seed_seeds_the_block_only_and_leaves_cuda_alone() -> None:
    """Inside: the draws of torch.manual_seed(seed); after: the caller's stream, and no reseed
    of an uninitialized CUDA queued for later (torch.manual_seed inside fork_rng(devices=[])
    queues one, replacing the caller's CUDA seed)."""
    import torch

    from neuronkit.common import forked_manual_seed

    torch.manual_seed(7)
    expected_outside = torch.rand(3)
    torch.manual_seed(5)
    expected_inside = torch.rand(3)

    tracker = getattr(torch.cuda, "_lazy_seed_tracker", None)
    torch.manual_seed(7)
    queued = tracker.get_calls() if tracker is not None else None
    with forked_manual_seed(5):
        inside = torch.rand(3)
    assert torch.equal(inside, expected_inside)
    assert torch.equal(torch.rand(3), expected_outside)
    if tracker is not None and not torch.cuda.is_initialized():
        assert tracker.get_calls() == queued
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(5)
        assert tracker.get_calls() != queued  # the check above can fail
    torch.manual_seed(7)
    with forked_manual_seed(None):  # no seed: the global stream, advanced
        assert torch.equal(torch.rand(3), expected_outside)
    with pytest.raises(ValueError, match="seed"), forked_manual_seed(-1):
        pass


def test_torch_rngs_forked_restores_the_cpu_stream_and_forks_only_an_initialized_cuda(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """torch.random.fork_rng()'s default would fork (so start) every visible GPU; the forks
    here take the GPUs only once CUDA is initialized. Checked with a recording fork_rng on a
    pretend machine with two GPUs, initialized or not."""
    import contextlib

    import torch

    from neuronkit.common import torch_rng_seeded, torch_rngs_forked
    from neuronkit.common.seeding import global_rngs_restored

    torch.manual_seed(3)
    expected = torch.rand(2)
    torch.manual_seed(3)
    with torch_rngs_forked():
        torch.rand(5)
    assert torch.equal(torch.rand(2), expected)

    forked: list[list[int]] = []

    @contextlib.contextmanager
    def recording_fork_rng(devices: list[int]) -> Iterator[None]:
        forked.append(list(devices))
        yield

    monkeypatch.setattr(torch.random, "fork_rng", recording_fork_rng)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    with torch_rngs_forked(), global_rngs_restored(), torch_rng_seeded(1):
        pass
    assert forked == [[], [], []]
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with torch_rngs_forked(), global_rngs_restored():
        pass
    assert forked[3:] == [[0, 1], [0, 1]]


def test_eager_twin_and_function_for_mode() -> None:
    """The old-style twin computes what the new-style Function does (values, gradients and
    second derivatives); function_for_mode applies it in eager mode only."""
    torch = pytest.importorskip("torch")
    from neuronkit.common import eager_twin, function_for_mode

    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(x: Any, scale: float) -> Any:
            return x**3 * scale

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
            ctx.scale = inputs[1]
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx: Any, grad: Any) -> tuple[Any, None]:
            (x,) = ctx.saved_tensors
            return grad * 3 * x**2 * ctx.scale, None

    EagerCube = eager_twin(Cube)
    assert EagerCube.__name__ == "EagerCube"

    def grads(fn: Any) -> list[Any]:
        x = torch.tensor([0.5, -2.0], dtype=torch.float64, requires_grad=True)
        y = fn.apply(x, 2.0)
        (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        gx.sum().backward()
        return [y.detach(), gx.detach(), x.grad]

    for got, want in zip(grads(EagerCube), grads(Cube), strict=True):
        assert torch.equal(got, want)
    assert function_for_mode(Cube, EagerCube) is EagerCube
    seen = []

    def f(x: Any) -> Any:
        seen.append(function_for_mode(Cube, EagerCube, compiled=int))
        return x.sum()

    torch.func.grad(f)(torch.ones(2))
    assert seen == [Cube]  # torch.func needs the new-style Function


def test_lazy_exports_keep_a_name_exported_from_its_same_named_submodule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``from .occlusion import occlusion``: importing the submodule first (from a sibling or
    by its dotted path) must not leave the package's ``occlusion`` bound to the module."""
    demo = _lazy_package(
        tmp_path,
        monkeypatch,
        "nk_lazy_same",
        "from .occlusion import occlusion\nfrom .user import use\n__all__ = ['occlusion', 'use']\n",
        {
            "occlusion.py": "def occlusion():\n    return 'map'\n",
            "user.py": "from .occlusion import occlusion\n\ndef use():\n    return occlusion()\n",
        },
    )
    assert demo.use() == "map"  # imported the submodule occlusion from a sibling
    assert demo.occlusion() == "map"
    submodule = importlib.import_module("nk_lazy_same.occlusion")  # the dotted path still works
    assert submodule.__name__ == "nk_lazy_same.occlusion"
    assert demo.occlusion is submodule.occlusion
    demo.other = 1  # other attributes are set as usual
    assert demo.other == 1


def test_integer_dtype_and_check_floating_tell_dtypes_apart() -> None:
    torch = pytest.importorskip("torch", reason="torch dtypes")
    check_floating("x", torch.zeros(1, dtype=torch.bfloat16))
    for dtype in (torch.int64, torch.bool, torch.complex64):
        with pytest.raises(TypeError, match="x must be a floating-point tensor, got dtype"):
            check_floating("x", torch.zeros(1, dtype=dtype))
    for dtype, expected in [
        (torch.int64, True),
        (torch.uint8, True),
        (torch.bool, False),  # a mask would be read as the indices 0 / 1
        (torch.float16, False),
        (torch.bfloat16, False),
        (torch.complex64, False),
    ]:
        assert integer_dtype(torch.zeros(1, dtype=dtype)) is expected
    for np_dtype, expected in [(np.int32, True), (np.uint64, True), (bool, False), (float, False)]:
        assert integer_dtype(np.zeros(1, dtype=np_dtype)) is expected
