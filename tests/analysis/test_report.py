"""The report: page, figures and summary.json from analyses and from a store, loaded in a real browser."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from archscale.analysis import Extrapolation
from archscale.analysis.public import clark_evidence, steplaw_evidence
from archscale.cli.main import app
from archscale.report import build_report, write_report
from archscale.report.build import run_inventory
from archscale.report.headline import headline_numbers, study_targets
from archscale.store import ResultsStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--allow-file-access-from-files", "--virtual-time-budget=10000",
]  # fmt: skip

# Injected into a copy of the page: after load, record every image's source and decoded width.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const seen = Array.from(document.images).map(i => [i.getAttribute("src"), i.complete ? i.naturalWidth : -1]);
  document.body.setAttribute("data-images", JSON.stringify(seen));
});
</script></body>"""


@pytest.fixture(scope="module")
def synthetic_report(analyses, store, tmp_path_factory, shared_data):
    """The report of the synthetic study (every analysis runs), with the store's run inventory and the public
    evidence panel: Clark et al. (shipped) and Step Law (read from ../shared, as a user's path)."""
    return write_report(
        analyses,
        tmp_path_factory.mktemp("report"),
        inventory=run_inventory(store),
        about={"bootstrap": 20},
        public=[clark_evidence(bootstrap=20), steplaw_evidence(shared_data / "steplaw", bootstrap=20)],
    )


def test_summary_carries_the_analyses_headline_and_verdicts(synthetic_report, analyses):
    summary = json.loads(synthetic_report.summary_path.read_text())  # strict JSON: NaN was refused
    moe = analyses.loss_law.extrapolations["moe"]
    assert summary["headline"]["extrapolation"]["moe"]["mean_abs_rel_error"] == pytest.approx(
        moe.mean_abs_rel_error
    )
    assert summary["headline"]["verdicts"] == {row.claim: "supported" for row in analyses.verdicts.rows}
    assert summary["analyses"]["verdicts"]["rows"][0]["effect"] == pytest.approx(
        analyses.verdicts.rows[0].effect
    )
    assert summary["runs"]["total"] == 9 and summary["runs"]["by_status"] == {"finished": 8, "failed": 1}
    assert {"torch", "numpy"} <= set(summary["environment"]["packages"])
    headline = synthetic_report.headline()
    assert "Eq. 5 moe: largest model predicted within" in headline
    # One sentence per claim ends the headline: the user's runs, then the public data where they speak to it.
    claims = summary["headline"]["claims"]
    assert len(claims) == 6 and all(sentence in headline for sentence in claims)
    assert claims[0].startswith("MoE reaches a lower test loss at equal compute: your runs say supported (")
    assert "; the public data (Clark et al. 2022 routing curves) say " in claims[0]
    assert claims[0].endswith(
        "; the public data (Step Law lr × batch grids (Li et al. 2025)) do not measure it."
    )
    assert "(Clark et al. 2022 routing curves) do not measure it; the public data (Step Law" in claims[2]
    assert "(Step Law lr × batch grids (Li et al. 2025)) say supported (B_opt MoE ÷ dense" in claims[2]
    assert claims[5].startswith("The benefit of more experts shrinks with model size: the public data (Clark")
    assert "(paper: 16.37 %)" in headline
    assert "targets of the study's design:" in headline and summary["headline"]["targets"]


def test_page_shows_every_figure_and_table(synthetic_report):
    page = synthetic_report.index.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(sources) == sorted(f"figures/{name}.png" for name in synthetic_report.figures)
    assert all((synthetic_report.index.parent / s).is_file() for s in sources)
    for heading in ("Replication verdicts", "Public evidence at real scale", "Table 1", "Figures 2–5",
                    "Figure 6", "Table 2", "Runs (9"):  # fmt: skip
        assert heading in page
    assert "Licence: CC BY 4.0, Copyright 2022 DeepMind Technologies Limited" in page
    assert "Licence: none stated by the repository: not shipped with archscale" in page
    assert {"public1_batch_size_law", "public1_lr_law"} <= set(synthetic_report.figures)  # Step Law's two
    assert page.count('class="supported"') >= 6  # the study's five, and the panel's
    assert "No downstream scores are stored" in page


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_page_renders_in_headless_chromium_with_every_image_loaded(synthetic_report, tmp_path):
    probe = synthetic_report.index.with_name("probe.html")
    probe.write_text(synthetic_report.index.read_text().replace("</body>", IMAGE_PROBE))
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r"data-images=\"([^\"]*)\"", dom)
    assert found, dom[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == len(synthetic_report.figures)
    assert all(width > 300 for _, width in images), images  # decoded PNGs, not broken-image icons
    shot = tmp_path / "page.png"
    subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000",
         f"--screenshot={shot}", synthetic_report.index.as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000


def test_build_report_reads_a_store_and_the_cli_prints_the_headline(store, tmp_path):
    report = build_report(store.path, tmp_path / "from-store", bootstrap=10)
    summary = json.loads(report.summary_path.read_text())
    assert summary["bootstrap"] == 10 and summary["store"] == str(store.path.resolve())
    inventory = {row["model_name"]: row for row in summary["runs"]["inventory"]}
    assert (
        inventory["dense-6.4m"]["status"] == "failed" and inventory["dense-6.4m"]["final_train_loss"] is None
    )
    with ResultsStore(store.path) as again:
        last = again.curve().groupby("run_id")["lm_loss"].last()
    assert inventory["moe-800k"]["final_train_loss"] == pytest.approx(last[inventory["moe-800k"]["run_id"]])
    assert "not tested" in summary["headline"]["verdicts"].values()  # no batch × LR grid in this store
    result = CliRunner().invoke(app, ["report", "--store", str(store.path), "--out", str(tmp_path / "cli"),
                                      "--bootstrap", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Table 1 dense: α_N =" in result.output and (tmp_path / "cli" / "index.html").is_file()


def test_a_reference_the_report_does_not_know_is_refused_in_one_line(store, tmp_path):
    for given, message in (("nosuch=/x", "unknown reference nosuch: choose from steplaw"),
                           ("steplaw", "expected NAME=PATH"),
                           (f"steplaw={tmp_path}", "no dense_lr_bs_loss.csv in")):  # fmt: skip
        result = CliRunner().invoke(app, ["report", "--store", str(store.path), "--out", str(tmp_path / "r"),
                                          "--reference", given])  # fmt: skip
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_report_refuses_a_missing_or_empty_store(tmp_path):
    missing = CliRunner().invoke(app, ["report", "--store", str(tmp_path / "nope.sqlite")])
    assert missing.exit_code != 0 and "no results store" in missing.output
    ResultsStore(tmp_path / "empty.sqlite").close()
    with pytest.raises(ValueError, match="holds no runs"):
        build_report(tmp_path / "empty.sqlite", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_downstream_scores_become_table_2_marked_against_chance(store, tmp_path):
    run_id = store.runs(model_name="moe-800k")["run_id"].item()
    records = {
        "archscale_arith": {"metrics": {"acc": 0.30, "acc_stderr": 0.10}, "chance": 0.25, "n": 20},
        "other_task": {"metrics": {"acc": 0.90, "acc_stderr": 0.02}, "chance": 0.25, "n": 400},
    }
    store.set_meta(run_id, "downstream", records)
    try:
        report = build_report(store.path, tmp_path / "table2", bootstrap=0)
    finally:
        store.set_meta(run_id, "downstream", {})
    rows = {row["task"]: row for row in json.loads(report.summary_path.read_text())["downstream"]}
    assert (
        rows["archscale_arith"] | {"value": 0.30, "near_chance": True, "model": "moe-800k"}
        == rows["archscale_arith"]
    )
    assert rows["other_task"]["near_chance"] is False and rows["other_task"]["stderr"] == 0.02
    page = report.index.read_text()
    assert "at chance" in page and "above chance" in page and "Scores within two standard errors" in page


def test_runs_over_one_epoch_are_counted_and_warned_about(store, tmp_path):
    run_ids = store.runs()["run_id"].tolist()[:2]
    for run_id, epochs in zip(run_ids, (3.2, 1.5), strict=True):
        store.set_meta(run_id, "data", {"epochs": epochs})
    try:
        report = build_report(store.path, tmp_path / "epochs", bootstrap=0, public=False)
    finally:
        for run_id in run_ids:
            store.set_meta(run_id, "data", {})
    summary = json.loads(report.summary_path.read_text())
    assert summary["runs"]["over_one_epoch"] == 2 and summary["runs"]["max_epochs"] == 3.2
    epochs = {row["run_id"]: row["epochs"] for row in summary["runs"]["inventory"]}
    assert epochs[run_ids[0]] == 3.2 and epochs[run_ids[1]] == 1.5
    assert "2 runs went over their training data more than once (up to 3.2 epochs)" in report.headline()
    assert "Repeated data:" in report.index.read_text()


def test_the_targets_of_the_design_are_stated_met_missed_or_not_checked(analyses):
    """A synthetic study from exact laws resolves α_N and the extrapolation far within the targets; a worse
    prediction is stated as missed, and a family without the analysis says why it was not checked."""
    status = {t.target: (t.status, t.reason) for t in study_targets(analyses)}
    for family in ("dense", "moe"):
        assert status[f"{family}: α_N 95 % interval width ≤ 0.3"] == ("met", None)
        assert status[f"{family}: largest model predicted within 3% mean |error|"] == ("met", None)
    worse = copy.deepcopy(analyses)
    moe = worse.loss_law.extrapolations["moe"]
    moe.mean_abs_rel_error, moe.prediction_coverage = 0.05, 0.75
    worse.loss_law.extrapolations["dense"] = Extrapolation(family="dense", skipped="no dense runs")
    status = {t.target: (t.status, t.reason) for t in study_targets(worse)}
    assert status["moe: largest model predicted within 3% mean |error|"] == ("missed", None)
    assert status["moe: its prediction interval holds ≥ 80% of the points"] == ("missed", None)
    assert status["dense: largest model predicted within 3% mean |error|"] == ("not checked", "no dense runs")
    moe.prediction_coverage = 0.85
    assert ("met", None) in [(t.status, t.reason) for t in study_targets(worse) if "holds" in t.target]


def test_the_headline_marks_alpha_n_of_a_degenerate_fit_and_the_gain_built_on_it(analyses):
    """The main job printed α_N with an interval beside a 'not tested' verdict when the Eq. 5 fit had σ on
    its bound: the terminal must say such a number is no measurement, as the report page does."""

    def headline(result) -> list[str]:
        lines = headline_numbers(result).text(runs={}).splitlines()
        return [line for line in lines if "Table 1" in line or "data-utilisation gain" in line]

    assert not any("not a measurement" in line for line in headline(analyses))
    worse = copy.deepcopy(analyses)
    worse.allocation.degenerate["moe"] = "the moe Eq. 5 fit is degenerate: log_sigma ended on its bound"
    marked = {line.split(":")[0].strip(): "not a measurement" in line for line in headline(worse)}
    assert marked == {
        "Table 1 dense": False,
        "Table 1 moe": True,
        "data-utilisation gain of MoE, α_N(MoE) / α_N(dense) − 1 (the paper's definition)": True,
    }
