"""One training run: AdamW, the run's LR schedule, MoE auxiliary losses, curves, evals, noise scale.

The trainer runs the loop; the pieces with their own rules live beside it: the noise-scale measurement
(:class:`GradientNoiseProbe`), when to evaluate and checkpoint (:class:`StepSchedule`), and the MoE bias
update, an optimiser hook the model's own module registers (:func:`register_bias_update`).

The run is a pure function of its ``RunConfig``: batches come from a sampler indexed by step, the model
is initialised from the run's seed, and a checkpoint holds everything else (model, optimiser, estimator,
the curve so far), so a run killed at any moment and resumed ends with the same numbers.

Events (``on_event(kind, payload)``) let a coordinator show progress and stream rows to the store; the
returned ``RunResult`` carries the complete curve, so nothing depends on an event having arrived.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.nn.parallel import DistributedDataParallel

from archscale.data import BatchSampler, eval_windows, get_shards, get_tokenizer, load_corpus
from archscale.errors import ArchscaleError
from archscale.models import ConfigError, build_model, compile_model, flops_per_token
from archscale.models.memory import MemoryPlan, plan_memory
from archscale.models.moe import register_bias_update
from archscale.models.parametrization import optimizer_groups
from archscale.training import checkpoint
from archscale.training.distributed import (
    DistInfo,
    average_gradients,
    mean_across_ranks,
    min_across_ranks,
    shard_model,
    whole_value,
)
from archscale.training.evaluation import evaluate
from archscale.training.noise_probe import GradientNoiseProbe
from archscale.training.noise_scale import NoiseScaleEstimator
from archscale.training.options import TrainOptions
from archscale.training.run_config import RunConfig
from archscale.training.step_schedule import StepSchedule

EventHandler = Callable[[str, dict[str, Any]], None]


@dataclass
class TrainData:
    """What a run reads: a step-indexed batch sampler and fixed held-out windows per subset, and ``record``:
    the fingerprints of the corpus and tokeniser they come from and the epochs the run makes over its data
    (stored with the run: runs trained on different text, or on text seen again, must not be compared
    unawares)."""

    sampler: BatchSampler
    eval_windows: dict[str, torch.Tensor]
    token_bytes: np.ndarray
    vocab_size: int
    record: dict[str, Any] = field(default_factory=dict)


def load_train_data(run: RunConfig) -> TrainData:
    corpus = load_corpus(run.dataset)
    tokenizer = get_tokenizer(run.tokenizer, corpus)
    sampler = BatchSampler(
        get_shards(corpus, tokenizer, "train"), run.batch_size, run.seq_len, run.seed, weights=run.mixture
    )
    windows = eval_windows(get_shards(corpus, tokenizer, "test"), run.seq_len, run.eval_tokens_per_subset)
    record = {
        "corpus": corpus.fingerprint,
        "tokenizer": tokenizer.fingerprint,
        "epochs": sampler.epochs(run.trained_tokens),
    }
    return TrainData(sampler, windows, tokenizer.token_bytes, tokenizer.vocab_size, record)


@dataclass
class RunResult:
    run_id: str
    status: str  # "finished" or "diverged"
    steps_done: int
    final_loss: float
    diverged_step: int | None
    wall_time: float
    curve: list[dict] = field(default_factory=list)
    evals: list[dict] = field(default_factory=list)
    message: str | None = None
    # corpus and tokeniser fingerprints, epochs, and the memory plan it trained under (MemoryPlan.describe)
    data: dict[str, Any] = field(default_factory=dict)


class Trainer:
    def __init__(
        self,
        run: RunConfig,
        data: TrainData,
        run_dir: Path,
        *,
        device: str | torch.device = "cpu",
        dist_info: DistInfo | None = None,
        options: TrainOptions = TrainOptions(),
        on_event: EventHandler | None = None,
        divergence_ratio: float = 1.5,
        branches: Mapping[int, Sequence[str | Path]] | None = None,
        memory_budget: float | None = None,
    ) -> None:
        """``branches``: step → run directories of the shorter WSD runs that start from this run's state
        after that step (:mod:`archscale.training.branches`). ``memory_budget``: the bytes per device the
        run may hold (default: the GPU's memory, or the memory the host has available), which its memory
        plan fits."""
        self.run, self.data, self.run_dir = run, data, Path(run_dir)
        self.branches = {step: [Path(d) for d in dirs] for step, dirs in (branches or {}).items()}
        self.device = torch.device(device)
        self.dist = dist_info or DistInfo()
        self.on_event = (
            on_event if on_event is not None and self.dist.is_main else (lambda kind, payload: None)
        )
        self.divergence_ratio = divergence_ratio
        rows = run.batch_size // self.dist.world_size
        if run.batch_size % self.dist.world_size or rows % run.micro_batch_size:
            raise ConfigError(
                f"RunConfig.batch_size: {run.batch_size} does not split into {self.dist.world_size} ranks of "
                f"whole micro-batches of {run.micro_batch_size}",
                hint=f"choose a batch size divisible by {self.dist.world_size * run.micro_batch_size}",
            )
        self.autocast_dtype = torch.bfloat16 if self.device.type == "cuda" and options.bf16 else None
        if options.shard and not self.dist.enabled:
            raise ArchscaleError(
                "shard: FSDP shards a model over the ranks of a torchrun group, and this process is alone",
                hint="start this command with `torchrun --nproc-per-node N` (N ≥ 2) or train without --shard",
            )

        if run.model.vocab_size != data.vocab_size:
            raise ConfigError(
                f"RunConfig.model.vocab_size: {run.model.vocab_size}, but the data's tokeniser has "
                f"{data.vocab_size} ids",
                hint=f"build the data with RunConfig.tokenizer={run.tokenizer!r}",
            )
        if memory_budget is None:
            memory_budget = default_memory_budget(self.device, options.device_share)
        # before anything is allocated: how each micro-batch runs, or a refusal with the numbers; every rank
        # plans from the smallest rank's memory, so they all choose alike (FSDP and DDP do not mix)
        budget = min_across_ranks(
            math.inf if memory_budget is None else memory_budget, self.dist, self.device
        )
        state = checkpoint.load_state(self.run_dir, run)  # a resumed run keeps its passes where they fit
        kept = None if state is None else state.get("memory_plan")
        self.plan = check_memory(
            run, self.dist.world_size, options, budget, bf16=self.autocast_dtype is not None, kept=kept
        )
        # a resumed run whose plan no longer fits (or whose ranks or options changed) trains on in other
        # passes: equal up to summation order (an MoE's balance loss, a per-pass statistic, moves more), so
        # the run's record lists every step where it changed, carried from checkpoint to checkpoint
        self.plan_changes: list[dict[str, Any]] = (
            [] if state is None else list(state.get("memory_plan_changes", []))
        )
        if kept is not None and kept != self.plan.choices() and state["status"] == "running":
            self.plan_changes.append({"step": state["step"], "from": kept, "to": self.plan.choices()})
        self.sharded = self.plan.shard
        torch.manual_seed(run.seed)
        if self.sharded:  # the same initial weights as one process: rank 0 draws them, every rank shards
            self.model = shard_model(run.model, self.device, self.dist, param_dtype=self.autocast_dtype)
        else:
            # drawn on the CPU, as shard_model draws them: the same seed gives the same initial weights on
            # every device (the CUDA generator would give others), so CPU, GPU and FSDP curves compare
            self.model = build_model(run.model, "cpu").to(self.device)
        self.model.checkpoint_activations = self.plan.checkpoint_activations
        self.flops_per_token = flops_per_token(run.model, run.seq_len)
        # fused: one kernel over every tensor (CPU and CUDA) instead of torch's CPU default, a dozen
        # element-wise ops per tensor; it halves the optimiser's share of a tiny MoE step, whose experts
        # hold 2.7x dense's parameters (benchmarks/RESULTS.md, "fused AdamW"). The groups carry the
        # parametrisation's per-group learning-rate multipliers (SP: decayed matrices, undecayed gains).
        self.optimizer = torch.optim.AdamW(
            optimizer_groups(self.model, run.model, run.lr, run.weight_decay),
            lr=run.lr,
            betas=(run.beta1, run.beta2),
            fused=True,
        )
        self.ddp = (
            DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
            if self.dist.enabled and not self.sharded
            else None
        )
        module = self.ddp or self.model
        self.forward = compile_model(module) if options.compile else module
        self.expert_load: torch.Tensor | None = None  # the step's token share per MoE layer and expert
        register_bias_update(self.model, self.optimizer, lambda: self.expert_load)
        self.schedule = StepSchedule.for_run(run)
        self.noise = NoiseScaleEstimator()
        self.curve: list[dict] = []
        self.evals: list[dict] = []
        self.step = 0
        self.wall_time = 0.0
        self.status: str = "running"  # -> "finished" | "diverged"
        self.diverged_step: int | None = None
        self.message: str | None = None
        if state is not None:
            self.load_state_dict(state)

    # ---- state -----------------------------------------------------------------------------------
    def _state_dict_options(self) -> StateDictOptions:
        """Whole (unsharded) tensors, keyed by parameter name, in every mode: a checkpoint written by one
        process, by DDP or by FSDP resumes in any of them, on any number of ranks."""
        return (
            StateDictOptions(full_state_dict=True, cpu_offload=True) if self.sharded else StateDictOptions()
        )

    def state_dict(self) -> dict[str, Any]:
        """The run's whole state (under FSDP a collective: every rank must call it; rank 0 gets it)."""
        model, optimizer = get_state_dict(self.model, self.optimizer, options=self._state_dict_options())
        return {
            "step": self.step,
            "wall_time": self.wall_time,
            "model": model,
            "optimizer": optimizer,
            "noise": self.noise.state_dict(),
            "curve": self.curve,
            "evals": self.evals,
            "status": self.status,
            "diverged_step": self.diverged_step,
            "message": self.message,
            "memory_plan": self.plan.choices(),
            "memory_plan_changes": self.plan_changes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_state_dict(
            self.model, self.optimizer, model_state_dict=state["model"],
            optim_state_dict=state["optimizer"], options=self._state_dict_options(),
        )  # fmt: skip
        self.noise.load_state_dict(state["noise"])
        self.step, self.wall_time = state["step"], state["wall_time"]
        self.curve, self.evals = list(state["curve"]), list(state["evals"])
        self.status, self.diverged_step, self.message = (
            state["status"],
            state["diverged_step"],
            state["message"],
        )

    # ---- one optimiser step ----------------------------------------------------------------------
    def _train_step(self) -> dict[str, float]:
        """Accumulate the step's micro-batches, measure the noise scale, clip, and take one AdamW step.

        Each micro-batch runs in the memory plan's passes (one, unless it does not fit the device), whose
        gradients add up to the micro-batch's before the noise probe reads it: a split run records the
        numbers of the unsplit one (MoE's balance loss, a batch statistic, is taken per pass). While the
        noise scale is measured, DDP keeps every micro-batch gradient local and the ranks average the
        step's gradient once at the end (:mod:`archscale.training.noise_probe`).
        """
        run, world = self.run, self.dist.world_size
        lr = run.lr_at(self.step)
        for group in self.optimizer.param_groups:  # a checkpoint from before the groups had multipliers: 1
            group["lr"] = lr * group.get("lr_multiplier", 1.0)
        batch = self.data.sampler.batch(self.step)  # the global batch; each rank takes its rows
        rows = batch.shape[0] // world
        micro_batches = (
            batch[self.dist.rank * rows : (self.dist.rank + 1) * rows]
            .to(self.device)
            .split(run.micro_batch_size)
        )
        n_micro, n_pass = len(micro_batches), self.plan.passes
        passes = n_micro * n_pass  # every pass holds as many tokens: the step's mean is the passes' mean
        params = list(self.model.parameters())
        probe = GradientNoiseProbe.for_step(run, params, n_micro, self.dist, sharded=self.sharded)
        sums = torch.zeros(3, device=self.device)  # lm loss, aux loss, objective
        expert_fraction = None
        for i, micro in enumerate(micro_batches):
            for j, rows in enumerate(micro.split(self.plan.rows)):
                last = i == n_micro - 1 and j == n_pass - 1
                defer_sync = self.ddp is not None and (probe is not None or not last)
                with self.ddp.no_sync() if defer_sync else nullcontext(), self._autocast():
                    out = self.forward(rows[:, :-1], rows[:, 1:])
                    aux = out.aux_loss if out.aux_loss is not None else torch.zeros((), device=self.device)
                    (out.loss / passes).backward()
                sums += torch.stack([out.lm_loss.detach(), aux.detach(), out.loss.detach()]).float()
                if out.expert_fraction is not None:
                    expert_fraction = out.expert_fraction / passes + (
                        0 if expert_fraction is None else expert_fraction
                    )
            if probe is not None:  # the micro-batch's gradient is complete: all its passes accumulated
                probe.after_backward()
        if probe is not None and self.ddp is not None:
            average_gradients(params, self.dist)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, run.grad_clip or float("inf"))  # |G_big|, pre-clip
        grad_norm = float(whole_value(grad_norm))
        # every rank sees the same load (the bias update, an optimiser hook, moves every rank's biases alike)
        self.expert_load = None if expert_fraction is None else mean_across_ranks(expert_fraction, self.dist)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        lm_loss, aux_loss, loss = mean_across_ranks(sums / passes, self.dist).tolist()
        if probe is not None:
            probe.update(self.noise, grad_norm)
        fractions = None if self.expert_load is None else self.expert_load.tolist()
        return {
            "lm_loss": lm_loss, "aux_loss": aux_loss, "loss": loss, "lr": lr, "grad_norm": grad_norm,
            "expert_fraction": fractions,
        }  # fmt: skip

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None)

    # ---- the run ---------------------------------------------------------------------------------
    def _eval(self) -> None:
        if (
            self.sharded
        ):  # evaluation reads the head directly: gather the root's weights (blocks gather theirs)
            self.model.unshard()
        rows = evaluate(self.model, self.data.eval_windows, self.data.token_bytes, device=self.device,
                        autocast_dtype=self.autocast_dtype)  # fmt: skip
        if self.sharded:
            self.model.reshard()
        tokens = self.step * self.run.tokens_per_step
        rows = [{"step": self.step, "tokens": tokens, "split": "test", **r} for r in rows]
        self.evals.extend(rows)
        self.on_event("evals", {"rows": rows})

    def _save(self, run_dirs: Sequence[Path], name: str = checkpoint.STATE_FILE) -> None:
        state = self.state_dict()  # on every rank: gathering a sharded model's state is collective
        if self.dist.is_main:
            for run_dir in run_dirs:
                checkpoint.save_state(run_dir, state, self.run, name)

    def _keep_weights(self) -> None:
        """Keep the model's weights at this step (``RunConfig.keep_checkpoints``) for downstream evals."""
        weights = get_model_state_dict(self.model, options=self._state_dict_options())  # FSDP: collective
        if self.dist.is_main:
            checkpoint.save_weights(self.run_dir, weights, self.run.model.tie_embeddings, step=self.step)

    def fit(self) -> RunResult:
        """Train to the end of the budget (or to divergence), resuming from a checkpoint if one exists."""
        run = self.run
        first_loss = self.curve[0]["lm_loss"] if self.curve else None
        pending: list[dict] = []
        window_start, window_tokens = time.perf_counter(), 0
        self.on_event("started", {"step": self.step, "steps": run.steps, "memory_plan": self.plan.describe()})
        while self.status == "running" and self.step < run.steps:
            t0 = time.perf_counter()
            metrics = self._train_step()
            self.step += 1
            dt = time.perf_counter() - t0
            self.wall_time += dt
            window_tokens += run.tokens_per_step
            tokens = self.step * run.tokens_per_step
            row = {
                "step": self.step, "tokens": tokens, "flops": tokens * self.flops_per_token, **metrics,
                "tokens_per_s": run.tokens_per_step / dt, "wall_time": self.wall_time,
                "noise_scale": self.noise.value,
            }  # fmt: skip
            self.curve.append(row)
            pending.append(row)
            first_loss = first_loss if first_loss is not None else metrics["lm_loss"]
            if not math.isfinite(metrics["loss"]) or metrics["lm_loss"] > self.divergence_ratio * first_loss:
                self.status, self.diverged_step = "diverged", self.step
                self.message = (
                    f"loss {metrics['lm_loss']:.4g} at step {self.step} (first step {first_loss:.4g})"
                )
                break
            if self.schedule.should_eval(self.step):
                self._eval()
            if self.schedule.should_keep_weights(self.step):
                self._keep_weights()
            if self.step in self.branches:
                self._save(self.branches[self.step], checkpoint.BRANCH_FILE)
            now = time.perf_counter()
            if now - window_start > 1.0 or self.step == run.steps:
                self.on_event("progress", {
                    "step": self.step, "steps": run.steps, "loss": metrics["lm_loss"],
                    "tokens_per_s": window_tokens / (now - window_start), "rows": pending,
                })  # fmt: skip
                pending, window_start, window_tokens = [], now, 0
            if self.schedule.should_checkpoint(self.step):
                self._save([self.run_dir])
        finished = self.status == "running"
        if finished:
            self.status = "finished"
        state = self.state_dict()
        if self.dist.is_main:
            if finished:
                checkpoint.save_weights(self.run_dir, state["model"], self.run.model.tie_embeddings)
            checkpoint.save_state(self.run_dir, state, self.run)
        return RunResult(
            run.run_id, self.status, self.step, self.curve[-1]["lm_loss"] if self.curve else float("nan"),
            self.diverged_step, self.wall_time, self.curve, self.evals, self.message,
            self.record(),
        )  # fmt: skip

    def record(self) -> dict[str, Any]:
        """The run's data record (corpus and tokeniser fingerprints, epochs), its memory plan and, for a run
        resumed in other passes than it trained in before, each such step with the plans on either side."""
        record = {**self.data.record, "memory_plan": self.plan.describe()}
        return {**record, "memory_plan_changes": self.plan_changes} if self.plan_changes else record


def available_host_memory() -> float | None:
    """Bytes of memory this machine can still give a CPU run (Linux's MemAvailable: free plus reclaimable
    cache, after what other processes, e.g. the other workers, hold); None where it is not known."""
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return float(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def default_memory_budget(device: torch.device, share: float = 1.0) -> float | None:
    """The bytes a run may plan for on ``device``: ``share`` of a GPU's memory, or the memory the host has
    available (None when unknown)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory * share
    return available_host_memory()


def check_memory(
    run: RunConfig,
    ranks: int,
    options: TrainOptions,
    budget: float,
    *,
    bf16: bool,
    kept: dict[str, Any] | None = None,
) -> MemoryPlan:
    """How this run's micro-batches fit ``budget`` bytes per device, before anything is allocated: the run's
    own micro-batch in one pass where it fits (so a run trains exactly as it always did), else in passes of
    fewer rows, with FSDP or recomputed activations where ``options`` leave them to the plan
    (:func:`archscale.models.memory.plan_memory`). Refuses, with the numbers, a run that fits in no way.

    ``kept``: the plan a resumed run's checkpoint trained under (:meth:`MemoryPlan.choices`), taken again
    where it still fits and ``options`` do not ask otherwise, so the run resumes in the same passes (a
    cheaper plan would change the summation order, and an MoE's per-pass balance loss)."""

    def plan(**fixed: Any) -> MemoryPlan:
        return plan_memory(
            run.model, run.batch_size // ranks, run.seq_len, budget, ranks=ranks, bf16=bf16,
            micro_batch=run.micro_batch_size, noise_probe=run.measures_noise_scale,
            **{"shard": options.shard, "checkpoint_activations": options.checkpoint_activations, **fixed},
        )  # fmt: skip

    if (
        kept is not None
        and kept["ranks"] == ranks
        and all(getattr(options, key) in (None, kept[key]) for key in ("shard", "checkpoint_activations"))
    ):
        try:
            return plan(
                shard=kept["shard"], checkpoint_activations=kept["checkpoint_activations"],
                rows_per_pass=kept["rows"],
            )  # fmt: skip
        except ArchscaleError:
            pass  # it no longer fits: plan afresh (the run's record says so)
    return plan()
