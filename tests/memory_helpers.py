"""The CPU allocator's peak over real training steps, for the memory estimate's tests (a uniquely named module,
so it never collides with another conftest)."""

from __future__ import annotations

import gc

import torch
from torch.profiler import ProfilerActivity, profile

from archscale.models import build_model


def measured_peak(cfg, rows: int, seq_len: int, n_micro: int, *, recompute=False, bf16=False) -> int:
    """Peak bytes the CPU allocator holds over two AdamW steps, from building the model on (the profiler
    records every allocation and free; the running sum's maximum is the peak)."""
    gc.collect()  # tensors of earlier tests freed inside the window would count as negative bytes
    torch.manual_seed(0)
    batches = torch.randint(0, cfg.vocab_size, (n_micro, rows, seq_len + 1))
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model = build_model(cfg)
        model.checkpoint_activations = recompute
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        for _ in range(2):
            for batch in batches:
                with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                    loss = model(batch[:, :-1], batch[:, 1:]).loss / n_micro
                loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage), key=lambda e: e.time_range.start)
    held = peak = 0
    for event in events:
        held += event.self_cpu_memory_usage
        peak = max(peak, held)
    return peak
