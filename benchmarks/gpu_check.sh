#!/usr/bin/env bash
# The GPU path in one run, under 10 minutes on one H100/H200 (see benchmarks/gpu_check.py): bf16 MFU of
# dense-100m and moe-200m, MoE backends agreeing, a tiny run's curve on the GPU against the CPU's, FSDP over
# the GPUs where there are several, and a mini-ladder through the study path with its laws fitted. Results
# land in OUT (default gpu-check/) as gpu_check.json and a RESULTS.md block to append to benchmarks/RESULTS.md,
# both rewritten after every part (a run cut short keeps what it did). Without a GPU it runs the same checks
# on the CPU with tiny presets (--smoke, 2-3 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-gpu-check}}"
PYTHON="${PYTHON:-.venv/bin/python}"
if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    timeout 600 "$PYTHON" benchmarks/gpu_check.py --out "$OUT"
else
    echo "no GPU visible: running the CPU smoke version" >&2
    timeout 600 "$PYTHON" benchmarks/gpu_check.py --out "$OUT" --smoke
fi
