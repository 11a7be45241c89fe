"""Independent references for the lm-eval bridge's tests: the shipped arithmetic task's questions, and its
scores and task loss computed with archscale's own model (no harness, no export)."""

from __future__ import annotations

import math

import torch

from archscale.bridges.lm_eval import local_jsonl
from archscale.data.tokenizer import ByteTokenizer


def arith_docs() -> list[dict]:
    return list(local_jsonl("archscale_arith.jsonl")["test"])


def reference_scores(model, docs: list[dict]) -> tuple[float, float, float]:
    """acc, acc_norm and task loss computed with archscale's own model, as the harness defines the first two:
    the choice of highest log-likelihood after "Question: …\\nAnswer:" and a space (acc_norm: per character
    of the choice); the task loss as Bhagia et al. (2024): the mean over questions of the correct answer's
    −log₂ p per byte of " answer"."""
    byte = ByteTokenizer()
    acc = acc_norm = bpb = 0
    for doc in docs:
        context = byte.encode(f"Question: {doc['question']}\nAnswer:")
        lls = []
        for choice in doc["choices"]:
            continuation = byte.encode(" " + choice)
            ids = torch.tensor([context + continuation])
            with torch.no_grad():
                logp = model(ids[:, :-1]).logits[0].log_softmax(-1)
            lls.append(sum(logp[len(context) - 1 + j, t].item() for j, t in enumerate(continuation)))
        acc += max(range(len(lls)), key=lls.__getitem__) == doc["answer"]
        norm = [ll / len(c) for ll, c in zip(lls, doc["choices"], strict=True)]
        acc_norm += max(range(len(norm)), key=norm.__getitem__) == doc["answer"]
        bpb += -lls[doc["answer"]] / math.log(2) / len((" " + doc["choices"][doc["answer"]]).encode())
    return acc / len(docs), acc_norm / len(docs), bpb / len(docs)
