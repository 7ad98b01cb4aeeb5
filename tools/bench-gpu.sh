#!/bin/sh
# shellcheck disable=SC2016 # the sh -c scripts below expand their own arguments
# tools/bench-gpu.sh: every GPU figure of docs/performance.md in one run, into folder OUT.
#
#   tools/bench-gpu.sh OUT [PARTS]        PARTS: comma-separated, default all = ops,torch,unet,profile
#
#   ops      easel-cli bench --ops on Vulkan: each distinct UNet op shape of SD 1.5 512² and SDXL 1024²
#            (batch 2) alone, GPU timestamps             -> OUT/ops-easel.tsv, OUT/ops-easel.txt
#   torch    tools/bench-torch.py: the same shapes in PyTorch fp16 (CUDA events), joined with the
#            above, ratio easel_ms / torch_ms per shape and per step  -> OUT/ops-torch.tsv, OUT/ops-joined.txt
#   unet     easel-cli bench --family all --backend vulkan: s per UNet step, TFLOP/s, % of
#            --peak-tflops, VAE decode, backend stats     -> OUT/bench.txt
#   profile  the same with EASEL_PROFILE=1 (dispatches serialized, per-op GPU tables)  -> OUT/profile.txt
#
# Needs the built easel-cli ($EASEL_CLI, default build/app/easel-cli) and, for torch, python3 with
# torch; no network. The random-weight bench checkpoints are written once (easel-cli make-model) into
# $XDG_CACHE_HOME/easel/bench, here build/bench-cache unless XDG_CACHE_HOME is set. Each part prints
# its wall time; a part that fails is reported and the next one still runs. Environment:
# BENCH_ITERS (unet timed calls, default 5), BENCH_OPS_ITERS (runs per op shape, default 20),
# BENCH_PEAK_TFLOPS (default 989, an H100 SXM's fp16 dense tensor peak), BENCH_OPS_ARGS (more
# options for bench --ops, e.g. a smoke test: "--quick --family sd15 --model tiny.safetensors").
set -u

if [ $# -lt 1 ]; then
  echo "usage: $0 OUT [ops,torch,unet,profile]" >&2
  exit 2
fi
OUT=$1
PARTS=${2:-all}
CLI=${EASEL_CLI:-build/app/easel-cli}
ITERS=${BENCH_ITERS:-5}
OPS_ITERS=${BENCH_OPS_ITERS:-20}
PEAK=${BENCH_PEAK_TFLOPS:-989}
HERE=$(cd "$(dirname "$0")" && pwd)
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$PWD/build/bench-cache}"

if [ ! -x "$CLI" ]; then
  echo "$0: no easel-cli at $CLI (build it, or set EASEL_CLI)" >&2
  exit 2
fi
mkdir -p "$OUT" "$XDG_CACHE_HOME" || exit 1
failed=""

want () {
  case ",$PARTS," in
    *,all,*|*,"$1",*) return 0 ;;
    *) return 1 ;;
  esac
}

# part NAME: runs the rest of the arguments, timed; a failure is noted, not fatal
part () {
  name=$1
  shift
  echo "== $name"
  t0=$(date +%s)
  if "$@"; then
    echo "== $name: done in $(( $(date +%s) - t0 )) s"
  else
    echo "== $name: FAILED (exit $?) after $(( $(date +%s) - t0 )) s"
    failed="$failed $name"
  fi
}

{
  date -u '+%Y-%m-%d %H:%M UTC'
  uname -srm
  git -C "$HERE/.." log -1 --format='easel %h %s' 2>/dev/null
  command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  "$CLI" devices
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

if want ops; then
  # shellcheck disable=SC2086 # BENCH_OPS_ARGS is a list of options
  part ops sh -c 'cli=$1 iters=$2 out=$3; shift 3
                  "$cli" bench --ops --family all --backend vulkan --iters "$iters" --out "$out/ops-easel.tsv" "$@" \
                  > "$out/ops-easel.txt" 2>&1; rc=$?; tail -n 3 "$out/ops-easel.txt"; exit $rc' \
    sh "$CLI" "$OPS_ITERS" "$OUT" ${BENCH_OPS_ARGS:-}
fi
if want torch; then
  part torch sh -c 'python3 "$1/bench-torch.py" "$2/ops-easel.tsv" --out "$2/ops-torch.tsv" > "$2/ops-joined.txt" 2>&1;
                    rc=$?; cat "$2/ops-joined.txt"; exit $rc' sh "$HERE" "$OUT"
fi
if want unet; then
  part unet sh -c '"$1" bench --family all --backend vulkan --iters "$2" --peak-tflops "$3" > "$4/bench.txt" 2>&1;
                   rc=$?; cat "$4/bench.txt"; exit $rc' sh "$CLI" "$ITERS" "$PEAK" "$OUT"
fi
if want profile; then
  part profile sh -c 'EASEL_PROFILE=1 "$1" bench --family all --backend vulkan --iters 1 --peak-tflops "$2" \
                      > "$3/profile.txt" 2>&1; rc=$?; grep -E "^(  (unet|vae)|[a-z ]+ profile|  (linear|conv2d|attention|group_norm) )" "$3/profile.txt" | head -n 80; exit $rc' \
    sh "$CLI" "$PEAK" "$OUT"
fi

if [ -n "$failed" ]; then
  echo "failed parts:$failed (see $OUT)"
  exit 1
fi
echo "all parts done; results in $OUT"
