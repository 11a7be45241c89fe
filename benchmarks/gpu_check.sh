#!/usr/bin/env bash
# The GPU path in one run, under 10 minutes on one H100/H200 (see benchmarks/gpu_check.py); results land in
# OUT (default gpu-check/) as gpu_check.json and a RESULTS.md block to append to benchmarks/RESULTS.md.
# Without a GPU it runs the same checks on the CPU with tiny presets (--smoke).
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
