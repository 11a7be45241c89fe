"""IsoFLOP analysis (Chinchilla approach 2) against Porian et al. 2024's published exponents."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from archscale.laws.isoflop import isoflop_fit


@pytest.fixture(scope="module")
def porian(shared_data):
    folder = shared_data / "porian2024"
    points = pd.read_csv(folder / "isoflop_points.csv").rename(
        columns={"flops_budget": "compute", "n_params": "params"}
    )
    published = {r["config_id"]: r for r in json.loads((folder / "published_fit_results.json").read_text())}
    return points, published


def test_all_15_configurations_within_002_of_the_published_exponent(porian):
    points, published = porian
    assert points["config_id"].nunique() == 15
    rows = []
    for config, group in points.groupby("config_id"):
        fit = isoflop_fit(group)
        reference = published[config]["bs_median_weighted"]
        rows.append((config, fit.alpha_N, reference["n_exponent"], fit.alpha_D, reference["t_exponent"]))
    report = pd.DataFrame(rows, columns=["config", "a_ours", "a_published", "b_ours", "b_published"])
    report["a_error"] = report.a_ours - report.a_published
    print("\n" + report.round(4).to_string())
    assert report.a_error.abs().max() <= 0.02
    assert (report.b_ours - report.b_published).abs().max() <= 0.02


def test_edge_budgets_are_skipped_and_reported(porian):
    points, _ = porian
    fit = isoflop_fit(points[points.config_id == "owt2|base|long|kaplan|standard|val"])
    assert len(fit.skipped) == 2
    assert all("no interior minimum (lowest loss at the smallest params)" in s for s in fit.skipped)
    assert len(fit.optima) == 10


def test_bootstrap_interval_contains_the_published_exponent(porian):
    points, published = porian
    config = "rw|tuned|short|const|standard|val"  # the paper's headline: a = 0.497 (Chinchilla-like)
    fit = isoflop_fit(points[points.config_id == config], bootstrap=200)
    lo, hi = fit.size_law.intervals_["exponent"]
    assert lo < published[config]["bs_median_weighted"]["n_exponent"] < hi
    assert fit.to_dict()["intervals"]["alpha_N"] == [lo, hi]
