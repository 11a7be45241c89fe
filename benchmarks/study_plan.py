"""What the micro study's design resolves for each dense-vs-MoE claim, and what other designs would, by
``archscale plan study`` (issue 24): the planner's median widths under the micro study's measured truth
against the widths the real micro studies realised (seeds 0 and 1), then candidate designs at their cost.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/study_plan.py --stores S0/results.sqlite S1/results.sqlite \
        --replicates 20 --workers 2
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import yaml

from archscale.analysis.study_plan import plan_study
from archscale.analysis.suite import from_store
from archscale.store import ResultsStore
from archscale.study import micro_truth, preset_spec_path, study_design, study_runs
from archscale.sweeps.dry_run import plan_runs, sweep_seconds


def realised(store: Path, bootstrap: int) -> dict[str, float | None]:
    """Each claim's 95 % width in the study the store holds (its report's analyses)."""
    with ResultsStore(store, read_only=True) as results:
        rows = from_store(results, bootstrap=bootstrap).verdicts.rows
    return {
        r.measure.split(" at ")[0]: None
        if r.lower is None or r.upper is None
        else (math.log(r.upper / r.lower) if r.no_effect == 1.0 else r.upper - r.lower)
        for r in rows
    }


SWEEP_EXTRA = ["dense-25k", "moe-25k", "dense-800k", "moe-800k"]
"""The ladder's two sizes the micro sweeps leave out: sweeping them too gives the B_opt and lr_opt laws six sizes."""


def variant(out: Path, name: str, change) -> Path:
    """The micro spec with ``change`` applied to its sweep grids (the entries with micro_batch_size 2)."""
    spec = yaml.safe_load(preset_spec_path("micro").read_text())
    for entry in spec["grid"]:
        if entry.get("micro_batch_size") == 2:
            change(entry)
    spec["name"] = f"study-micro-{name}"
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", nargs="*", type=Path, default=[])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("study-plan-specs"))
    parser.add_argument("--designs", nargs="*", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for store in args.stores:
        print(f"realised, {store}: {realised(store, args.bootstrap)}", flush=True)
    truth = micro_truth()
    designs = {
        "micro": None,
        "sweeps-3-seeds": variant(args.out, "seeds3", lambda e: e.update(seeds=[0, 1, 2])),
        "sweeps-4x-tokens": variant(args.out, "tokens4", lambda e: e.update(tokens=[560000])),
        "sweeps-fine-lr": variant(
            args.out,
            "finelr",
            lambda e: (
                e.update(
                    lrs=[
                        1.0e-3,
                        1.4e-3,
                        2.0e-3,
                        2.8e-3,
                        4.0e-3,
                        5.6e-3,
                        8.0e-3,
                        1.1e-2,
                        1.6e-2,
                        2.3e-2,
                        3.2e-2,
                    ]
                )
                if len(e["lrs"]) > 1
                else None
            ),
        ),
        "sweeps-6-sizes": variant(
            args.out, "sizes6", lambda e: e.update(models=[*e["models"], *SWEEP_EXTRA])
        ),
        "sweeps-6-sizes-3-seeds": variant(
            args.out, "sizes6seeds3", lambda e: e.update(models=[*e["models"], *SWEEP_EXTRA], seeds=[0, 1, 2])
        ),
    }
    for name, spec in designs.items():
        if args.designs and name not in args.designs:
            continue
        runs = study_runs("micro", spec)[1]
        hours = sweep_seconds(plan_runs(runs), workers=2)
        cpu = next(v for k, v in hours.items() if k.startswith("cpu")) / 3600
        design, evals = study_design(runs)
        started = time.perf_counter()
        plan = plan_study(
            design, evals, *truth, replicates=args.replicates, bootstrap=args.bootstrap, workers=args.workers
        )
        cells = [
            "none" if c.width is None else f"{c.width:.3g} ({'×/÷' if c.ratio else '±'}{c.resolves:.3g})"
            for c in plan.claims
        ]
        print(
            f"| {name} | {len(runs)} | {cpu:.2g} h | "
            + " | ".join(cells)
            + f" | {time.perf_counter() - started:.0f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
