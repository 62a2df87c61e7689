#!/usr/bin/env bash
# Every CUDA code path once, and the GPU figures, in one command of at most 8 minutes (110 + 200 + 90 + 80 s):
#   bash scripts/gpu_prepare.sh --authors ~/src/NeRCo    # here, once (fills .gpu/)
#   bash scripts/gpu_check.sh OUTDIR                      # on the GPU machine, .gpu/ carried
#   bash scripts/gpu_check.sh gpu_out/                    # e.g.
# Writes into OUTDIR: env.txt, nvidia-smi.txt, cuda_tests.log + cuda_tests.xml (pytest -m cuda),
# benchmark.log + benchmark_cuda.json (scripts/benchmark.py --device cuda, the authors' code
# beside ours when .gpu/authors exists), compile.log + compile.json (scripts/compile_check.py).
# Each stage has its own time limit, so one that hangs cannot eat the others' time; the exit
# status is that of the CUDA tests.
set -uo pipefail
OUT=${1:?usage: bash scripts/gpu_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
if [ -d .gpu/wheels ]; then  # what the GPU image lacks (scripts/gpu_prepare.sh)
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/nerco-site .gpu/wheels/*.whl && export PYTHONPATH=/tmp/nerco-site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$PY" - > "$OUT/env.txt" 2>&1 <<'PYEOF'
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version())
print("device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
      "bf16", torch.cuda.is_available() and torch.cuda.is_bf16_supported())
import open_clip, dominate  # noqa: F401 - the carried wheels import
print("open_clip", open_clip.__version__)
PYEOF
start=$(date +%s)
stage() { echo "[gpu_check] $1 at +$(( $(date +%s) - start )) s" | tee -a "$OUT/stages.txt"; }

stage "1/3 CUDA tests"
timeout 110 "$PY" -m pytest -m cuda -q -rA -p no:cacheprovider tests/test_cuda.py tests/test_pipeline.py \
  --junitxml "$OUT/cuda_tests.xml" > "$OUT/cuda_tests.log" 2>&1
tests=$?
tail -n 25 "$OUT/cuda_tests.log"

stage "2/3 benchmark"
authors=(); [ -d .gpu/authors/models ] && authors=(--authors .gpu/authors)
timeout 200 "$PY" scripts/benchmark.py --device cuda --dtypes fp32,bf16,fp16 \
  --cases infer-600x400,infer-1920x1080,infer-3840x2160,train-256,train-512 \
  --runs 1 --reps 10 --timeout 150 "${authors[@]}" --out "$OUT/benchmark_cuda.json" \
  > "$OUT/benchmark.log" 2>&1
echo "benchmark exit $?"; tail -n 40 "$OUT/benchmark.log"
# test.py over a folder on the GPU: images/s with the pipeline against the network and the
# I/O alone, and the GPU's busy fraction (target >= 0.9)
timeout 90 "$PY" scripts/benchmark.py --device cuda --dtypes fp32,bf16 --cases folder-600x400 \
  --batch_size 8 --images 300 --runs 1 --out "$OUT/benchmark_folder_cuda.json" \
  > "$OUT/benchmark_folder.log" 2>&1
echo "folder benchmark exit $?"; tail -n 8 "$OUT/benchmark_folder.log"

stage "3/3 torch.compile"
timeout 80 "$PY" scripts/compile_check.py --device cuda --dtypes bf16 --reps 5 \
  --out "$OUT/compile.json" > "$OUT/compile.log" 2>&1
echo "compile_check exit $?"; grep '^{' "$OUT/compile.log"
stage "done"
exit $tests
