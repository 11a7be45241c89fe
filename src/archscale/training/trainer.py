"""One training run: AdamW, the run's LR schedule, MoE auxiliary losses, curves, evals, noise scale.

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
from torch.nn.parallel import DistributedDataParallel

from archscale.data import BatchSampler, eval_windows, get_shards, get_tokenizer, load_corpus
from archscale.models import build_model, flops_per_token
from archscale.training import checkpoint
from archscale.training.distributed import DistInfo, average_gradients, mean_across_ranks
from archscale.training.evaluation import evaluate
from archscale.training.noise_scale import NoiseScaleEstimator
from archscale.training.run_config import RunConfig

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
    data: dict[str, Any] = field(default_factory=dict)  # corpus and tokeniser fingerprints, epochs


class Trainer:
    def __init__(
        self,
        run: RunConfig,
        data: TrainData,
        run_dir: Path,
        *,
        device: str | torch.device = "cpu",
        dist_info: DistInfo | None = None,
        compile: bool = False,
        checkpoint_activations: bool = False,
        on_event: EventHandler | None = None,
        divergence_ratio: float = 1.5,
        branches: Mapping[int, Sequence[str | Path]] | None = None,
    ) -> None:
        """``branches``: step → run directories of the shorter WSD runs that start from this run's state
        after that step (:mod:`archscale.training.branches`). ``checkpoint_activations``: keep only each
        block's input for the backward pass and recompute the rest (less memory, about a third more compute).
        """
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
            raise ValueError(
                f"batch_size={run.batch_size} must split into {self.dist.world_size} ranks of whole "
                f"micro-batches of {run.micro_batch_size}; choose a batch size divisible by "
                f"{self.dist.world_size * run.micro_batch_size}"
            )
        self.autocast_dtype = torch.bfloat16 if self.device.type == "cuda" else None

        if run.model.vocab_size != data.vocab_size:
            raise ValueError(
                f"the data's tokeniser has {data.vocab_size} ids but RunConfig.model.vocab_size is "
                f"{run.model.vocab_size}; build the data with RunConfig.tokenizer={run.tokenizer!r}"
            )
        torch.manual_seed(run.seed)
        self.model = build_model(run.model, self.device)
        self.model.checkpoint_activations = checkpoint_activations  # keeps only block inputs for backward
        self.flops_per_token = flops_per_token(run.model, run.seq_len)
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": run.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=run.lr,
            betas=(run.beta1, run.beta2),
        )
        self.ddp = (
            DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None
            )
            if self.dist.enabled
            else None
        )
        module = self.ddp or self.model
        self.forward = torch.compile(module) if compile else module
        self.noise = NoiseScaleEstimator()
        self.curve: list[dict] = []
        self.evals: list[dict] = []
        self.step = 0
        self.wall_time = 0.0
        self.status: str = "running"  # -> "finished" | "diverged"
        self.diverged_step: int | None = None
        self.message: str | None = None

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "wall_time": self.wall_time,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "noise": self.noise.state_dict(),
            "curve": self.curve,
            "evals": self.evals,
            "status": self.status,
            "diverged_step": self.diverged_step,
            "message": self.message,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
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

        With the noise scale on, every micro-batch gradient is kept local (``no_sync``) so its norm is a
        genuine small-batch sample on every rank, and the ranks average the gradients once at the end;
        that makes N processes compute exactly what one process computes for the same global batch.
        """
        run, world = self.run, self.dist.world_size
        lr = run.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.data.sampler.batch(self.step)  # the global batch; each rank takes its rows
        rows = batch.shape[0] // world
        micro_batches = (
            batch[self.dist.rank * rows : (self.dist.rank + 1) * rows]
            .to(self.device)
            .split(run.micro_batch_size)
        )
        n_micro, measure = len(micro_batches), run.measures_noise_scale
        params = list(self.model.parameters())
        previous = [torch.zeros_like(p) for p in params] if measure else None
        small_sq_norms = []
        sums = torch.zeros(3, device=self.device)  # lm loss, aux loss, objective
        expert_fraction = None
        for i, micro in enumerate(micro_batches):
            defer_sync = self.ddp is not None and (measure or i < n_micro - 1)
            with self.ddp.no_sync() if defer_sync else nullcontext(), self._autocast():
                out = self.forward(micro[:, :-1], micro[:, 1:])
                aux = out.aux_loss if out.aux_loss is not None else torch.zeros((), device=self.device)
                (out.loss / n_micro).backward()
            sums += torch.stack([out.lm_loss.detach(), aux.detach(), out.loss.detach()]).float()
            if out.expert_fraction is not None:
                expert_fraction = out.expert_fraction / n_micro + (
                    0 if expert_fraction is None else expert_fraction
                )
            if previous is not None:  # this micro-batch's own gradient = accumulated minus previous
                grads = [p.grad for p in params]
                diff_norms = torch.stack(torch._foreach_norm(torch._foreach_sub(grads, previous)))
                small_sq_norms.append(
                    n_micro**2 * diff_norms.square().sum()
                )  # each loss was divided by n_micro
                torch._foreach_copy_(previous, grads)
        if measure and self.ddp is not None:
            average_gradients(params, self.dist)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, run.grad_clip or float("inf"))  # |G_big|, pre-clip
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        lm_loss, aux_loss, loss = mean_across_ranks(sums / n_micro, self.dist).tolist()
        if measure:
            small = mean_across_ranks(torch.stack(small_sq_norms).mean(), self.dist).item()
            b_small, b_big = run.micro_batch_size * run.seq_len, run.batch_size * run.seq_len  # in tokens
            self.noise.update([small], float(grad_norm) ** 2, b_small, b_big)
        fractions = (
            None if expert_fraction is None else mean_across_ranks(expert_fraction, self.dist).tolist()
        )
        return {
            "lm_loss": lm_loss, "aux_loss": aux_loss, "loss": loss, "lr": lr, "grad_norm": float(grad_norm),
            "expert_fraction": fractions,
        }  # fmt: skip

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None)

    # ---- the run ---------------------------------------------------------------------------------
    def _eval(self) -> None:
        rows = evaluate(self.model, self.data.eval_windows, self.data.token_bytes, device=self.device,
                        autocast_dtype=self.autocast_dtype)  # fmt: skip
        tokens = self.step * self.run.tokens_per_step
        rows = [{"step": self.step, "tokens": tokens, "split": "test", **r} for r in rows]
        self.evals.extend(rows)
        self.on_event("evals", {"rows": rows})

    def _checkpoint(self) -> None:
        if self.dist.is_main:
            checkpoint.save_state(self.run_dir, self.state_dict())

    def fit(self) -> RunResult:
        """Train to the end of the budget (or to divergence), resuming from a checkpoint if one exists."""
        run = self.run
        state = checkpoint.load_state(self.run_dir)
        if state is not None:
            self.load_state_dict(state)
        eval_steps = {min(run.steps, math.ceil(t / run.tokens_per_step)) for t in run.eval_at_tokens} | {
            run.steps
        }
        first_loss = self.curve[0]["lm_loss"] if self.curve else None
        pending: list[dict] = []
        window_start, window_tokens = time.perf_counter(), 0
        self.on_event("started", {"step": self.step, "steps": run.steps})
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
            if self.step in eval_steps:
                self._eval()
            if self.dist.is_main:
                for branch_dir in self.branches.get(self.step, ()):
                    checkpoint.save_state(branch_dir, self.state_dict(), checkpoint.BRANCH_FILE)
            now = time.perf_counter()
            if now - window_start > 1.0 or self.step == run.steps:
                self.on_event("progress", {
                    "step": self.step, "steps": run.steps, "loss": metrics["lm_loss"],
                    "tokens_per_s": window_tokens / (now - window_start), "rows": pending,
                })  # fmt: skip
                pending, window_start, window_tokens = [], now, 0
            if (
                run.checkpoint_every_steps
                and self.step % run.checkpoint_every_steps == 0
                and self.step < run.steps
            ):
                self._checkpoint()
        if self.status == "running":
            self.status = "finished"
            if self.dist.is_main:
                checkpoint.save_weights(self.run_dir, self.model)
        self._checkpoint()
        return RunResult(
            run.run_id, self.status, self.step, self.curve[-1]["lm_loss"] if self.curve else float("nan"),
            self.diverged_step, self.wall_time, self.curve, self.evals, self.message, self.data.record,
        )  # fmt: skip
