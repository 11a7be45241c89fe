"""The design-space planner (issue 15): its choice equals a brute-force search over the same law."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from archscale.cli.main import app
from archscale.laws import GranularityLaw, Law, published
from archscale.laws.design import Design, design_grid, plan_designs
from archscale.laws.errors import LawDataError, OnBoundWarning

FFN = 2 / 3


def flops_per_token(design, active, router_cost):
    """Krajewski et al. 2024 Eq. 10 per token, written out: d = 64·n_blocks and N_act = 12·d²·n_blocks."""
    n_blocks = (active / (12 * 64**2)) ** (1 / 3)
    d_model = 64 * n_blocks
    routed = 0 if design.experts == 1 else design.experts * design.granularity - design.shared
    return (12 * d_model**2 * 6 + d_model * routed * router_cost) * n_blocks


def brute_force(law, designs, compute, cap=None, router_cost=14.0):
    """Every design on a 4000-point log grid of active sizes; totals computed here from the definition."""
    best = None
    for design in designs:
        active = np.geomspace(1e5, compute / 6 / 1e3, 4000)
        total = active * ((1 - FFN) + FFN * design.experts / design.top_k)
        keep = total <= cap if cap is not None else np.ones_like(active, dtype=bool)
        table = pd.DataFrame({
            "active_params": active, "params": total,
            "tokens": compute / flops_per_token(design, active, router_cost),
            "experts": float(design.experts), "granularity": float(design.granularity),
            "sparsity": 1 - design.top_k / design.experts,
        })[keep]  # fmt: skip
        losses = law.predict(table)
        i = int(np.argmin(losses))
        if best is None or losses[i] < best[2]:
            best = (design, float(table["active_params"].iloc[i]), float(losses[i]))
    return best


@pytest.mark.parametrize(
    ("key", "designs", "cap", "router_cost"),
    [
        ("krajewski2024", design_grid([8], [2], [1, 2, 4, 8, 16, 32], [1]), None, 14.0),
        ("krajewski2024", design_grid([8], [2], [1, 2, 4, 8, 16], [0]), None, 0.0),
        ("ludziejewski2025", design_grid([1, 2, 4, 8, 16, 32, 64], [1], [1], [0]), None, 0.0),
        ("ludziejewski2025", design_grid([1, 2, 4, 8, 16, 32, 64], [1], [1], [0]), 5e9, 14.0),
    ],
)
def test_the_planners_choice_is_the_brute_force_optimum(key, designs, cap, router_cost):
    law = published(key).laws[0]
    plan = plan_designs(1e21, law, designs, max_total_params=cap, router_cost=router_cost)
    design, active, loss = brute_force(law, designs, 1e21, cap, router_cost)
    assert plan.best.design == design
    assert -1e-12 <= loss - plan.best.loss < 2e-5  # never worse than the grid, within its resolution
    assert plan.best.active_params == pytest.approx(active, rel=5e-3)  # the grid's resolution
    losses = [c.loss for c in plan.choices]
    assert losses == sorted(losses) and len(plan.choices) == len(designs)
    if cap is not None:
        assert all(c.total_params <= cap * (1 + 1e-9) for c in plan.choices)


@pytest.mark.parametrize(
    ("compute", "granularity", "experts_x_active", "tokens", "loss"),
    [  # Krajewski et al. 2024 Table 2 (E = 64; N = E x N_act; the loss from their rounded Table 1 law)
        (2.95e18, 8, 64 * 100e6, 4.37e9, 3.133),
        (1.93e20, 16, 64 * 1e9, 28.94e9, 2.491),
        (1.41e21, 16, 64 * 3e9, 72.90e9, 2.245),
        (6.46e21, 32, 64 * 7e9, 137.60e9, 2.076),
        (4.16e23, 32, 64 * 70e9, 941.07e9, 1.694),
        (5.69e24, 64, 64 * 300e9, 2.96e12, 1.503),
        (4.97e25, 64, 64 * 1e12, 7.94e12, 1.367),
    ],
)
def test_counting_the_router_reproduces_krajewskis_compute_optimal_granularity(
    compute, granularity, experts_x_active, tokens, loss
):
    law = published("krajewski2024").laws[0]
    plan = plan_designs(compute, law, design_grid([64], [1], [2**i for i in range(9)], [0]))
    assert plan.best.design.granularity == granularity
    assert plan.best.active_params * 64 == pytest.approx(experts_x_active, rel=0.1)
    assert plan.best.tokens == pytest.approx(tokens, rel=0.05)
    assert plan.best.loss == pytest.approx(loss, rel=0.01)  # their table uses unrounded coefficients
    assert plan.best.flops_per_token * plan.best.tokens == pytest.approx(compute)
    free_routing = plan_designs(compute, law, [c.design for c in plan.choices], router_cost=0)
    assert free_routing.best.design.granularity == 256  # without the router's FLOPs the finest G offered wins


def test_a_law_cannot_rank_designs_by_a_knob_it_does_not_read():
    law = published("krajewski2024").laws[0]
    with pytest.raises(LawDataError, match="does not read experts"):
        plan_designs(1e21, law, [Design(8, 2, 1), Design(16, 2, 1)])
    with pytest.raises(LawDataError, match="does not read shared"):
        plan_designs(1e21, law, [Design(8, 2, 2, 0), Design(8, 2, 2, 1)])


GRANULARITY_TRUTH = {"a": 20.0, "b": 30.0, "c": 0.5, "g": 3.0, "alpha": 0.12, "beta": 0.15, "gamma": 0.6}


def granularity_grid() -> pd.DataFrame:
    """4 sizes x 4 token counts x G in {1, 4, 16}: the points a granularity law is fitted on."""
    return pd.DataFrame(
        [
            (p, d, g)
            for p in np.geomspace(1e7, 1e9, 4)
            for d in np.geomspace(1e9, 1e11, 4)
            for g in (1.0, 4.0, 16.0)
        ],
        columns=["params", "tokens", "granularity"],
    )


def test_a_fitted_laws_interval_comes_with_the_plan(tmp_path):
    truth = GRANULARITY_TRUTH
    grid = granularity_grid()
    rng = np.random.default_rng(0)
    grid["loss"] = GranularityLaw.from_coefficients(truth).predict(grid) * np.exp(
        rng.normal(0, 0.003, len(grid))
    )
    law = GranularityLaw(bootstrap=40, seed=1).fit(grid)
    plan = plan_designs(1e20, law, design_grid([8], [2], [1, 4, 16], [0]))
    low, high = plan.best.interval
    assert low < plan.best.loss < high
    fit = tmp_path / "granularity.json"
    fit.write_text(json.dumps(law.to_dict()))
    result = CliRunner().invoke(app, ["plan", "--compute", "1e20", "--design-space", "--fit", str(fit),
                                      "--grid-experts", "8", "--grid-granularity", "1,4,16", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["choices"][0]["label"] == plan.best.design.label
    assert payload["choices"][0]["loss"] == pytest.approx(plan.best.loss)
    assert [c["worse_by"] for c in payload["choices"]] == sorted(c["worse_by"] for c in payload["choices"])


def test_a_plan_from_a_fit_the_data_did_not_pin_down_says_so(tmp_path):
    """No granularity effect (g ~ 0): the saved fit has its G term on a bound or faded, and the CLI plan
    from that file carries the warning, which a published law's plan does not."""
    grid = granularity_grid()
    truth = GRANULARITY_TRUTH | {"g": 1e-9}
    grid["loss"] = GranularityLaw.from_coefficients(truth).predict(grid)
    with pytest.warns(OnBoundWarning):
        law = GranularityLaw().fit(grid)
    fit = tmp_path / "flat.json"
    fit.write_text(json.dumps(law.to_dict()))
    command = [
        "plan",
        "--compute",
        "1e20",
        "--design-space",
        "--grid-experts",
        "8",
        "--grid-granularity",
        "1,4",
    ]
    result = CliRunner().invoke(app, [*command, "--fit", str(fit), "--json"])
    assert result.exit_code == 0, result.output
    reason = Law.from_dict(json.loads(fit.read_text())).degenerate_
    assert reason is not None
    assert any(f"this fit is degenerate: {reason}" in note for note in json.loads(result.stdout)["notes"])
    published_plan = CliRunner().invoke(app, [*command, "--law", "krajewski2024", "--json"])
    assert not any("degenerate" in note for note in json.loads(published_plan.stdout)["notes"])


def test_design_space_without_a_design_law_is_one_error_line():
    result = CliRunner().invoke(
        app, ["plan", "--compute", "1e21", "--design-space", "--law", "chinchilla-approach3"]
    )
    assert result.exit_code == 2 and "needs a design law" in result.output


def test_a_negative_router_cost_is_one_error_line_naming_the_option():
    result = CliRunner().invoke(app, ["plan", "--compute", "1e21", "--design-space", "--law", "krajewski2024",
                                      "--grid-experts", "64", "--router-cost", "-1"])  # fmt: skip
    assert result.exit_code == 2 and "--router-cost" in result.output
    assert len(result.output.strip().splitlines()) == 1
