#!/usr/bin/env bash
# Every GPU check of fls in one go, for a lent CUDA machine with .whl/ carried (scripts/device_wheels.sh):
# the gpu-marked tests (CUDA vs CPU agreement of an update, models, scoring), benchmarks/gpu_check.py under a
# time budget, and bench_vmap.py on CUDA. Logs and JSON go to $OUT (default ./device_out). About 7 minutes.
#
#   DEVICE_CHECK_BUDGET_S=300 bash benchmarks/device_check.sh        # on the GPU machine
#   DEVICE_CHECK_QUICK=1 bash benchmarks/device_check.sh             # anywhere: the CPU smoke of this script
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-device_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
status=0
if [ -n "${DEVICE_CHECK_QUICK:-}" ]; then  # this environment as it is (no wheels installed): the CPU smoke
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
  $PY benchmarks/gpu_check.py --quick --out "$OUT/gpu_check.json" 2>&1 | tee "$OUT/gpu_check.log" || status=1
  echo "device_check (quick): rc $status; files in $OUT"
  exit $status
fi
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "device_check: installing .whl/*.whl failed" >&2; exit 2; }
  export PYTHONPATH="$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
(nvidia-smi || echo "no nvidia-smi") >"$OUT/nvidia_smi.txt" 2>&1
timeout 150 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_precision.py tests/test_models.py tests/test_score.py \
  2>&1 | tee "$OUT/pytest_gpu.log" || status=1
$PY benchmarks/gpu_check.py --budget-s "${DEVICE_CHECK_BUDGET_S:-300}" --out "$OUT/gpu_check.json" 2>&1 \
  | tee "$OUT/gpu_check.log" || status=1
timeout 90 $PY benchmarks/bench_vmap.py --device cuda --quick --json "$OUT/vmap.json" 2>&1 | tee "$OUT/vmap.log" || status=1
echo "device_check: rc $status; files in $OUT"
exit $status
