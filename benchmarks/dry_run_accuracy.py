"""How close ``archscale sweep run --dry-run`` comes to the wall time of real sweeps on this machine's CPU.

Builds a small corpus offline (Python standard-library text, two subsets, as the tests do), runs a few
small sweeps through the real command (``archscale sweep run SPEC``, 2 workers) and prints each sweep's
estimated and measured wall time. ``--constants`` instead measures the costs the estimate charges besides
training FLOPs, and ``--rates`` the CPU training rates it charges them at (``archscale.sweeps.dry_run``).
Run from the repository root::

    .venv/bin/python benchmarks/dry_run_accuracy.py --constants
    .venv/bin/python benchmarks/dry_run_accuracy.py --rates
    .venv/bin/python benchmarks/dry_run_accuracy.py --repeats 3

Timings on a shared box move with other jobs' load: the script prints the load average before and after.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import inspect
import os
import platform
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as the sweep workers run: one thread, passive waits
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from archscale.sweeps.spec import SweepSpec

ARCHSCALE = str(Path(sys.executable).with_name("archscale"))
DOC_MODULES = ("argparse", "collections", "csv", "datetime", "decimal", "email", "fractions", "functools",
               "heapq", "inspect", "itertools", "json", "logging", "os", "pathlib", "random", "re", "shutil",
               "statistics", "string", "subprocess", "tarfile", "textwrap", "threading", "unittest", "zipfile")  # fmt: skip

# name -> the sweep spec's grid and settings (the corpus is added): small sweeps of 4 runs whose wall time is
# mostly not training (the case), one with the study's end-only evals, and many tiny runs.
CASES: dict[str, dict] = {
    "4 runs, 7 evals of the whole test split each": {
        "seq_len": 64,
        "grid": [
            {"models": ["dense-100k", "moe-100k"], "tokens": [61440], "batch_sizes": [8], "lrs": [1e-3, 2e-3]}
        ],
    },
    "4 runs, study settings (micro-batches of 4, end-only evals of 4096 tokens a subset)": {
        "seq_len": 128,
        "micro_batch_size": 4,
        "eval": {"tokens_per_subset": 4096, "at_tokens": []},
        "grid": [
            {
                "models": ["dense-100k", "moe-100k"],
                "tokens": [204800],
                "batch_sizes": [16],
                "lrs": [2e-3, 4e-3],
            }
        ],
    },
    "12 tiny runs (16 steps each)": {
        "seq_len": 64,
        "grid": [
            {
                "models": ["dense-50k", "moe-50k"],
                "tokens": [8192],
                "batch_sizes": [8],
                "lrs": [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2, 3.2e-2],
            }
        ],
    },
}
# A sweep of two 1-step runs (a 1-step dense-100k run is what RUN_START_S is measured on): its wall time is
# mostly the sweep's own start-up.
START_UP: dict = {
    "seq_len": 64,
    "eval": {"tokens_per_subset": 64, "at_tokens": []},
    "grid": [{"models": ["dense-100k"], "tokens": [512], "batch_sizes": [8], "lrs": [1e-3, 2e-3]}],
}
RATE_MODELS = tuple(
    f"{kind}-{size}" for size in ("50k", "100k", "200k", "330k", "800k") for kind in ("dense", "moe")
)


def build_corpus(out: Path) -> str:
    """The tests' offline corpus (``tests/conftest.py``): json and email sources as ``code``, standard-library
    docstrings as ``prose``; tokenised to bytes shards so that no sweep pays for it."""
    from archscale.data import build_corpus_from_documents, get_shards, get_tokenizer

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    code = [
        p.read_text(encoding="utf-8")
        for name in ("json", "email")
        for p in sorted((stdlib / name).glob("*.py"))
    ]
    prose = []
    for name in DOC_MODULES:
        module = importlib.import_module(name)
        docs = [inspect.getdoc(module) or ""] + [
            inspect.getdoc(o) or "" for _, o in inspect.getmembers(module) if callable(o)
        ]
        prose.append("\n\n".join(d for d in docs if d))
    corpus = build_corpus_from_documents({"code": code, "prose": prose}, out)
    for split in ("train", "test"):
        get_shards(corpus, get_tokenizer("bytes", corpus), split, progress=False)
    return str(corpus.path)


def timed_command(args: list[str]) -> tuple[float, float]:
    """Wall seconds of a command, which must succeed, and the CPU seconds of it and its children."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def sweep_command(spec: dict, folder: Path) -> tuple[float, float]:
    """``archscale sweep run`` of ``spec`` into a new store in ``folder``: wall and CPU seconds."""
    folder.mkdir()
    (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
    args = ["sweep", "run", str(folder / "spec.yaml"), "--store", str(folder / "r.sqlite"), "--no-progress"]
    return timed_command([ARCHSCALE, *args])


def accuracy(corpus: str, tmp: Path, repeats: int) -> None:
    """Each case's estimate against the wall time of ``archscale sweep run`` (2 workers), the cases taken in
    turn ``repeats`` times so that a burst of other jobs' load hits them alike (best and median); and its runs'
    estimated seconds against the CPU seconds they took (the sweep's, less those of the start-up sweep of two
    1-step runs), which other jobs' load hardly moves."""
    from archscale.sweeps.dry_run import SWEEP_START_S, plan_runs, sweep_seconds

    sweeps = {"start-up": START_UP, **CASES}
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in sweeps}
    for i in range(repeats):
        for j, (name, settings) in enumerate(sweeps.items()):
            spec = {"name": "dry-run-accuracy", "dataset": corpus, **settings}
            measured[name].append(sweep_command(spec, tmp / f"sweep{j}-{i}"))
    start_cpu = statistics.median(cpu for _, cpu in measured["start-up"])
    print("| sweep | runs | estimated wall s = sweep start-up + per worker (start-up, training, evals, writes) "
          "| measured wall s: best, median (all) | estimated ÷ best, ÷ median | the runs' seconds: estimated, "
          "measured in CPU time (median) | estimated ÷ measured |")  # fmt: skip
    print("|---|---:|---|---|---:|---|---:|")
    for name, settings in CASES.items():
        planned = plan_runs(SweepSpec.from_dict({"name": "x", "dataset": corpus, **settings}).expand())
        cpu = next(iter(planned[0].parts))
        estimate = sweep_seconds(planned, workers=2)[cpu]
        parts = ", ".join(
            f"{sum(p.parts[cpu][part] for p in planned) / 2:.1f}" for part in planned[0].parts[cpu]
        )
        walls = [wall for wall, _ in measured[name]]
        fastest, median = min(walls), statistics.median(walls)
        runs_estimate = sum(p.seconds[cpu] for p in planned)
        runs_cpu = statistics.median(cpu_s for _, cpu_s in measured[name]) - start_cpu
        print(f"| {name} | {len(planned)} | {estimate:.1f} = {SWEEP_START_S:.1f} + ({parts}) | {fastest:.1f}, "
              f"{median:.1f} ({', '.join(f'{w:.1f}' for w in walls)}) | {estimate / fastest:.2f}, "
              f"{estimate / median:.2f} | {runs_estimate:.1f}, {runs_cpu:.1f} | {runs_estimate / runs_cpu:.2f} |")  # fmt: skip
    walls = [wall for wall, _ in measured["start-up"]]
    print(f"\n- start-up sweep (two 1-step runs): wall {min(walls):.1f} s best, {statistics.median(walls):.1f} s "
          f"median; {start_cpu:.1f} CPU s (estimated wall: {SWEEP_START_S:.1f} s and the runs)")  # fmt: skip


def rates(corpus: str, tmp: Path, repeats: int) -> None:
    """Training and evaluation tokens/s of each ladder preset at the micro study's settings (one thread, seq
    128, batch 16 in micro-batches of 4, evals in batches of 16 windows), in thread CPU time, which other
    jobs' load does not enter: the median of ``20 × repeats`` steps after 5 warm-up steps, of 3 evaluations."""
    from archscale.sweeps.worker import limit_threads
    from archscale.training.run_config import RunConfig
    from archscale.training.trainer import Trainer, load_train_data

    def cpu_seconds(work: Callable[[], object], times: int) -> float:
        spent = []
        for _ in range(times):
            start = time.thread_time()
            work()
            spent.append(time.thread_time() - start)
        return statistics.median(spent)

    limit_threads(1)
    print(
        "| model | FLOPs/token (N) | training tokens/s | evaluation tokens/s | a token's eval ÷ training cost |"
    )
    print("|---|---:|---:|---:|---:|")
    for model in RATE_MODELS:
        run = RunConfig.from_dict({"model": model, "tokens": 2048 * 100, "batch_size": 16, "micro_batch_size": 4,
                                   "seq_len": 128, "lr": 1e-3, "dataset": corpus, "eval_tokens_per_subset": 4096})  # fmt: skip
        trainer = Trainer(run, load_train_data(run), tmp / model)
        cpu_seconds(trainer._train_step, 5)
        train = run.tokens_per_step / cpu_seconds(trainer._train_step, 20 * repeats)
        evaluate = sum(w.numel() - len(w) for w in trainer.data.eval_windows.values()) / cpu_seconds(
            trainer._eval, 3
        )
        print(
            f"| {model} | {run.derived()['N']:.3g} | {train:,.0f} | {evaluate:,.0f} | {train / evaluate:.2f} |"
        )


def best(measure: Callable[[], float], repeats: int) -> float:
    return min(measure() for _ in range(repeats))


def constants(corpus: str, tmp: Path, repeats: int) -> None:
    """The estimate's constants on this machine: each the minimum over ``repeats`` (other jobs only add)."""
    from archscale.data.io import sha256_file
    from archscale.sweeps.dry_run import CHECKPOINT_BYTES_PER_PARAM, WEIGHT_BYTES_PER_PARAM
    from archscale.sweeps.worker import limit_threads, run_one
    from archscale.training import checkpoint
    from archscale.training.run_config import RunConfig
    from archscale.training.trainer import Trainer, load_train_data

    limit_threads(1)

    def config(model: str, tokens: int, batch: int, seq: int, lr: float = 1e-3) -> RunConfig:
        return RunConfig.from_dict({"model": model, "tokens": tokens, "batch_size": batch, "seq_len": seq, "lr": lr,
                                    "dataset": corpus, "eval_tokens_per_subset": seq, "eval_at_tokens": []})  # fmt: skip

    smallest = config("dense-25k", 8 * 100, 1, 8)
    tiny = Trainer(smallest, load_train_data(smallest), tmp)
    for _ in range(5):
        tiny._train_step()

    def step() -> float:
        start = time.perf_counter()
        tiny._train_step()
        return time.perf_counter() - start

    floor = best(step, 30 * repeats)
    print(
        f"PASS_FLOOR_S: {floor * 1e3:.2f} ms (dense-25k, one micro-batch of 1 x 8 tokens, best of {30 * repeats})"
    )

    blob = tmp / "blob.bin"
    blob.write_bytes(os.urandom(256 * 2**20))

    def hashing() -> float:
        start = time.perf_counter()
        sha256_file(blob)
        return time.perf_counter() - start

    print(
        f"HASH_BYTES_PER_S: {blob.stat().st_size / best(hashing, repeats) / 1e9:.2f} GB/s (sha256_file, 256 MiB)"
    )
    blob.unlink()

    sizes, seconds = [], []
    for model in ("dense-100k", "moe-800k"):
        run = config(model, 64 * 8, 8, 64)
        trainer = Trainer(run, load_train_data(run), tmp / model)
        state = trainer.state_dict()

        def write(state: dict = state, run: RunConfig = run, model: str = model) -> float:
            start = time.perf_counter()
            checkpoint.save_state(tmp / model, state, run)
            return time.perf_counter() - start

        seconds.append(best(write, repeats))
        sizes.append((tmp / model / checkpoint.STATE_FILE).stat().st_size)
    rate = (sizes[1] - sizes[0]) / (seconds[1] - seconds[0])
    fixed = seconds[0] - sizes[0] / rate
    print(f"WRITE_BYTES_PER_S: {rate / 1e6:.0f} MB/s; WRITE_S: {fixed * 1e3:.1f} ms (checkpoints of "
          f"{sizes[0] / 1e6:.1f} MB in {seconds[0] * 1e3:.0f} ms, {sizes[1] / 1e6:.1f} MB in {seconds[1] * 1e3:.0f} ms)")  # fmt: skip

    def one_run(lr: float) -> tuple[float, float]:
        run = config("dense-100k", 64 * 8, 8, 64, lr)
        start = time.perf_counter()
        result = run_one(run.to_dict(), str(tmp / run.run_id), lambda kind, payload: None)
        return time.perf_counter() - start, result["wall_time"]

    one_run(1.0)  # the worker's first run pays its lazy imports: that is the sweep's start-up
    runs = [one_run(1e-3 * (i + 1)) for i in range(5 * repeats)]
    run_wall = min(wall for wall, _ in runs)
    params = config("dense-100k", 64 * 8, 8, 64).derived()["P_total"]
    final_writes = 2 * fixed + (CHECKPOINT_BYTES_PER_PARAM + WEIGHT_BYTES_PER_PARAM) * params / rate
    print(f"RUN_START_S: {(min(wall - trained for wall, trained in runs) - final_writes) * 1e3:.0f} ms (a 1-step "
          "dense-100k run in a started worker, less its step and its two final writes)")  # fmt: skip

    walls = [
        sweep_command({"name": "start-up", "dataset": corpus, **START_UP}, tmp / f"start-up{i}")[0]
        for i in range(repeats)
    ]
    print(
        f"SWEEP_START_S: {min(walls) - run_wall:.2f} s (`archscale sweep run` of two such runs on 2 workers, "
        f"{min(walls):.2f} s, less one run; all: {', '.join(f'{w:.1f}' for w in walls)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constants", action="store_true", help="measure the estimate's constants instead")
    parser.add_argument("--rates", action="store_true", help="measure the CPU training rates instead")
    parser.add_argument("--repeats", type=int, default=1, help="sweeps per case (constants: measurements ×)")
    args = parser.parse_args()
    print(f"## Dry-run accuracy, {datetime.datetime.now():%Y-%m-%d %H:%M}\n")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
          f"{platform.python_version()}; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"- command: `{' '.join(['python', *sys.argv])}`\n")
    with tempfile.TemporaryDirectory(prefix="dry-run-accuracy-") as name:
        tmp = Path(name)
        corpus = build_corpus(tmp / "corpus")
        measure = constants if args.constants else rates if args.rates else accuracy
        measure(corpus, tmp, args.repeats)
    print(f"\n- load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
