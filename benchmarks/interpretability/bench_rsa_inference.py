"""RSA inference: neuronkit-interpretability's ``evaluate_models`` against rsatoolbox's
``eval_fixed``, ``eval_bootstrap_rdm``, ``eval_bootstrap_pattern`` and ``eval_bootstrap``, and
its ``crossvalidate`` and ``bootstrap_crossvalidate`` against rsatoolbox's ``crossval`` and
``bootstrap_crossval``, and its ``fit_interpolation`` against ``fit_interpolate`` (CPU,
float64).

Matched settings: fixed model RDMs (rsatoolbox ``ModelFixed``) against the RDMs of 20 subjects
at 100 conditions (a true model plus noise; 4 models: the truth, two noisier versions of it and
an unrelated one), cosine, correlation ("corr"), their whitened forms ("cosine_cov",
"corr_cov"), Spearman, rho-a ("rho-a") and Kendall tau-a ("tau-a"); a noise
ceiling for every bootstrap sample (rsatoolbox's default ``boot_noise_ceil=True``). The RDMs
objects and models are built outside the timed call. Cross-validation: the same fixed models
plus, for the cosine family, a weighted model of three components (the noisy truths and the
unrelated RDM; least squares, rsatoolbox's ``fit_regress``: its nonnegative ``fit_regress_nn``
does not return on these data, see the README), 4 subject x 5 condition folds (rsatoolbox's
defaults for 20 subjects and 100 conditions); rsatoolbox gets neuronkit's folds as its train,
test and ceiling sets, built outside the timed call (its ``sets_k_fold`` is not timed).
Bootstrap cross-validation: the same models, ``--cv-samples`` samples of subjects and
conditions, 2 fold assignments each, both libraries' default folds (3 x 5 here).
Interpolation: the four models as a sequence (unrelated, noisiest, truth, noisy; the truth
inside it), fitted to all subjects (rsatoolbox ``ModelInterpolate``).

1. Equivalence: the fixed evaluations and noise ceilings are compared elementwise; for the
   bootstraps rsatoolbox runs once with numpy's global state seeded, and neuronkit's bootstrap
   engine (``rsa_inference._bootstrap``) gets the same draws: every sample's evaluations and
   noise ceilings must agree within 1e-10. Cross-validation: every fold's evaluations and the
   noise ceiling, with rsatoolbox's conjugate-gradient step of the whitened fits solved
   directly for the check (it stops at a relative residual of 1e-5: weights off by ~1e-3).
   Bootstrap cross-validation draws differ between the libraries (rsatoolbox's folds come
   from numpy's global state, per subject fold): not compared here; the tests compare the
   folds of one bootstrap sample and the statistics of the same samples. Interpolation: the
   fitted weights.
2. Timing: both libraries in this process, their calls alternating (order swapped every
   repeat), median of ``--repeats`` calls after one warm-up (one call where rsatoolbox's
   warm-up took over 2 s), fixed thread count. Where rsatoolbox raises, its error is the
   row's result and neuronkit is timed alone.

The workspace sources of neuronkit-interpretability are put first on ``sys.path``.

    python benchmarks/interpretability/bench_rsa_inference.py [--threads 1] [--repeats 3]
        [--samples 200] [--cv-samples 5] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

_SRC = Path(__file__).resolve().parents[2] / "packages" / "interpretability" / "src"
if _SRC.is_dir() and str(_SRC) not in sys.path:  # measure the workspace, not an installed copy
    sys.path.insert(0, str(_SRC))

RESULTS = Path(__file__).resolve().parents[1] / "results" / "interpretability_rsa_inference.json"
NAMES = {
    "cosine": "cosine",
    "correlation": "corr",
    "whitened_cosine": "cosine_cov",
    "whitened_correlation": "corr_cov",
    "spearman": "spearman",
    "rho_a": "rho-a",
    "kendall_tau_a": "tau-a",
}
RSATOOLBOX = {
    None: "eval_fixed",
    "subjects": "eval_bootstrap_rdm",
    "conditions": "eval_bootstrap_pattern",
    "both": "eval_bootstrap",
    "crossval": "crossval",
    "bootstrap_crossval": "bootstrap_crossval",
    "fit_interpolate": "fit_interpolate",
}
SEQUENCE = [3, 2, 0, 1]  # the models in the order of the interpolation's sequence


def make_inputs(n_subjects: int, n: int):
    import numpy as np

    rng = np.random.default_rng([n_subjects, n])
    pairs = n * (n - 1) // 2
    truth = rng.random(pairs)
    data = truth + 1.5 * rng.random((n_subjects, pairs))
    models = np.stack(
        [truth, truth + rng.random(pairs), truth + 3 * rng.random(pairs), rng.random(pairs)]
    )
    return models, data


def _rsatoolbox_draws(n_samples: int, n_subjects: int, n: int, bootstrap: str, seed: int):
    """The draws rsatoolbox makes after ``np.random.seed(seed)``: subjects, then conditions."""
    import numpy as np

    np.random.seed(seed)  # noqa: NPY002
    subjects, conditions = [], []
    for _ in range(n_samples):
        if bootstrap != "conditions":
            subjects.append(np.random.randint(0, n_subjects, size=n_subjects))  # noqa: NPY002
        if bootstrap != "subjects":
            conditions.append(np.random.randint(0, n, size=n))  # noqa: NPY002
    return (np.array(subjects) if subjects else None), (
        np.array(conditions) if conditions else None
    )


def check_equal(method: str, bootstrap: str | None, models, data, n_samples: int) -> float:
    """Largest difference between the two libraries' evaluations and noise ceilings."""
    import numpy as np
    import rsatoolbox.inference as inference
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    from neuronkit.interpretability import evaluate_models
    from neuronkit.interpretability.rsa_inference import _bootstrap

    if bootstrap == "bootstrap_crossval":
        return None
    if bootstrap == "fit_interpolate":
        ours_fit, theirs_fit = interpolation_calls(method, models, data)
        return float(np.abs(ours_fit() - theirs_fit()).max())
    if bootstrap == "crossval":
        ours_cv, theirs_cv = crossval_calls(method, models, data)
        with _exact_cg():
            result, theirs = ours_cv(), theirs_cv()
        return max(
            float(np.abs(result.evaluations - theirs.evaluations[0].T).max()),
            float(np.abs(result.noise_ceiling - theirs.noise_ceiling).max()),
        )
    rsa_models = [ModelFixed(f"m{k}", RDMs(m[None])) for k, m in enumerate(models)]
    run = getattr(inference, RSATOOLBOX[bootstrap])
    if bootstrap is None:
        theirs = run(rsa_models, RDMs(data), method=NAMES[method])
        ours = evaluate_models(models, data, method)
        return max(
            float(np.abs(ours.per_subject - theirs.evaluations[0].T).max()),
            float(np.abs(ours.noise_ceiling - theirs.noise_ceiling).max()),
        )
    np.random.seed(7)  # noqa: NPY002
    theirs = run(rsa_models, RDMs(data), method=NAMES[method], N=n_samples)
    draws = _rsatoolbox_draws(n_samples, data.shape[0], _n(data), bootstrap, 7)
    samples, ceilings = _bootstrap(models, data, method, *draws)
    return max(
        float(np.nanmax(np.abs(samples - theirs.evaluations))),
        float(np.nanmax(np.abs(ceilings - theirs.noise_ceiling.T))),
    )


def _n(data) -> int:
    from neuronkit.interpretability import n_conditions

    return n_conditions(data.shape[1])


@contextlib.contextmanager
def _exact_cg():
    """rsatoolbox's conjugate-gradient solves (whitened fits) replaced by direct ones: one
    Cholesky factor per distinct covariance (a few per run: one per training-set size)."""
    import hashlib

    import scipy.linalg
    import scipy.sparse.linalg

    factors: dict[str, object] = {}

    def direct(v, b, **_):
        v = v.tocsr()
        key = hashlib.sha1(v.indptr.tobytes() + v.indices.tobytes() + v.data.tobytes()).hexdigest()
        if key not in factors:
            factors[key] = scipy.linalg.cho_factor(v.toarray())
        return scipy.linalg.cho_solve(factors[key], b), 0

    saved = scipy.sparse.linalg.cg
    scipy.sparse.linalg.cg = direct
    try:
        yield
    finally:
        scipy.sparse.linalg.cg = saved


def _rsatoolbox_folds(data, subject_fold, condition_fold):
    """rsatoolbox's (train, test, ceiling) sets of ``sets_k_fold`` for the given folds (two or
    more of each)."""
    import numpy as np
    from rsatoolbox.rdm import RDMs

    rdms = RDMs(data, pattern_descriptors={"index": np.arange(condition_fold.size)})
    sets: tuple[list, list, list] = ([], [], [])
    for s in range(subject_fold.max() + 1):
        test_s, train_s = np.flatnonzero(subject_fold == s), np.flatnonzero(subject_fold != s)
        for c in range(condition_fold.max() + 1):
            test_c = np.flatnonzero(condition_fold == c)
            train_c = np.flatnonzero(condition_fold != c)
            for out, subjects, conditions in zip(
                sets, (train_s, test_s, train_s), (train_c, test_c, test_c), strict=True
            ):
                picked = rdms.subset("index", subjects).subset_pattern("index", conditions)
                out.append([picked, conditions])
    return rdms, sets


def _cv_models(method: str, models):
    """The fixed models and, for the cosine family, one weighted model (least squares):
    neuronkit's mapping, rsatoolbox's models and their fitters."""
    from rsatoolbox.model import ModelFixed, ModelWeighted
    from rsatoolbox.model.fitter import fit_mock, fit_regress
    from rsatoolbox.rdm import RDMs

    from neuronkit.interpretability import FITTED_COMPARISONS

    ours = {f"m{k}": m for k, m in enumerate(models)}
    theirs = [ModelFixed(f"m{k}", RDMs(m[None])) for k, m in enumerate(models)]
    fitters = [fit_mock] * len(models)
    if method in FITTED_COMPARISONS:
        ours["weighted"] = models[1:]
        theirs.append(ModelWeighted("weighted", RDMs(models[1:])))
        fitters.append(fit_regress)
    return ours, theirs, fitters


def bootstrap_crossval_calls(method: str, models, data, n_samples: int):
    from rsatoolbox.inference import bootstrap_crossval
    from rsatoolbox.rdm import RDMs

    from neuronkit.interpretability import bootstrap_crossvalidate

    ours_models, theirs_models, fitters = _cv_models(method, models)
    rsa_data = RDMs(data)

    def ours():
        return bootstrap_crossvalidate(
            ours_models,
            data,
            method,
            n_bootstrap=n_samples,
            nonnegative=False,
            show_progress=False,
        )

    def theirs():
        return bootstrap_crossval(
            theirs_models, rsa_data, method=NAMES[method], fitter=fitters, N=n_samples
        )

    return ours, theirs


def crossval_calls(method: str, models, data):
    """neuronkit's ``crossvalidate`` and rsatoolbox's ``crossval`` on neuronkit's folds."""
    from rsatoolbox.inference import crossval

    from neuronkit.interpretability import crossvalidate

    ours_models, theirs_models, fitters = _cv_models(method, models)

    def ours():
        return crossvalidate(ours_models, data, method, nonnegative=False, show_progress=False)

    folds = ours()
    rdms, (train, test, ceil) = _rsatoolbox_folds(data, folds.subject_fold, folds.condition_fold)

    def theirs():
        return crossval(theirs_models, rdms, train, test, ceil, NAMES[method], fitter=fitters)

    return ours, theirs


def interpolation_calls(method: str, models, data):
    """neuronkit's ``fit_interpolation`` and rsatoolbox's ``fit_interpolate``: weights ``[4]``."""
    from rsatoolbox.model import ModelInterpolate
    from rsatoolbox.model.fitter import fit_interpolate
    from rsatoolbox.rdm import RDMs

    from neuronkit.interpretability import fit_interpolation

    sequence = models[SEQUENCE]
    model, rsa_data = ModelInterpolate("interpolation", RDMs(sequence)), RDMs(data)

    def ours():
        return fit_interpolation(sequence, data, method)

    def theirs():
        return fit_interpolate(model, rsa_data, method=NAMES[method])

    return ours, theirs


def calls(method: str, bootstrap: str | None, models, data, n_samples: int):
    if bootstrap == "fit_interpolate":
        return interpolation_calls(method, models, data)
    if bootstrap == "crossval":
        return crossval_calls(method, models, data)
    if bootstrap == "bootstrap_crossval":
        return bootstrap_crossval_calls(method, models, data, n_samples)
    from rsatoolbox import inference
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    from neuronkit.interpretability import evaluate_models

    rsa_models = [ModelFixed(f"m{k}", RDMs(m[None])) for k, m in enumerate(models)]
    rsa_data = RDMs(data)
    run = getattr(inference, RSATOOLBOX[bootstrap])
    kwargs = {} if bootstrap is None else {"N": n_samples}

    def ours():
        return evaluate_models(
            models, data, method, bootstrap=bootstrap, n_bootstrap=n_samples, show_progress=False
        )

    def theirs():
        return run(rsa_models, rsa_data, method=NAMES[method], **kwargs)

    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--cv-samples", type=int, default=5, help="samples of the bootstrap cross-validation"
    )
    parser.add_argument("--quick", action="store_true", help="5 subjects, 20 conditions")
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import warnings
    from importlib.metadata import version

    import numpy as np

    from neuronkit.common import atomic_write_json
    from neuronkit.interpretability import __version__

    warnings.filterwarnings("ignore", message="Noise ceiling for tau")
    n_subjects, n = (5, 20) if args.quick else (20, 100)
    models, data = make_inputs(n_subjects, n)
    rows = []
    for bootstrap in RSATOOLBOX:
        for method in NAMES:
            n_samples = args.cv_samples if bootstrap == "bootstrap_crossval" else args.samples
            ours, theirs = calls(method, bootstrap, models, data, n_samples)
            times: dict[str, list[float]] = {"neuronkit": [], "rsatoolbox": []}
            pair = [("neuronkit", ours), ("rsatoolbox", theirs)]
            diff = failure = None
            with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):  # tqdm bars
                ours()  # warm-up
                try:
                    diff = check_equal(method, bootstrap, models, data, min(args.samples, 20))
                    start = time.perf_counter()
                    theirs()  # warm-up; a call over 2 s is timed once more, not --repeats
                    slow = time.perf_counter() - start > 2.0
                except Exception as err:  # rsatoolbox failing is a result
                    failure, slow = f"{type(err).__name__}: {err}", False
                    pair = pair[:1]
                for i in range(1 if slow else args.repeats):
                    for name, fn in pair if i % 2 == 0 else pair[::-1]:
                        start = time.perf_counter()
                        fn()
                        times[name].append(time.perf_counter() - start)
            nk = statistics.median(times["neuronkit"]) * 1e3
            rs = statistics.median(times["rsatoolbox"]) * 1e3 if failure is None else None
            row = {
                "bootstrap": bootstrap or "none",
                "method": method,
                "samples": 0 if bootstrap in (None, "crossval", "fit_interpolate") else n_samples,
                "max_abs_diff": diff,
                "neuronkit_ms": nk,
                "rsatoolbox_ms": rs,
                "speedup": None if rs is None else rs / nk,
                "rsatoolbox_error": failure,
            }
            rows.append(row)
            theirs_text = f"{rs:10.2f} ms, {rs / nk:7.1f}x" if rs is not None else failure
            print(
                f"{row['bootstrap']:>10} {method:>20}: neuronkit {nk:9.2f} ms, rsatoolbox "
                f"{theirs_text} (max diff {diff})",
                flush=True,
            )
            if diff is not None and diff > 1e-10:
                raise SystemExit(f"results differ for {bootstrap} {method}: {diff}")
    if args.quick:
        return
    out = {
        "subjects": n_subjects,
        "conditions": n,
        "models": len(models),
        "threads": args.threads,
        "repeats": args.repeats,
        "cv_samples": args.cv_samples,
        "neuronkit_interpretability": __version__,
        "rsatoolbox": version("rsatoolbox"),
        "numpy": np.__version__,
        "rows": rows,
    }
    atomic_write_json(RESULTS, out)


if __name__ == "__main__":
    main()
