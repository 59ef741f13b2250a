#!/usr/bin/env bash
# What needs CUDA, checked and timed in one run: for a session that is lent a GPU machine (an H200 with 16 cores
# here; about 5 minutes there). Everything else is tested on the CPU by the test suite.
#
#   1. the tests that use CUDA where present: device selection and AMP rules (tests/test_torch_utils.py), and the
#      batched augmentation on CUDA against the per-image path (tests/test_data_speed.py, same equivalence checks);
#   2. training with AMP on the GPU, loader-bound or not (benchmarks/train_speed.py: epoch images/s, the share of
#      time waiting for data, and the step alone on a batch already on the device), without and with
#      augment_device=cuda;
#   3. the loader alone on the generated 1920x1080 JPEGs with 8 workers (benchmarks/loader_speed.py).
#
# Usage:  bash benchmarks/cuda_check.sh OUT_DIR [DEVICE]    DEVICE: 0 (default), or cpu for a short dry run
# Logs and CSVs go to OUT_DIR. The GPU machine's image lacks some of requirements.txt (ultralytics-thop,
# defusedxml, pycocotools): carry them as wheels for its Python (3.12), as the device tool's README describes,
# and install them before this script.
set -uo pipefail
OUT=${1:?usage: cuda_check.sh OUT_DIR [DEVICE]}
DEV=${2:-0}
cd "$(dirname "$0")/.."
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if [ "$DEV" = cpu ]; then  # dry run: the same commands, small
    IMGSZ=128; BATCH=8; WORKERS=2; AMP=""; AUG=cpu; BIG=32
else
    IMGSZ=640; BATCH=32; WORKERS=8; AMP="--amp"; AUG=cuda; BIG=256
fi
status=0
step() {  # step NAME COMMAND...: run, log to OUT/NAME.log, remember a failure, go on
    local name=$1; shift
    echo "=== $name: $*" | tee -a "$OUT/summary.txt"
    local t0=$SECONDS
    "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    [ $rc -ne 0 ] && status=1
    echo "=== $name: exit $rc in $((SECONDS - t0)) s" | tee -a "$OUT/summary.txt"
    tail -n 15 "$OUT/$name.log" | tee -a "$OUT/summary.txt"
}
step env "$PY" -c "import torch, cv2, os; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-', 'cpus', len(os.sched_getaffinity(0)),
'opencv', cv2.__version__)"
step tests "$PY" -m pytest -q -p no:cacheprovider tests/test_torch_utils.py tests/test_data_speed.py
step train_speed "$PY" benchmarks/train_speed.py --device "$DEV" --imgsz "$IMGSZ" --batch "$BATCH" \
    --workers "$WORKERS" --epochs 2 --steps 10 $AMP
step train_speed_augment_device "$PY" benchmarks/train_speed.py --device "$DEV" --imgsz "$IMGSZ" \
    --batch "$BATCH" --workers "$WORKERS" --epochs 2 --steps 10 $AMP --set "augment_device=$AUG"
step loader_speed "$PY" benchmarks/loader_speed.py --data big --big-images "$BIG" --imgsz "$IMGSZ" \
    --batch "$BATCH" --workers "$WORKERS" --cache none ram --rounds 1 --csv "$OUT/loader_speed.csv"
echo "=== all steps done, status $status" | tee -a "$OUT/summary.txt"
exit $status
