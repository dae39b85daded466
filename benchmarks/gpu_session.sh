#!/usr/bin/env bash
# The one prepared run for a lent GPU machine: CUDA tests, then every benchmark, recorded in
# benchmarks/results.json and copied to $OUT. The machine has torch but neither the repo's
# other packages nor MNIST, so the data travels gzipped in an ignored folder:
#
#   here:   mkdir -p .gpu_data && for f in "$VAE_DATA_DIR"/MNIST/raw/*-ubyte; do
#               gzip -c "$f" > .gpu_data/"$(basename "$f")".gz; done
#           echo /.gpu_data/ >> .git/info/exclude
#   device: run(command="bash benchmarks/gpu_session.sh", carry=[".gpu_data"], timeout_s=540)
#
# Then copy the returned results.json over benchmarks/results.json and rebuild the book.
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
OUT="${OUT:-/tmp/gpu_out}"
mkdir -p "$OUT" /tmp/data/MNIST/raw
for f in .gpu_data/*.gz; do gunzip -c "$f" > /tmp/data/MNIST/raw/"$(basename "$f" .gz)"; done
export VAE_DATA_DIR=/tmp/data
log() { tee -a "$OUT/gpu_session.log"; }
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true; } 2>&1 | log
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | log
# The repo's pytest options name nbval, which the machine lacks: clear them.
python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_training.py \
    tests/test_models_beyond_the_basics.py -k "cuda or tutorial_table or conditional" 2>&1 | log
python3 benchmarks/bench_training.py --device cuda --epochs 5 \
    --record benchmarks/results.json 2>&1 | log
python3 benchmarks/profile_tutorial.py --device cuda --record benchmarks/results.json 2>&1 | log
python3 benchmarks/long_run.py --device cuda --cuda-graph --max-epochs 200 \
    --record benchmarks/results.json 2>&1 | tr '\r' '\n' | tail -n 3 | log
# Bounded first steps of the longer benchmarks (each records what it finished; `|| true` keeps
# the session going when a time limit stops one).
timeout 240 python3 benchmarks/literature_table.py --device cuda --epochs 4 --ks 1,5,50 \
    --test-images 10000 --record benchmarks/results.json 2>&1 | log || true
timeout 120 python3 benchmarks/ais.py --device cuda --epochs 20 --images 256 --chains 16 \
    --steps 100 1000 --record benchmarks/results.json 2>&1 | log || true
timeout 300 python3 benchmarks/semi_supervised.py --device cuda --epochs 20 --nz 2 \
    --record benchmarks/results.json 2>&1 | log || true
cp benchmarks/results.json "$OUT/"
