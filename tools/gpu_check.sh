#!/usr/bin/env bash
# The GPU checks in one call, for a lent machine with a CUDA GPU, Python 3.12, torch, pytest,
# pytest-xdist and hypothesis, but no package registry:
#
#   bash tools/gpu_check.sh prepare     # here: wheels of every package and of the LIF
#                                       # benchmark's peers into .whl/ (git-ignored)
#   bash tools/gpu_check.sh run [OUT]   # there, with .whl/ carried: install them into
#                                       # /tmp/site, run every package's CUDA device tests,
#                                       # then benchmarks/snn/bench_lif.py --device cuda
#
# Logs and benchmarks/results/snn_lif_cuda.json go to OUT (default: $OUT, else ./gpu-check).
# Stage limits: TESTS_LIMIT (s, default 240), BENCH_LIMIT (s, default 420); ROUNDS (default 1).
set -uo pipefail
cd "$(dirname "$0")/.."
PEERS=(snntorch==1.0.0 spikingjelly==2.0.0 nir==1.0.8 nirtorch==2.6 loguru==0.7.3 scienceplots==2.2.2)

case "${1:-}" in
prepare)
    set -e
    rm -rf .whl
    uv build --quiet --all-packages --wheel --out-dir .whl
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --dest .whl/peers "${PEERS[@]}"
    python3 -m pip wheel --quiet --no-deps --wheel-dir .whl/peers norse==1.1.0  # sdist only
    du -sh .whl
    ;;
run)
    out=${2:-${OUT:-gpu-check}}
    mkdir -p "$out"
    python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl .whl/peers/*.whl || exit 1
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.used --format=csv,noheader
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    start=$(date +%s)
    timeout "${TESTS_LIMIT:-240}" python3 -m pytest -p no:cacheprovider -q -n 12 -rfEs \
        packages/*/tests/test_device.py -m "not reproduction" 2>&1 | tee "$out/device_tests.log" |
        tail -15
    echo "device tests: rc=${PIPESTATUS[0]}, $(($(date +%s) - start)) s"
    start=$(date +%s)
    timeout "${BENCH_LIMIT:-420}" python3 benchmarks/snn/bench_lif.py --device cuda \
        --rounds "${ROUNDS:-1}" 2>&1 | tee "$out/bench_lif_cuda.log" | grep -E "^(T=|\||wrote)"
    echo "bench_lif --device cuda: rc=${PIPESTATUS[0]}, $(($(date +%s) - start)) s"
    cp benchmarks/results/snn_lif_cuda.json "$out/" 2>/dev/null
    ;;
*)
    echo "usage: bash tools/gpu_check.sh prepare | run [OUT]" >&2
    exit 2
    ;;
esac
