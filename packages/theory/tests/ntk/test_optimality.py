"""Dual activations, the deep NTK recursion (vs torch.func on a wide net), depth limits."""

import math

import pytest
import torch

from neuronkit.theory.measures import empirical_ntk
from neuronkit.theory.ntk import (
    DeepNTKClassifier,
    DualActivation,
    InfiniteDepthNTKClassifier,
    NTKNetwork,
    depth_limit,
    dirichlet_sphere_data,
    dual_from_activation,
    erf_dual,
    hermite_dual,
    koenigs_kernel,
    majority_vote,
    nearest_neighbor_classify,
    ntk_recursion,
    relu_dual,
    singular_activation,
    singular_kernel_classify,
    sphere_kernel,
)
from neuronkit.theory.ntk.optimality import _singular_scaled_ntk

RHO = torch.linspace(-0.95, 0.95, 9, dtype=torch.float64)


@pytest.mark.parametrize("act", [relu_dual(), erf_dual(), hermite_dual([0.1, 0.5, 0.2, 0.2])])
def test_dual_matches_monte_carlo_and_is_normalized(act) -> None:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(400_000, generator=g, dtype=torch.float64)
    w = torch.randn(400_000, generator=g, dtype=torch.float64)
    one = torch.ones((), dtype=torch.float64)
    assert float(act.dual(one)) == pytest.approx(1.0)
    assert float((act.activation(u) ** 2).mean()) == pytest.approx(1.0, abs=0.02)
    for rho in (-0.5, 0.3, 0.8):
        v = rho * u + math.sqrt(1 - rho**2) * w
        mc = float((act.activation(u) * act.activation(v)).mean())
        assert float(act.dual(torch.tensor(rho, dtype=torch.float64))) == pytest.approx(
            mc, abs=0.02
        )


def test_derivative_is_the_derivative_of_the_dual() -> None:
    for act in (relu_dual(), erf_dual(), singular_activation(2)):
        r = RHO.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(act.dual(r).sum(), r)
        assert torch.allclose(g, act.derivative(RHO), atol=1e-9)


def test_numeric_dual_of_erf_matches_closed_form() -> None:
    num = dual_from_activation(torch.erf, points=48)
    ref = erf_dual()
    assert torch.allclose(num.dual(RHO), ref.dual(RHO), atol=1e-6)
    assert torch.allclose(num.derivative(RHO), ref.derivative(RHO), atol=1e-5)


def test_recursion_depth_one_closed_form_and_normalization() -> None:
    act = relu_dual()
    _, k1 = ntk_recursion(RHO, 1, act)
    assert torch.allclose(k1, act.dual(RHO) + RHO * act.derivative(RHO))
    _, k = ntk_recursion(RHO, 5, act)
    _, kn = ntk_recursion(RHO, 5, act, normalize=True)
    _, k_one = ntk_recursion(torch.ones(1, dtype=torch.float64), 5, act)
    assert torch.allclose(kn, k / k_one)
    assert float(k_one) == pytest.approx(6.0)  # ReLU: K_L(1) = L + 1


def test_unnormalized_recursion_that_overflows_suggests_normalize() -> None:
    # K_L(1) of erf grows geometrically: at depth 5000 the kernel was [-inf, ..., inf], silently
    rho = torch.linspace(-1, 1, 5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^depth 5000 .*normalize=True"):
        ntk_recursion(rho, 5000, erf_dual())
    _, k = ntk_recursion(rho, 5000, erf_dual(), normalize=True)
    assert bool(torch.isfinite(k).all())


@pytest.mark.parametrize(("act", "depth"), [(relu_dual(), 2), (erf_dual(), 2), (erf_dual(), 1)])
def test_recursion_matches_empirical_ntk_of_a_wide_network(act, depth) -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 3, generator=g, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)
    _, theory = ntk_recursion(x @ x.T, depth, act)
    emp = empirical_ntk(NTKNetwork(3, 1024, depth, act, seed=0), x)
    assert float((emp - theory).norm() / theory.norm()) < 0.1


def test_taxonomy() -> None:
    assert depth_limit(relu_dual())["classifier"] == "majority_vote"
    assert depth_limit(hermite_dual([0.2, 0, 0, 0.8]))["classifier"] == "majority_vote"
    assert depth_limit(hermite_dual([0, 0, 0, 1]))["classifier"] == "nearest_neighbor"
    lim = depth_limit(erf_dual())
    assert lim["classifier"] == "singular_kernel"
    assert 0 < lim["beta"] < 1
    for dim in (1, 2, 4, 8):
        assert depth_limit(singular_activation(dim))["beta"] == pytest.approx(dim / 2)
    assert singular_activation(2).coefficients == pytest.approx((0.0, 0.5, 0.0, 0.5))


def test_koenigs_kernel_is_a_limit_and_singular() -> None:
    act = singular_activation(2)
    s = koenigs_kernel(RHO, act)
    sigma, _ = ntk_recursion(RHO, 40, act)
    assert torch.allclose(sigma / 0.5**40, s, rtol=1e-6, atol=1e-9)
    near = 1 - torch.tensor([1e-4, 1e-6], dtype=torch.float64)
    vals = koenigs_kernel(near, act)
    assert float(vals[1] / vals[0]) == pytest.approx(100.0, rel=0.1)  # (1 - rho)^-1
    table = koenigs_kernel(RHO, act, table_size=2048)
    assert torch.allclose(table, s, rtol=1e-3)


def _tabulated_koenigs_reference(rho: torch.Tensor, act, size: int) -> torch.Tensor:
    """koenigs_kernel(rho, act, table_size=size) as first written: plain formulas, the table
    built on every call and the cosines at +-1 sent through the untabulated kernel."""
    beta = depth_limit(act)["beta"]
    grid_t = torch.linspace(-31.0, 31.0, size, dtype=torch.float64)
    grid_rho = torch.tanh(grid_t / 2.0)
    h = koenigs_kernel(grid_rho, act) * ((1.0 - grid_rho) * (1.0 + grid_rho)) ** beta
    inner = rho.abs() < 1.0 - 1e-13
    rc = rho.clamp(-1.0 + 1e-13, 1.0 - 1e-13)
    pos = (torch.log((1.0 + rc) / (1.0 - rc)) - grid_t[0]) / (grid_t[1] - grid_t[0])
    lo = pos.floor().clamp(0, size - 2).long()
    frac = (pos - lo).clamp(0.0, 1.0)
    out = (h[lo] * (1.0 - frac) + h[lo + 1] * frac) / ((1.0 - rc) * (1.0 + rc)) ** beta
    return torch.where(inner, out, koenigs_kernel(rho.sign(), act))


class _UnhashablePolynomial:
    """A dual given as a callable object that cannot be hashed (no table cache for it)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, coefficients: tuple[float, ...], derivative: bool) -> None:
        self.c, self.derivative = coefficients, derivative

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _UnhashablePolynomial) and vars(self) == vars(other)

    def __call__(self, rho: torch.Tensor) -> torch.Tensor:
        if self.derivative:
            return sum(k * c * rho ** (k - 1) for k, c in enumerate(self.c) if k)
        return sum(c * rho**k for k, c in enumerate(self.c))


def test_tabulated_koenigs_kernel_is_its_formula_bit_for_bit() -> None:
    # the table is cached per activation and the interpolation runs in place: same values
    c = (0.0, 0.5, 0.0, 0.5)
    unhashable = DualActivation(
        "unhashable", _UnhashablePolynomial(c, False), _UnhashablePolynomial(c, True)
    )
    g = torch.Generator().manual_seed(0)
    rho = torch.cat(
        [
            torch.rand(298, generator=g, dtype=torch.float64) * 2 - 1,
            1 - torch.logspace(-15, -1, 40, dtype=torch.float64),
            torch.tensor([1.0, -1.0, 0.0, 1 - 1e-13, -(1 - 1e-13)], dtype=torch.float64),
        ]
    ).reshape(7, 49)
    for act in (singular_activation(1, degree=7), singular_activation(2), unhashable):
        ref = _tabulated_koenigs_reference(rho, act, 512)
        for _ in range(2):  # the second call reads the cached table
            assert torch.equal(koenigs_kernel(rho, act, table_size=512), ref)
    assert float(koenigs_kernel(rho, unhashable, table_size=512)[6, -5]) == math.inf
    inner = rho[:6].clone().requires_grad_(True)  # and it stays differentiable
    (grad,) = torch.autograd.grad(koenigs_kernel(inner, act, table_size=512).sum(), inner)
    assert bool(torch.isfinite(grad).all())


def test_singular_kernel_classifier_is_the_tabulated_kernel_on_any_blocks() -> None:
    # the test rows go in blocks of ~2^18 kernel entries, the weights are formed in place
    act = singular_activation(1, degree=7)
    for n, m in ((30, 700), (1500, 400)):
        tr = dirichlet_sphere_data(n, [2, 1], [1, 2], 0.4, seed=n)
        te = dirichlet_sphere_data(m, [2, 1], [1, 2], 0.4, seed=m)
        x_test = torch.cat([te.x, tr.x[:3]])  # three test points on training points: S = inf
        k = koenigs_kernel((x_test @ tr.x.T).clamp(-1.0, 1.0), act, table_size=4096)
        finite = torch.isfinite(k)
        big = torch.where(finite, k, torch.zeros_like(k)).abs().amax(dim=1, keepdim=True)
        w = torch.where(finite, k / big.clamp_min(1e-300), torch.full_like(k, 1e300))
        onehot = torch.stack([tr.y == 0, tr.y == 1], dim=1).double()
        ref = (w @ onehot).argmax(dim=1)
        got = singular_kernel_classify(tr.x, tr.y, x_test, activation=act)
        assert torch.equal(got, ref)
        assert torch.equal(got[-3:], tr.y[:3])


def test_deep_relu_ntk_tends_to_a_constant_plus_diagonal() -> None:
    _, kn = ntk_recursion(
        torch.tensor([0.0, 0.5], dtype=torch.float64), 3000, relu_dual(), normalize=True
    )
    assert torch.allclose(kn, torch.full((2,), 0.25, dtype=torch.float64), atol=0.02)


def test_classifiers_on_data() -> None:
    tr = dirichlet_sphere_data(200, [2, 1], [1, 2], 0.4, seed=1)
    te = dirichlet_sphere_data(300, [2, 1], [1, 2], 0.4, seed=2)
    assert torch.allclose(tr.x.norm(dim=1), torch.ones(200, dtype=torch.float64))
    maj = InfiniteDepthNTKClassifier(relu_dual()).fit(tr.x, tr.y).predict(te.x)
    assert torch.equal(maj, majority_vote(tr.y, 300))
    nn = InfiniteDepthNTKClassifier(hermite_dual([0, 0, 0, 1])).fit(tr.x, tr.y).predict(te.x)
    assert torch.equal(nn, nearest_neighbor_classify(tr.x, tr.y, te.x))
    deep = DeepNTKClassifier(hermite_dual([0, 0, 0, 1]), 12).fit(tr.x, tr.y).predict(te.x)
    assert float((deep == nn).double().mean()) > 0.9
    sk = singular_kernel_classify(tr.x, tr.y, tr.x[:5], beta=0.5)
    assert torch.equal(sk, tr.y[:5])
    k = sphere_kernel(tr.x[:4], None, 3, relu_dual())
    assert torch.allclose(torch.diagonal(k), torch.ones(4, dtype=torch.float64))


def test_an_empty_test_set_gets_no_labels_from_every_classifier() -> None:
    """As DeepNTKClassifier.predict: the limit classifiers raised "torch.cat(): expected a
    non-empty list" or "n_test must be >= 1"."""
    tr = dirichlet_sphere_data(40, [2, 1], [1, 2], 0.4, seed=1)
    none = tr.x[:0]
    for activation in (relu_dual(), hermite_dual([0, 0, 0, 1]), singular_activation(2)):
        got = InfiniteDepthNTKClassifier(activation).fit(tr.x, tr.y).predict(none)
        assert got.shape == (0,)
    assert DeepNTKClassifier(relu_dual(), 3).fit(tr.x, tr.y).predict(none).shape == (0,)
    assert nearest_neighbor_classify(tr.x, tr.y, none).shape == (0,)
    assert singular_kernel_classify(tr.x, tr.y, none, beta=0.5).shape == (0,)
    assert majority_vote(tr.y, 0).shape == (0,)


def test_deep_singular_classifier_is_exact_at_any_depth() -> None:
    act = singular_activation(1, degree=7)
    tr = dirichlet_sphere_data(60, [2, 1], [1, 2], 0.4, seed=3)
    te = dirichlet_sphere_data(80, [2, 1], [1, 2], 0.4, seed=4)
    y = (2.0 * tr.y.double() - 1.0)[:, None]
    # shallow: the scaled closed form equals interpolation with the normalized kernel
    for depth in (5, 20):  # shallower kernels of 60 points on a circle are near singular
        ref = sphere_kernel(te.x, tr.x, depth, act) @ torch.linalg.solve(
            sphere_kernel(tr.x, None, depth, act), y
        )
        dec = DeepNTKClassifier(act, depth).fit(tr.x, tr.y).decision_function(te.x)
        ratio = dec / ref[:, 0]  # a positive constant: K_L(1) / lambda^L
        assert float(ratio.min()) > 0
        assert torch.allclose(ratio, ratio[0].expand_as(ratio))
    # deep: the normalized kernel underflows (lambda / c = 1/8 per layer), the classifier does not
    assert float(sphere_kernel(te.x, tr.x, 400, act).abs().max()) == 0.0
    deep = DeepNTKClassifier(act, 400).fit(tr.x, tr.y).decision_function(te.x)
    assert bool((deep != 0).all())
    # K_L / lambda^L is affine in L beyond the transient: L S + C, slope = Koenigs kernel
    rho = (te.x @ tr.x.T).reshape(-1)
    k1, k2 = (_singular_scaled_ntk(rho, d, act) for d in (10**6, 2 * 10**6))
    assert torch.allclose((k2 - k1) / 10**6, koenigs_kernel(rho, act), rtol=1e-6)
    # as L grows the deep classifier becomes the infinite-depth one
    limit = InfiniteDepthNTKClassifier(act).fit(tr.x, tr.y).predict(te.x)
    assert torch.equal(DeepNTKClassifier(act, 10**12).fit(tr.x, tr.y).predict(te.x), limit)


def test_training_cosines_are_exactly_one_on_the_diagonal() -> None:
    x = torch.rand(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x / torch.linalg.norm(x, dim=1, keepdim=True)
    assert bool(((x * x).sum(dim=1) != 1.0).any())  # rounding: some <x, x> are not exactly 1
    # 60 layers of the singular dual drive any rho < 1 to ~0; the diagonal must stay at 1
    k = sphere_kernel(x, None, 60, singular_activation(1, degree=7))
    assert torch.allclose(torch.diagonal(k), torch.ones(50, dtype=torch.float64), rtol=1e-12)


def test_too_deep_normalized_kernel_raises_instead_of_predicting_zeros() -> None:
    tr = dirichlet_sphere_data(50, [2, 1], [1, 2], 0.4, seed=5)
    te = dirichlet_sphere_data(20, [2, 1], [1, 2], 0.4, seed=6)
    clf = DeepNTKClassifier(hermite_dual([0, 0, 0, 1]), 40).fit(tr.x, tr.y)
    with pytest.raises(ValueError, match="depth 40 is too deep"):
        clf.predict(te.x)


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="width"):
        NTKNetwork(3, 0, 2, relu_dual())
    with pytest.raises(ValueError, match="depth"):
        ntk_recursion(RHO, -1, relu_dual())
    with pytest.raises(ValueError, match="rho"):
        ntk_recursion(torch.tensor([1.5], dtype=torch.float64), 2, relu_dual())
    with pytest.raises(TypeError, match="activation"):
        ntk_recursion(RHO, 2, torch.relu)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="coefficients"):
        hermite_dual([-1.0, 2.0])
    with pytest.raises(ValueError, match="dim"):
        singular_activation(0)
    with pytest.raises(ValueError, match="x2"):
        sphere_kernel(torch.ones(2, 3), torch.ones(2, 4), 2, relu_dual())
    with pytest.raises(ValueError, match="alpha1"):
        dirichlet_sphere_data(10, [1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="singular-kernel class"):
        koenigs_kernel(RHO, relu_dual())
    # max_iter=0 returned rho itself, 2.5 failed in range(); tol=nan divided by zero
    for max_iter, exc in ((0, ValueError), (2.5, TypeError)):
        with pytest.raises(exc, match=r"^max_iter "):
            koenigs_kernel(RHO, singular_activation(3), max_iter=max_iter)
    for tol, exc in ((math.nan, ValueError), (-1.0, ValueError), ("0.1", TypeError)):
        with pytest.raises(exc, match=r"^tol "):
            depth_limit(relu_dual(), tol=tol)
    # test rows with another number of columns than the training rows failed in torch's matmul
    x_train, y_train, x_test = torch.randn(4, 3), torch.tensor([0, 1, 0, 1]), torch.randn(2, 5)
    with pytest.raises(ValueError, match=r"^x_test must have 3 columns"):
        nearest_neighbor_classify(x_train, y_train, x_test)
    with pytest.raises(ValueError, match=r"^x_test must have 3 columns"):
        singular_kernel_classify(x_train, y_train, x_test, beta=1.5)


def test_infinite_depth_score_validates_labels_like_deep_score() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    clf = InfiniteDepthNTKClassifier(relu_dual()).fit(x, y)
    assert clf.score(x, y) == 0.5  # majority vote
    # [0] and [M, 1] broadcast against the predictions; 0.7-offset labels were truncated
    with pytest.raises(ValueError, match=r"^y must have one label per sample \(6\), got 1"):
        clf.score(x, [0])
    with pytest.raises(ValueError, match=r"^y must have 1 dimensions \[N\]"):
        clf.score(x, y[:, None])
    with pytest.raises(ValueError, match=r"^y must hold integer class labels, got continuous"):
        clf.score(x, y.double() + 0.7)


def test_majority_vote_rejects_fractional_labels() -> None:
    with pytest.raises(ValueError, match=r"^y_train must hold integer class labels"):
        majority_vote([0.7, 0.7, 1.9], 2)
    for value in (math.inf, math.nan, 1e30):  # inf was read as the label -2^63
        with pytest.raises(ValueError, match=r"^y_train must hold integer class labels, got co"):
            majority_vote([0.0, value], 2)
    assert majority_vote([1.0, 1.0, 0.0], 2).tolist() == [1, 1]


@pytest.mark.parametrize("act", [relu_dual(), erf_dual(), singular_activation(2)])
@pytest.mark.parametrize("scale", [1.0, 2.0, 3.0])
def test_deep_classifier_rejects_one_point_with_two_labels(act, scale: float) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    xd, yd = torch.cat([x, scale * x[:1]]), torch.cat([y, 1 - y[:1]])
    # interpolation was attempted: coefficients ~1e8 and decision 0, or torch's LinAlgError
    with pytest.raises(ValueError, match=r"^x rows 0 and 6 .* y gives them different labels"):
        DeepNTKClassifier(act, depth=2).fit(xd, yd)
    DeepNTKClassifier(act, depth=2, ridge=0.1).fit(xd, yd)  # a ridge fits a compromise


def test_deep_classifier_singular_kernel_names_x() -> None:
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x[0] = torch.tensor([1.0, 0.0, 0.0])
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    # a duplicate with the same label: two equal kernel rows (torch's LinAlgError before)
    with pytest.raises(ValueError, match=r"^x gives a singular kernel matrix"):
        DeepNTKClassifier(relu_dual(), depth=2).fit(torch.cat([x, x[:1]]), torch.cat([y, y[:1]]))


def test_ntk_recursion_normalize_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"^normalize must be bool"):
        ntk_recursion(RHO, 2, relu_dual(), normalize="no")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alpha0", "alpha1", "name"),
    [
        ([math.nan, 2.0], [2.0, 1.0], "alpha0"),  # NaN passed "(a <= 0).any()"
        ([2.0, 1.0], [1.0, math.inf], "alpha1"),
        ([2.0, 1.0], [1.0, math.nan], "alpha1"),
    ],
)
def test_dirichlet_concentrations_must_be_finite(alpha0: list, alpha1: list, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be .*positive finite"):
        dirichlet_sphere_data(5, alpha0, alpha1)


def test_dirichlet_concentrations_that_are_not_numbers_name_the_argument() -> None:
    with pytest.raises(TypeError, match=r"^alpha0 must be a real array"):
        dirichlet_sphere_data(5, "ab", [2.0, 1.0])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "act",
    [relu_dual(), erf_dual(), singular_activation(2), dual_from_activation(torch.tanh)],
    ids=["relu", "erf", "singular", "numeric"],
)
def test_models_and_fitted_classifiers_pickle(act) -> None:
    """The duals are module-level functions or partials of them, so a whole NTKNetwork and a
    fitted classifier pickle (closures made torch.save / pickle raise)."""
    import pickle

    x = torch.nn.functional.normalize(
        torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    )
    y = (x[:, 0] > 0).long()
    rho = torch.linspace(-1, 1, 7, dtype=torch.float64)
    copy = pickle.loads(pickle.dumps(act))
    assert torch.equal(copy(rho), act(rho))
    assert torch.equal(copy.derivative(rho), act.derivative(rho))
    net = NTKNetwork(3, 8, 2, act, seed=0)
    assert torch.equal(pickle.loads(pickle.dumps(net))(x.double()), net(x.double()))
    clf = DeepNTKClassifier(act, depth=2).fit(x, y)
    assert torch.equal(pickle.loads(pickle.dumps(clf)).predict(x), clf.predict(x))


def test_classifiers_follow_scikit_learn_model_selection() -> None:
    """set_params rebuilds through __init__ (the singular-kernel flag follows the activation),
    and GridSearchCV runs over the depth."""
    from sklearn.model_selection import GridSearchCV

    clf = DeepNTKClassifier(relu_dual(), depth=3)
    assert clf.set_params(depth=5).get_params()["depth"] == 5
    with pytest.raises(ValueError, match="depth"):
        clf.set_params(depth=-1)
    gen = torch.Generator().manual_seed(1)
    x = torch.nn.functional.normalize(torch.randn(40, 3, generator=gen), dim=1)
    y = (x[:, 0] > 0).long()
    limit = InfiniteDepthNTKClassifier(relu_dual())
    assert not hasattr(limit, "limit_")  # scikit-learn: fitted attributes come from fit
    limit.set_params(activation=singular_activation(2)).fit(x, y)
    assert limit.limit_ == depth_limit(singular_activation(2))
    search = GridSearchCV(DeepNTKClassifier(relu_dual()), {"depth": [1, 4]}, cv=2).fit(
        x.numpy(), y.numpy()
    )
    assert search.best_params_["depth"] in (1, 4)


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300, 1e-300])
def test_kernels_and_classifiers_ignore_the_row_scale(scale: float) -> None:
    # rows were normalized by an unscaled norm: 1e200 overflowed (the kernel a constant 0.2286),
    # 1e-200 underflowed to a false "zero rows"
    x = torch.tensor([[1.0, 2.0, 3.0], [3.0, -1.0, 2.0], [0.5, 0.5, -1.0]], dtype=torch.float64)
    ref = sphere_kernel(x, None, 3, relu_dual())
    weights = torch.tensor([1.0, scale, 1e-3 * scale], dtype=torch.float64)[:, None]
    for a, b in ((x * scale, None), (x * weights, None), (x, x * scale)):
        got = sphere_kernel(a, b, 3, relu_dual())
        assert torch.allclose(got, ref, rtol=1e-12, atol=0.0)
        assert torch.allclose(
            sphere_kernel(a, b, 3, relu_dual(), kind="nngp"),
            sphere_kernel(x, x, 3, relu_dual(), kind="nngp"),
            rtol=1e-12,
        )
    tr = dirichlet_sphere_data(60, [2, 1], [1, 2], 0.4, seed=1)
    te = dirichlet_sphere_data(40, [2, 1], [1, 2], 0.4, seed=2)
    nn = nearest_neighbor_classify(tr.x, tr.y, te.x)
    assert torch.equal(nearest_neighbor_classify(tr.x * scale, tr.y, te.x * scale), nn)
    deep = DeepNTKClassifier(relu_dual(), 3).fit(tr.x, tr.y)
    scaled = DeepNTKClassifier(relu_dual(), 3).fit(tr.x * scale, tr.y)
    assert torch.allclose(
        scaled.decision_function(te.x * scale), deep.decision_function(te.x), rtol=1e-9
    )
    with pytest.raises(ValueError, match="zero rows"):
        sphere_kernel(
            torch.cat([x * scale, torch.zeros(1, 3, dtype=torch.float64)]), None, 3, relu_dual()
        )


def test_a_failed_refit_keeps_the_previous_fit() -> None:
    # classes_ was assigned before the checks: after a refused refit, predict mapped the old
    # coefficients onto the new labels ([5, 5, 5, 5, 5] instead of the old predictions)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    clf = DeepNTKClassifier(relu_dual(), depth=3).fit(x, y)
    classes, coef, x_fit, pred = clf.classes_, clf.coef_, clf.x_, clf.predict(x)
    bad = [
        (torch.cat([x[:4], x[:1]]), torch.tensor([5, 6, 7, 5, 6]), r"^x rows 0 and 4"),
        (x, torch.full((20,), 3), r"^y must contain at least 2 classes"),
        (torch.cat([x[:5], x[:1]]), torch.tensor([5, 6, 7, 8, 9, 5]), r"^x gives a singular"),
    ]
    for xb, yb, match in bad:
        with pytest.raises(ValueError, match=match):
            clf.fit(xb, yb)
        assert clf.classes_ is classes
        assert clf.coef_ is coef
        assert clf.x_ is x_fit
        assert torch.equal(clf.predict(x), pred)
    # a refused set_params leaves the parameters (and the singular-kernel flag) as they were
    with pytest.raises(ValueError, match="depth"):
        clf.set_params(activation=singular_activation(2), depth=-1)
    assert clf.activation.name == relu_dual().name
    assert clf.depth == 3
    assert clf._singular is False
    assert torch.equal(clf.predict(x), pred)


def test_a_failed_infinite_depth_refit_keeps_the_previous_fit(monkeypatch) -> None:
    from neuronkit.theory.ntk import optimality

    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 1, 1, 1])
    clf = InfiniteDepthNTKClassifier(relu_dual()).fit(x, y)
    x_fit, y_fit, limit, pred = clf.x_, clf.y_, clf.limit_, clf.predict(x)
    with pytest.raises(ValueError, match=r"^y must have one label per sample \(6\), got 3"):
        clf.fit(x, y[:3])
    assert clf.x_ is x_fit
    assert clf.y_ is y_fit
    assert clf.limit_ is limit

    def interrupted(*args, **kwargs):  # the dual evaluated by depth_limit, interrupted
        raise KeyboardInterrupt

    monkeypatch.setattr(optimality, "depth_limit", interrupted)
    with pytest.raises(KeyboardInterrupt):  # x_ and y_ were replaced before limit_ failed
        clf.fit(x[:4].flip(0), torch.tensor([1, 1, 0, 0]))
    monkeypatch.undo()
    assert clf.x_ is x_fit
    assert clf.y_ is y_fit
    assert clf.limit_ is limit
    assert torch.equal(clf.predict(x), pred)


def _sorted_blobs() -> tuple:
    """Three well separated classes in 3-D, sorted by class (like iris)."""
    import numpy as np

    gen = torch.Generator().manual_seed(0)
    centres = 3.0 * torch.eye(3, dtype=torch.float64)
    x = torch.cat([c + torch.randn(15, 3, generator=gen, dtype=torch.float64) for c in centres])
    return x.numpy(), np.repeat([0, 1, 2], 15)


@pytest.mark.parametrize(
    "make",
    [
        lambda: DeepNTKClassifier(relu_dual(), depth=2),
        lambda: InfiniteDepthNTKClassifier(hermite_dual([0, 0, 0, 1])),
    ],
    ids=["deep", "infinite"],
)
def test_classifiers_are_scikit_learn_classifiers(make) -> None:
    # not recognized as classifiers, cross_val_score split class-sorted data by KFold: each
    # test fold held a class never trained on, and every fold scored 0
    from sklearn.base import is_classifier
    from sklearn.model_selection import cross_val_score

    x, y = _sorted_blobs()
    scores = cross_val_score(make(), x, y, cv=3)
    assert scores.min() > 0.8
    assert is_classifier(make())
    fitted = make().fit(x, y)
    assert fitted.score(x, y) == pytest.approx(float((fitted.predict(x) == y).mean()))


def test_set_params_after_fit_keeps_the_fitted_model() -> None:
    # predict used the current depth / activation with coef_ fitted at the old ones (here the
    # singular-kernel scaling of a relu fit: training accuracy 0.78)
    data = dirichlet_sphere_data(60, [2, 1], [1, 2], 0.4, seed=1)
    clf = DeepNTKClassifier(relu_dual(), depth=2).fit(data.x, data.y)
    out, pred = clf.decision_function(data.x), clf.predict(data.x)
    clf.set_params(depth=7)
    assert torch.equal(clf.decision_function(data.x), out)
    clf.set_params(activation=singular_activation(2), ridge=1.0)
    assert torch.equal(clf.predict(data.x), pred)
    assert (clf.depth_, clf.ridge_, clf.activation_.name) == (2, 0.0, relu_dual().name)
    refit = clf.fit(data.x, data.y)
    assert (refit.depth_, refit.ridge_) == (7, 1.0)
    assert refit.activation_.name == singular_activation(2).name


def test_set_params_after_fit_keeps_the_fitted_limit_classifier() -> None:
    # the limit classifier kept limit_ from fit but used the new activation's kernel (another
    # singular kernel: 2% of the predictions changed; relu: a ValueError)
    data = dirichlet_sphere_data(60, [2, 1], [1, 2], 0.4, seed=1)
    test = dirichlet_sphere_data(200, [2, 1], [1, 2], 0.4, seed=2)
    limit = InfiniteDepthNTKClassifier(singular_activation(2)).fit(data.x, data.y)
    want = limit.predict(test.x)
    for act in (singular_activation(3), relu_dual()):
        limit.set_params(activation=act)
        assert torch.equal(limit.predict(test.x), want)
        assert limit.activation_.name == singular_activation(2).name


@pytest.mark.parametrize(
    "make",
    [
        lambda: DeepNTKClassifier(relu_dual(), depth=2),
        lambda: InfiniteDepthNTKClassifier(relu_dual()),
        lambda: InfiniteDepthNTKClassifier(hermite_dual([0, 0, 0, 1])),
        lambda: InfiniteDepthNTKClassifier(singular_activation(2)),
    ],
    ids=["deep", "majority", "nearest", "singular"],
)
def test_classifiers_predict_only_the_labels_of_y(make) -> None:
    data = dirichlet_sphere_data(40, [2, 1], [1, 2], 0.4, seed=1)
    y = torch.where(data.y == 0, 3, 7)
    clf = make().fit(data.x, y)
    assert torch.equal(clf.classes_, torch.tensor([3, 7]))
    test = dirichlet_sphere_data(100, [2, 1], [1, 2], 0.4, seed=2)
    assert set(clf.predict(test.x).tolist()) <= {3, 7}
    assert clf.score(data.x, y) > 0.5


@pytest.mark.parametrize("act", [relu_dual(), erf_dual(), hermite_dual([0, 0, 0, 1])])
def test_infinite_depth_predict_checks_the_number_of_features(act) -> None:
    # relu predicted silently, erf failed in a torch matmul
    data = dirichlet_sphere_data(20, [2, 1], [1, 2], 0.4, seed=1)
    clf = InfiniteDepthNTKClassifier(act).fit(data.x, data.y)
    with pytest.raises(ValueError, match=r"^x must have 2 columns, got 3"):
        clf.predict(torch.cat([data.x, data.x[:, :1]], dim=1))
    with pytest.raises(ValueError, match=r"^x must have 2 columns, got 1"):
        clf.predict(data.x[:, :1])
    assert clf.n_features_in_ == data.x.shape[1] == 2


def test_custom_duals_run_under_no_grad() -> None:
    """A custom dual's derivative comes from autograd: under ``torch.no_grad()``
    dual_from_activation, ntk_recursion and the classifiers with such a dual failed with
    torch's "element 0 of tensors does not require grad"."""
    rho = torch.tensor([0.3, 0.5, -0.2], dtype=torch.float64)
    dual = dual_from_activation(torch.tanh, points=16)
    expected = ntk_recursion(rho, 2, dual)
    tr = dirichlet_sphere_data(20, [2, 1], [1, 2], 0.4, seed=1)
    pred = DeepNTKClassifier(dual, 2).fit(tr.x, tr.y).predict(tr.x)
    with torch.no_grad():
        torch.testing.assert_close(
            ntk_recursion(rho, 2, dual_from_activation(torch.tanh, points=16)), expected
        )
        torch.testing.assert_close(ntk_recursion(rho, 2, dual), expected)
        assert torch.equal(DeepNTKClassifier(dual, 2).fit(tr.x, tr.y).predict(tr.x), pred)
    with torch.inference_mode(), pytest.raises(RuntimeError, match=r"^a dual from dual_from_act"):
        ntk_recursion(rho, 2, dual)


def test_duals_must_be_normalized_and_of_an_elementwise_activation() -> None:
    """An unnormalized dual (dual(1) = 2) gave a sphere-kernel diagonal of 11.1, and a
    non-elementwise activation (softmax) a "normalized" dual with dual(1) = 0.00024."""
    one = torch.ones((), dtype=torch.float64)
    for act in (
        relu_dual(), erf_dual(), hermite_dual([1e-3, 3.0, 7.0, 1e5]), singular_activation(7),
        dual_from_activation(torch.tanh), dual_from_activation(torch.relu, points=8),
    ):  # fmt: skip
        assert abs(float(act.dual(one)) - 1.0) < 1e-12
    mine = DualActivation("quad", dual=lambda r: 0.5 * r + 0.5 * r**2, derivative=lambda r: 0.5 + r)
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(
        sphere_kernel(x, None, 3, mine).diag(), torch.ones(5, dtype=torch.float64)
    )
    with pytest.raises(
        ValueError,
        match=r"^activation 'twice' must have dual\(1\) = 1, got dual\(1\) = 2: .*elementwise",
    ):
        DualActivation("twice", dual=lambda r: r + r**2, derivative=lambda r: 1 + 2 * r)
    with pytest.raises(
        ValueError, match=r"^activation 'custom' must have dual\(1\) = 1, got dual\(1\) = 0\.000244"
    ):
        dual_from_activation(lambda z: torch.softmax(z, -1))
    with pytest.raises(TypeError, match=r"^dual must be callable as dual\(rho\), got int"):
        DualActivation("x", dual=3, derivative=4)  # type: ignore[arg-type]
