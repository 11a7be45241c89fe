"""Chaining laws in a plan (issue 26 item 3): ``chain_laws`` returns what it adds; a chained quantity's interval
carries the upstream law's uncertainty (its bootstrap samples, paired fit by fit) or is refused with the
reason; the expectations here are computed by hand from the bootstrap fits' coefficients."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from archscale.laws.bootstrap import Bootstrap
from archscale.laws.catalogue import published
from archscale.laws.compute_optimal import optimal_allocation
from archscale.laws.loss_laws import ChinchillaLaw
from archscale.laws.plan import Chain, Plan, chain_laws, make_plan, pairing
from archscale.laws.power import PowerLaw

TRUTH = {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28, "sigma": 1.69}
LAMBDA, EXPONENT = 0.1, -3.0  # the truth lr = λ·loss^e
GRID = [(p, d) for p in (2e7, 6e7, 2e8, 6e8, 2e9) for d in (4e8, 1e9, 3e9, 1e10, 3e10, 1e11)]


def hand_bootstrapped(
    target: str, inputs: tuple[str, ...], theta: np.ndarray, level: float = 0.9
) -> PowerLaw:
    """A power law whose bootstrap fits are the rows of ``theta`` (log λ, exponents…), fitted at their mean."""
    law = PowerLaw(target=target, inputs=inputs)
    law.theta_ = theta.mean(axis=0)
    law.bootstrap_ = Bootstrap(
        law=law, theta=theta, scales=np.zeros((len(theta), 2)), n=len(theta), method="parametric",
        resample="point", seed=0, level=level, noise={}, not_converged=0, on_bound={},
    )  # fmt: skip
    return law


def lr_thetas(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack(
        [np.log(LAMBDA) + 0.05 * rng.standard_normal(n), EXPONENT + 0.2 * rng.standard_normal(n)]
    )


def chinchilla_table(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(GRID, columns=["params", "tokens"])
    table["loss"] = ChinchillaLaw.from_coefficients(TRUTH).predict(table) * np.exp(
        0.01 * rng.standard_normal(30)
    )
    table["run_id"] = [f"run{i}" for i in range(len(table))]
    return table


def lr_table(seed: int, noise: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    loss = np.linspace(2.2, 3.6, 12)
    lr = LAMBDA * loss**EXPONENT * np.exp(noise * rng.standard_normal(len(loss)))
    return pd.DataFrame({"loss": loss, "lr": lr, "run_id": [f"run{i}" for i in range(len(loss))]})


def fitted(law, table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return law.fit(table)


def test_chain_laws_returns_what_it_adds_and_leaves_its_inputs_alone():
    loss_samples = np.linspace(2.2, 2.4, 30)
    known = Chain(
        quantities={"compute": 1e21, "loss": 2.3}, sources={"loss": "fit"}, samples={"loss": loss_samples}
    )
    before = copy.deepcopy(known)
    laws = [("lr fit", hand_bootstrapped("lr", ("loss",), lr_thetas(20, 0)))]
    laws += [("minicpm", law) for law in published("minicpm2024").laws]
    laws += [
        (
            "needs tokens",
            PowerLaw.from_coefficients({"lambda": 1.0, "exponent": 1.0}, target="x", inputs=("tokens",)),
        )
    ]
    given_laws = list(laws)
    added = chain_laws(known, laws)
    assert laws == given_laws
    assert known.quantities == before.quantities and known.sources == before.sources
    assert known.intervals == before.intervals == {} and known.no_interval == before.no_interval == {}
    assert set(known.samples) == {"loss"} and np.array_equal(known.samples["loss"], loss_samples)
    assert set(added.quantities) == {"lr", "batch_size"}  # only what it adds: neither compute nor loss
    assert added.sources == {"lr": "lr fit", "batch_size": "minicpm"}
    assert set(added.intervals) == {"lr"} and set(added.samples) == {"lr"}
    assert added.unsampled == {
        "batch_size": "minicpm has no bootstrap"
    }  # a published law: no interval, no refusal
    assert added.no_interval == {}
    assert [label for label, _ in added.unused] == ["needs tokens"]


def test_a_chained_interval_is_the_downstream_fits_at_the_upstream_samples_paired():
    """25 upstream loss samples, 20 lr fits: draw i (i < 20) meets refit refits[i], the 20 refits in a fixed
    shuffle (not i with i, which two fits saved with one seed would correlate); the draws keep their order."""
    theta = lr_thetas(20, 1)
    law = hand_bootstrapped("lr", ("loss",), theta, level=0.9)
    loss_samples = np.random.default_rng(2).normal(2.3, 0.03, 25)
    added = chain_laws(Chain(quantities={"loss": 2.3}, samples={"loss": loss_samples}), [("lr fit", law)])
    refits = pairing(law, 25)
    assert sorted(refits.tolist()) == list(range(20)) and (refits != np.arange(20)).mean() > 0.5
    by_hand = np.array(
        [np.exp(theta[refits[i], 0]) * loss_samples[i] ** theta[refits[i], 1] for i in range(20)]
    )
    np.testing.assert_allclose(added.samples["lr"], by_hand, rtol=1e-12)
    np.testing.assert_allclose(added.intervals["lr"], np.percentile(by_hand, [5, 95]), rtol=1e-12)
    assert added.quantities["lr"] == pytest.approx(np.exp(theta[:, 0].mean()) * 2.3 ** theta[:, 1].mean())


def test_a_plans_lr_interval_carries_the_allocations_uncertainty():
    """make_plan from a bootstrapped Chinchilla fit and a bootstrapped lr law: by hand, each Chinchilla
    fit's own optimum loss at C (closed form) and the lr fit of the same index at it."""
    chin = fitted(ChinchillaLaw(bootstrap=20, seed=0), chinchilla_table(0))
    theta = lr_thetas(20, 3)
    lr_law = hand_bootstrapped("lr", ("loss",), theta, level=0.95)
    plan = make_plan(1e21, [("chin", chin), ("lr", lr_law)])
    c = chin.bootstrap_coefficients_
    a, b, alpha, beta, sigma = (np.asarray(c[k]) for k in ("A", "B", "alpha", "beta", "sigma"))
    n = (alpha * a / (beta * b)) ** (1 / (alpha + beta)) * (1e21 / 6) ** (beta / (alpha + beta))
    loss = a / n**alpha + b / (1e21 / (6 * n)) ** beta + sigma
    refits = pairing(lr_law, len(loss))
    lr = np.exp(theta[refits, 0]) * loss[: len(refits)] ** theta[refits, 1]  # draw i meets its shuffled refit
    assert isinstance(plan, Plan)
    np.testing.assert_allclose(plan.chain.intervals["lr"], np.percentile(lr, [2.5, 97.5]), rtol=1e-9)
    payload = plan.to_dict()
    assert payload["intervals"]["lr"] == plan.chain.intervals["lr"] and payload["no_interval"] == {}
    assert "lr" in plan.summary() and "no interval" not in plan.summary()


def test_a_chain_of_two_steps_keeps_each_draw_together():
    """loss → batch_size = loss (every refit exact) → lr = batch_size / loss (every refit exact): every lr
    sample is exactly 1 when each quantity's samples stay indexed by the same upstream draw; a shuffle that
    moved the draws (not the refits) would pair one draw's batch size with another's loss."""
    exact = np.zeros((40, 1))
    batch = hand_bootstrapped("batch_size", ("loss",), np.column_stack([exact, np.ones(40)]))
    lr = hand_bootstrapped("lr", ("batch_size", "loss"), np.column_stack([exact, np.ones(40), -np.ones(40)]))
    loss_samples = np.random.default_rng(5).normal(2.3, 0.2, 30)
    known = Chain(quantities={"loss": 2.3}, samples={"loss": loss_samples})
    added = chain_laws(known, [("batch", batch), ("lr", lr)])
    np.testing.assert_allclose(added.samples["batch_size"], loss_samples, rtol=1e-12)
    np.testing.assert_allclose(added.samples["lr"], 1.0, rtol=1e-12)
    assert added.intervals["lr"] == pytest.approx([1.0, 1.0])


def test_a_law_without_a_single_design_is_chained_at_its_point_without_an_interval():
    """A law that cannot be evaluated refit by refit (a two-step law: no single log-sum-exp design) gives its
    point when chained, and says why there is no interval, instead of raising."""
    from archscale.laws.downstream_laws import TwoStepLaw

    class Unpaired(PowerLaw):
        paired = False

    law = hand_bootstrapped("lr", ("loss",), lr_thetas(20, 6))
    law.__class__ = Unpaired
    known = Chain(quantities={"loss": 2.3}, samples={"loss": np.full(20, 2.3)})
    added = chain_laws(known, [("two-step", law)])
    assert added.quantities["lr"] == pytest.approx(law.predict({"loss": [2.3]})[0])
    assert "lr" not in added.intervals and "refit by refit" in added.no_interval["lr"]
    assert TwoStepLaw.paired is False and ChinchillaLaw.paired is True


def test_a_law_from_a_quantity_without_samples_gets_no_interval_and_the_reason():
    lr_law = hand_bootstrapped("lr", ("loss",), lr_thetas(20, 4))
    # the loss of a published allocation has no samples
    plan = make_plan(1e21, [("chinchilla", published("chinchilla-approach3").laws[0]), ("lr fit", lr_law)])
    assert plan.get("lr") is not None and "lr" not in plan.chain.intervals
    reason = plan.to_dict()["no_interval"]["lr"]
    assert "loss it is computed from" in reason and "chinchilla has no bootstrap" in reason
    assert f"(no interval: {reason})" in plan.summary()
    # a given quantity keeps its interval but has no samples: a bootstrapped law from it gets none
    batch_law = hand_bootstrapped(
        "batch_size", ("lr",), np.column_stack([np.full(20, 10.0), np.linspace(-1.1, -0.9, 20)])
    )
    deepseek = [("deepseek2024", law) for law in published("deepseek2024").laws if law.target != "batch_size"]
    plan = make_plan(
        1e22, [*deepseek, ("batch fit", batch_law)], given={"lr": (0.01, "mup transfer", [0.008, 0.012])}
    )
    assert plan.chain.intervals == {"lr": [0.008, 0.012]}
    assert "given by mup transfer" in plan.chain.no_interval["batch_size"]
    # a published law gives no interval and no refusal, as before
    assert make_plan(1e22, deepseek).to_dict()["no_interval"] == {}


def test_a_bootstrapped_law_of_exact_inputs_keeps_its_plain_interval():
    """lr(compute) reads only the compute, which is exact: its interval is its bootstrap at that compute."""
    law = hand_bootstrapped(
        "lr", ("compute",), np.column_stack([np.linspace(-0.1, 0.1, 20), np.linspace(-0.13, -0.12, 20)])
    )
    plan = make_plan(1e22, [("chinchilla", published("chinchilla-approach3").laws[0]), ("lr fit", law)])
    lo, hi = law.predict_interval({"compute": [1e22]})
    assert plan.chain.intervals["lr"] == pytest.approx([lo[0], hi[0]], rel=1e-12)


def test_paired_intervals_cover_the_true_lr_at_the_true_optimum():
    """100 replicates of a Chinchilla ladder (1 % noise) and an lr(loss) ladder (1 % noise), both fitted with
    50 bootstrap refits: the plan's 95 % lr interval covers the true lr at the true optimum's loss in 94 of
    the 100 (200 replicates of 100 refits: 0.935); the old interval, the lr law's bootstrap at the plan's loss
    (which leaves the loss's uncertainty out), in 35 (200 of 100 refits: 0.395)."""
    true_loss = optimal_allocation(ChinchillaLaw.from_coefficients(TRUTH), 1e21).loss
    true_lr = LAMBDA * true_loss**EXPONENT
    new = old = 0
    for r in range(100):
        chin = fitted(ChinchillaLaw(bootstrap=50, seed=2 * r), chinchilla_table(r))
        lr = fitted(PowerLaw(target="lr", inputs=("loss",), bootstrap=50, seed=2 * r + 1), lr_table(1000 + r))
        plan = make_plan(1e21, [("chin", chin), ("lr", lr)])
        lo, hi = plan.chain.intervals["lr"]
        new += lo <= true_lr <= hi
        conditional = lr.predict_interval({"loss": [plan.get("loss")]})
        old += conditional[0][0] <= true_lr <= conditional[1][0]
    assert new >= 85 and old <= 60, (new, old)


def test_a_given_quantity_carries_its_interval_or_says_why_it_has_none():
    """A μP ladder's LR with a closed interval keeps it; one open at a grid edge, or with none, is listed in
    ``no_interval`` with the source's reason, never silently shown bare."""
    from archscale.laws.plan import take_given

    chain = take_given({
        "lr": (0.01, "ladder A", [0.008, 0.012]), "batch_size": (256.0, "ladder B", [None, 512.0]),
        "loss": (2.5, "ladder C", None),
    })  # fmt: skip
    assert chain.intervals == {"lr": [0.008, 0.012]}
    assert chain.no_interval == {
        "batch_size": "ladder B gave one open at an end (a grid edge)", "loss": "ladder C gave none",
    }  # fmt: skip
