#!/usr/bin/env bash
# One short GPU check (< 8 minutes on one H100/H200): the gpu-marked tests, then predict and train
# throughput at 224p and 448p with bf16 / fp16 and channels_last. Prints one JSON line per measurement
# (the benchmarks' own lines) and a last line {"gpu_check": ...} with the targets:
#   * a 90-minute 224p match (135,000 frames at 25 fps) spotted end to end in < 30 s, i.e. predict e2e
#     >= 4,500 frames/s on rny002_gsm+gru;
#   * training clips/s on prepared (short-GOP) video >= 1.5x a JPEG-frame pipeline.
# Usage (from the repository root, with the project installed): bash benchmarks/gpu_check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu_check_out}}
mkdir -p "$OUT"
PY=${PYTHON:-python}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || exit 2

echo "== gpu tests" >&2
timeout 120 $PY -m pytest -q -m gpu -p no:cacheprovider 2>&1 | tail -5 | tee "$OUT/gpu_tests.txt" >&2

run() {  # name, timeout, command...
  local name=$1 limit=$2; shift 2
  echo "== $name" >&2
  timeout "$limit" "$@" 2>"$OUT/$name.err" | tail -1 | tee "$OUT/$name.json"
}
for prec in bf16 fp16; do
  run "predict_224_$prec" 120 $PY benchmarks/bench_predict.py --device cuda --precision "$prec" --seconds 120 \
      --batch-size 16 --repeats 2 --no-engines
done
run predict_448_bf16 120 $PY benchmarks/bench_predict.py --device cuda --precision bf16 --height 448 \
    --seconds 60 --batch-size 8 --repeats 2 --no-engines
run train_224_bf16 150 $PY benchmarks/bench_train.py --device cuda --precision bf16 --height 224 --clip-len 64 \
    --batch-size 8 --workers 8 --steps 10 --warmup 3
run train_448_bf16 120 $PY benchmarks/bench_train.py --device cuda --precision bf16 --height 448 --clip-len 32 \
    --batch-size 4 --workers 8 --steps 6 --warmup 2

$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    try:
        return json.loads((out / f"{name}.json").read_text().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return {}
p = load("predict_224_bf16")
t = load("train_224_bf16")
e2e = p.get("e2e_fps") or 0
summary = {"gpu_check": True, "predict_224_bf16_e2e_fps": e2e,
           "match_90min_224p_s": round(135000 / e2e, 1) if e2e else None, "match_target_s": 30,
           "train_prepared_over_jpeg": t.get("ratio_prepared_over_jpeg_clips_per_s"), "train_target": 1.5}
print(json.dumps(summary))
PY
