"""The shipped multi-power-law curves: byte-identical to the published files, complete, and with a rebuilt
per-step learning rate that equals the rate the files log."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

from archscale.data.errors import DataError
from archscale.data.public import MULTIPOWER2025, multipower2025_curves, multipower_lr

SCHEDULES = {"constant_24000", "constant_72000", "cosine_24000", "cosine_72000", "wsd_20000_24000",
             "wsdld_20000_24000", "wsdcon_3", "wsdcon_9", "wsdcon_18"}  # fmt: skip


def test_the_27_curves_are_there_with_their_published_rows() -> None:
    curves = multipower2025_curves()
    assert set(curves["size"]) == {"25M", "100M", "400M"}
    assert {tuple(r) for r in curves[["size", "schedule"]].drop_duplicates().to_numpy()} == {
        (size, schedule) for size in ("25M", "100M", "400M") for schedule in SCHEDULES
    }
    # rows per file (`wc -l` less the header), less the step-24,000 point of the five 24,000-step runs
    assert curves.groupby("size").size().to_dict() == {"25M": 2059, "100M": 2103, "400M": 2103}
    assert curves["step"].max() == 71936 and (curves["loss"] > 2).all() and (curves["loss"] < 11).all()


def test_every_shipped_file_matches_the_listed_hash_and_the_list_its_pinned_hash() -> None:
    root = resources.files("archscale.data.public").joinpath("multipower2025")
    sums = root.joinpath("SHA256SUMS").read_bytes()
    assert hashlib.sha256(sums).hexdigest() == MULTIPOWER2025.sha256.split()[0]
    lines = sums.decode().splitlines()
    assert len(lines) == 27
    for line in lines:
        digest, name = line.split()
        assert hashlib.sha256(root.joinpath(name).read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_the_rebuilt_rate_equals_the_logged_rate_at_every_logged_step(schedule) -> None:
    curves = multipower2025_curves()
    for _, curve in curves[curves["schedule"] == schedule].groupby("size"):
        lr = multipower_lr(schedule, int(curve["step"].max()) + 1)
        np.testing.assert_allclose(lr[curve["step"].to_numpy()], curve["lr"].to_numpy(), rtol=1e-12, atol=0)


def test_hand_values_of_the_schedules() -> None:
    """Warm-up ends at the peak on index 2,159; the two-stage drop is at index 8,000; WSD's geometric decay
    is half-way (in log) at the middle of its 4,000 decay steps."""
    wsd = multipower_lr("wsd_20000_24000", 24000)
    assert wsd[0] == 0 and wsd[2159] == 3e-4 and wsd[19999] == 3e-4
    assert wsd[22000] == pytest.approx((3e-4 * 3e-5) ** 0.5, rel=1e-12)
    two = multipower_lr("wsdcon_3", 16000)
    assert two[7999] == 3e-4 and two[8000] == pytest.approx(3e-5, rel=1e-12)
    with pytest.raises(DataError, match="unknown schedule"):
        multipower_lr("triangle_100", 100)


def test_the_per_step_table_has_every_step_and_the_logged_losses() -> None:
    from archscale.data.public import multipower2025_steps

    table = multipower2025_steps("100M", ["wsdcon_3", "cosine_24000"])
    logged = multipower2025_curves().query("size == '100M' and schedule in ['wsdcon_3', 'cosine_24000']")
    for run_id, rows in table.groupby("run_id"):
        assert rows["step"].tolist() == list(range(1, len(rows) + 1))
        expected = logged[logged["run_id"] == run_id]
        measured = rows.dropna(subset=["loss"])
        assert measured["step"].tolist() == expected["step"].tolist()
        assert measured["loss"].tolist() == expected["loss"].tolist()
    cut = multipower2025_steps("100M", ["cosine_72000"], until=24_000)
    assert cut["step"].max() == 24_000
    assert cut["loss"].notna().sum() == (23936 - 2176) // 128 + 1  # logged every 128 steps from 2,176
