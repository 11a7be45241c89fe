"""One vocabulary from the results store to the laws: each quantity's store column, law column, symbol, unit
and definition, written once.

The store names a run's scale as the trainer counts it (``runs.N``, ``runs.P_active``, ``runs.D``, …); the
laws name their columns for users' tables (``model_scale``, ``active_params``, ``tokens``, …). This registry
is what both read: ``archscale.laws.columns.COLUMNS`` (the laws' column contract) is built from it,
``archscale.analysis.points`` renames store columns to law columns through it, and the store schema's column
comments point here for units and definitions. It imports nothing, so every layer may read it.

Two names mean different things on the two sides, and the registry keeps them apart:

- ``batch_size`` is **sequences** per step in the store (``runs.batch_size``) and **tokens** per step in the
  laws; the laws' ``batch_size`` is the store's ``batch_tokens`` (= batch_size · seq_len).
- active parameters: the store's ``P_active`` (what :func:`archscale.analysis.points.law_points` carries as
  ``active_params``) counts non-embedding matrices only — the token embedding and the LM head are left out,
  as are norm gains — while Ludziejewski et al. 2025's published joint law (``ludziejewski2025``) counts its
  N_act with the embedding and unembedding included. A law fitted on law points is in the store's
  convention; the published coefficients are in the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Quantity:
    """One quantity of a run or a law point.

    ``store``: the store columns that hold it, as ``"table.column"`` (empty when the store has none; the
    first is the one a runs table renames). ``law``: the laws' column name, or None. ``meaning``: the
    laws' column text (``COLUMNS``), for any table a user brings; ``definition``: exactly what archscale
    counts (the store, and the law points built from it)."""

    key: str
    symbol: str
    unit: str
    definition: str
    store: tuple[str, ...] = ()
    law: str | None = None
    meaning: str | None = None

    def columns(self, table: str) -> tuple[str, ...]:
        """This quantity's columns in store table ``table`` (``"runs"``, ``"curve"``, ``"evals"``)."""
        return tuple(name.partition(".")[2] for name in self.store if name.partition(".")[0] == table)


QUANTITIES: tuple[Quantity, ...] = (
    Quantity(
        "run_id", "—", "identifier",
        "the run's identity: its config's SHA-256 prefix in a store; law points of a cooldown branch carry "
        "its trunk's",
        store=("runs.run_id", "curve.run_id", "evals.run_id"), law="run_id",
        meaning="run identifier (bootstrap resamples whole runs)",
    ),
    Quantity(
        "params", "P", "parameters",
        "non-embedding parameters, every expert counted: attention, feed-forward (routed and shared experts) "
        "and router matrices; token embedding, LM head and norm gains excluded",
        store=("runs.P",), law="params", meaning="P, number of parameters",
    ),
    Quantity(
        "model_scale", "N", "FLOPs per token",
        "model scale: training FLOPs per token, forward + backward = 6·P_active + the causal attention-score "
        "term (3·2·2·n_layers·d_model·seq_len/2); embedding and LM head excluded",
        store=("runs.N",), law="model_scale", meaning="N, non-embedding FLOPs per token (model scale)",
    ),
    Quantity(
        "active_params", "N_act", "parameters",
        "non-embedding parameters one token uses: attention + router + shared experts + top_k of the E "
        "routed experts (top_k·G of E·G when fine-grained); token embedding, LM head and norm gains "
        "excluded — law points carry this count, while Ludziejewski et al. 2025's published N_act includes "
        "the embedding and unembedding",
        store=("runs.P_active",), law="active_params",
        meaning="N_act, parameters one token uses (MoE; all of them for a dense model); the law points "
        "carry the store's P_active, which excludes the embedding and LM head, while the published joint "
        "MoE law (ludziejewski2025) counts them",
    ),
    Quantity(
        "total_params", "P_total", "parameters",
        "every parameter: token embedding (and the LM head when untied) + norm gains + non-embedding "
        "parameters P (tied weights counted once)",
        store=("runs.P_total",),
    ),
    Quantity(
        "tokens", "D", "tokens",
        "training tokens: a run's trained tokens (runs.D = steps · batch_tokens), or the tokens seen at a "
        "curve or eval point (curve.tokens, evals.tokens) — law points carry the latter",
        store=("runs.D", "curve.tokens", "evals.tokens"), law="tokens", meaning="D, training tokens",
    ),
    Quantity(
        "experts", "E", "experts",
        "experts per MoE layer before splitting (the layer holds E·G experts of width d_ff/G); dense = 1",
        store=("runs.n_experts",), law="experts", meaning="E, number of experts (dense = 1)",
    ),
    Quantity(
        "top_k", "K", "experts",
        "experts each token is routed to, before splitting (top_k·G of the E·G fine-grained ones); dense = 1",
        store=("runs.top_k",),
    ),
    Quantity(
        "granularity", "G", "ratio",
        "dense feed-forward width ÷ expert width (the stored config's model.granularity; coarse experts and "
        "dense models = 1)",
        law="granularity",
        meaning="G, MoE granularity: dense feed-forward width / expert width (coarse experts = 1)",
    ),
    Quantity(
        "sparsity", "S", "share",
        "(E − K)/E from the stored config's n_experts and top_k: the share of experts a token does not use "
        "(dense = 0)",
        law="sparsity", meaning="S = (E - K)/E, the share of experts a token does not use (dense = 0)",
    ),
    Quantity(
        "compute", "C", "FLOPs",
        "training compute C = N·D; law points: model_scale · tokens at the point",
        store=("runs.C",), law="compute", meaning="C, training compute in FLOPs",
    ),
    Quantity(
        "loss", "L", "nats per token",
        "next-token cross-entropy on the training stream (curve.lm_loss, MoE auxiliary losses excluded; "
        "curve.loss adds them); law points smooth it per run unless the rule is 'final'",
        store=("curve.lm_loss",), law="loss", meaning="loss in nats per token",
    ),
    Quantity(
        "objective", "L_obj", "nats per token",
        "the training objective: lm_loss + the weighted MoE auxiliary losses (curve.loss); not a law column",
        store=("curve.loss",),
    ),
    Quantity(
        "eval_loss", "L_eval", "nats per token",
        "cross-entropy on an eval split and subset (evals.loss)",
        store=("evals.loss",),
    ),
    Quantity(
        "batch_tokens", "B", "tokens",
        "tokens per optimiser step = batch_size (sequences) · seq_len; law points carry it as the laws' "
        "batch_size",
        store=("runs.batch_tokens",), law="batch_size",
        meaning="B, batch size in tokens per step (the store's batch_tokens; its batch_size counts "
        "sequences); the published laws' batch sizes are in tokens too",
    ),
    Quantity(
        "batch_sequences", "B_seq", "sequences",
        "sequences per optimiser step (the store's and RunConfig's batch_size); not a law column: the laws' "
        "batch_size is tokens (batch_tokens)",
        store=("runs.batch_size",),
    ),
    Quantity(
        "seq_len", "T", "tokens",
        "tokens per training sequence",
        store=("runs.seq_len",),
    ),
    Quantity(
        "lr", "η", "learning rate",
        "a run's peak learning rate (runs.lr), or the rate of one step (curve.lr)",
        store=("runs.lr", "curve.lr"), law="lr",
        meaning="learning rate: a run's peak (hyperparameter laws), or the rate of each step (whole-curve laws)",
    ),
    Quantity(
        "step", "t", "optimiser steps",
        "optimiser steps done",
        store=("curve.step", "evals.step"), law="step",
        meaning="optimiser steps done (whole-curve laws: one row per step from 1, loss empty where not evaluated)",
    ),
    Quantity(
        "task_loss", "L_task", "bits per byte",
        "a task's loss: bits per byte of the correct continuation",
        law="task_loss", meaning="a task's loss: bits per byte of the correct continuation (downstream laws)",
    ),
    Quantity(
        "accuracy", "Acc", "share",
        "a task's accuracy in [0, 1], length-normalised where the task defines it",
        law="accuracy",
        meaning="a task's accuracy in [0, 1], length-normalised where the task defines it (downstream laws)",
    ),
    Quantity(
        "val_loss", "L_val", "nats per token",
        "validation loss at a run's step: the source of loss-to-loss prediction",
        law="val_loss", meaning="validation loss, the source of loss-to-loss prediction",
    ),
)  # fmt: skip
"""Every quantity, in the order of the laws' column contract."""

_BY_KEY = {q.key: q for q in QUANTITIES}


def quantity(key: str) -> Quantity:
    """The quantity ``key`` (a registry key: ``"active_params"``, ``"batch_tokens"``, …)."""
    return _BY_KEY[key]


def law_columns() -> dict[str, str]:
    """Law column → its text, for every quantity the laws have a column for (``laws.columns.COLUMNS``)."""
    return {q.law: q.meaning or q.definition for q in QUANTITIES if q.law is not None}


def law_names(table: str, *columns: str) -> dict[str, str]:
    """Store column → law column for ``columns`` of store table ``table``; a column without a law name is a
    KeyError (no silent pass-through)."""
    names = {column: q.law for q in QUANTITIES if q.law is not None for column in q.columns(table)}
    return {column: names[column] for column in columns}


def store_quantity(table: str, column: str) -> Quantity:
    """The quantity that store column ``table.column`` holds."""
    for q in QUANTITIES:
        if column in q.columns(table):
            return q
    raise KeyError(f"{table}.{column}")
