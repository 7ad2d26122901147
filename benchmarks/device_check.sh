#!/usr/bin/env bash
# Device check: AQLM 2x8 (+ end-to-end fine-tuning) and 1x16 on CUDA, served, n=20 sampled; prints time per stage,
# peak GPU memory, tokens/s and CPU-vs-GPU agreement. Under 8 minutes on one H100/H200-class GPU, offline.
#   bash benchmarks/device_check.sh [--json FILE]            # on the GPU
#   bash benchmarks/device_check.sh --cpu --small            # the CPU fallback at CI size
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
export CODEQUANT_CACHE_DIR="${CODEQUANT_CACHE_DIR:-$(mktemp -d)}"  # nothing shared with other runs
exec "$PYTHON" benchmarks/device_check.py "$@"
