#!/usr/bin/env bash
# The GPU checks of issue 22, prepared for when a device is lent; about 3-5 minutes on one H100/H200.
#
#   bash bench/gpu_check.sh            # on the device machine, in the repository root
#
# With the workplace's device tool (nothing to install there: its python3 holds torch, numpy, pandas, pyyaml,
# scikit-learn, scipy, tqdm and matplotlib; the package runs from src/):
#   run(command="bash bench/gpu_check.sh", timeout_s=540)
#
# 1. golden checks on CUDA (bench/gpu_check.py): float64 logits against the literal re-implementation of the
#    original, float64 gradients against the CPU's, float32 (TF32 off) logits against float64;
# 2. one epoch of the default config, float32 and bf16 autocast, with the loader and model alone, inference at
#    batch 256, peak GPU memory, and the same steps on 2 CPU threads of the same machine;
# 3. a 1-GPU torchrun of the real trainer (python -m chromoformer.train --device cuda, 1 epoch): its samples/s
#    from metrics.tsv, the run's last.pt written;
# 4. the trainer through its --precision flag: 1 epoch of fold 1 in bf16 and in fp16 (GradScaler), each run's
#    held-out AUROC and seconds next to the fp32 run of step 3, and fp16 predictions against fp32's;
# 5. the tests marked gpu, if any.
# Everything it prints also lands in $OUT/gpu_check.log when OUT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
LOG=${OUT:-/tmp}/gpu_check.log
WORK=$(mktemp -d /tmp/cf-gpu-XXXX)
{
  date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  timeout 300 "$PY" bench/gpu_check.py --device cuda --genes 4096 --num-workers 4 --cpu-threads 2 \
      --workdir "$WORK/data"
  echo; echo "1-GPU torchrun of the trainer (1 epoch, fold 1)"
  timeout 150 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m chromoformer.train \
      -m "$WORK/data/meta.csv" -d "$WORK/data/store" --fold 1 -o "$WORK/torchrun" --epochs 1 \
      --device cuda --num-workers 4
  "$PY" - "$WORK" <<'EOF'
import sys
from pathlib import Path
import pandas as pd
from chromoformer.data import read_metadata
from chromoformer.data.folds import split_genes
work = Path(sys.argv[1])
m = pd.read_csv(work / "torchrun" / "metrics.tsv", sep="\t")
n = len(split_genes(read_metadata(work / "data" / "meta.csv"), 1)[0])
print(f"torchrun 1 GPU: {n} training genes in {m.seconds.iloc[0]:.1f} s (validation included): "
      f"{n / m.seconds.iloc[0]:.0f} samples/s; last.pt {(work / 'torchrun' / 'last.pt').stat().st_size / 2**20:.1f} MiB")
EOF
  echo; echo "--precision bf16 and fp16 through the trainer (1 epoch, fold 1) and predict"
  for prec in bf16 fp16; do
    timeout 120 "$PY" -m chromoformer.train -m "$WORK/data/meta.csv" -d "$WORK/data/store" --fold 1 \
        -o "$WORK/$prec" --epochs 1 --device cuda --num-workers 4 --precision "$prec"
  done
  for prec in fp32 fp16; do
    timeout 60 "$PY" -m chromoformer.cli predict -m "$WORK/data/meta.csv" -d "$WORK/data/store" \
        -k "$WORK/torchrun/last.pt" -o "$WORK/pred-$prec.csv" --device cuda --precision "$prec"
  done
  "$PY" - "$WORK" <<'EOF'
import sys
from pathlib import Path
import pandas as pd
work = Path(sys.argv[1])
for name in ("torchrun", "bf16", "fp16"):
    m = pd.read_csv(work / name / "metrics.tsv", sep="\t")
    print(f"{name:9s} val_auroc {m.val_auroc.iloc[-1]:.4f}  {m.seconds.iloc[-1]:.1f} s")
a, b = (pd.read_csv(work / f"pred-{p}.csv") for p in ("fp32", "fp16"))
print(f"fp16 vs fp32 predictions: max |dP| {(a.prediction - b.prediction).abs().max():.2e}, "
      f"Spearman {a.prediction.corr(b.prediction, method='spearman'):.5f}")
EOF
  echo; echo "tests marked gpu"
  timeout 60 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests || echo "pytest exit $? (5: no test is marked gpu)"
} 2>&1 | tee "$LOG"
