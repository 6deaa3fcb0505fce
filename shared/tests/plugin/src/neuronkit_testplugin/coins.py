"""Three reproductions: one whose claim holds, one whose claim fails, one that crashes."""

from neuronkit.common import Check, RunContext, reproduction


@reproduction(
    id="testplugin.fair_coin",
    paper="A fair coin",
    claim="the frequency of heads of a fair coin is within 0.05 of 1/2",
    checks=[Check("abs_error", "<=", 0.05, "|frequency - 0.5|")],
    seed=3,
)
def fair_coin(ctx: RunContext) -> None:
    n = 2_000 if ctx.quick else 20_000
    heads = ctx.rng.random(n) < 0.5
    ctx.metric("n", n)
    ctx.table("flips", [{"outcome": "heads", "count": int(heads.sum())}])
    ctx.note("Frequency of heads over n Bernoulli(0.5) draws.")
    ctx.check("abs_error", abs(float(heads.mean()) - 0.5))


@reproduction(
    id="testplugin.biased_coin",
    paper="A biased coin",
    claim="a coin with P(heads)=0.7 looks fair (it does not: this claim must fail)",
    checks=[
        Check("abs_error", "<=", 0.05, "|frequency - 0.5|"),
        Check("n_flips", ">=", 100, "number of flips"),
    ],
)
def biased_coin(ctx: RunContext) -> None:
    n = 2_000
    heads = ctx.rng.random(n) < 0.7
    ctx.check("n_flips", n)
    ctx.check("abs_error", abs(float(heads.mean()) - 0.5))


@reproduction(
    id="testplugin.broken",
    paper="A broken experiment",
    claim="never finishes: raises an error",
    checks=[Check("value", ">", 0)],
)
def broken(ctx: RunContext) -> None:
    raise RuntimeError("simulated failure inside the experiment")
