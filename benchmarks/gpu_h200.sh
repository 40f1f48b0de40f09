#!/usr/bin/env bash
# The GPU backend on the lent H200 (the device tool's machine: torch 2.11 + CUDA 13, Python
# 3.12, no network), in stages that each fit one call:
#
#   bash benchmarks/gpu_h200.sh tests   # build, GPU tests on tiny checkpoints
#   bash benchmarks/gpu_h200.sh stt     # full-size random STT: export cuda bf16 int4, benchmark
#   bash benchmarks/gpu_h200.sh tts     # full-size random TTS: the same
#   bash benchmarks/gpu_h200.sh tests stt   # several in one call
#   stt-export / stt-bench (tts-export / tts-bench): either half of a stage, for calls that
#   would not hold both (artifacts stay in /tmp/art while the machine is warm)
#   bg-exports: both full-size checkpoints and exports in a background process session (it
#   outlives the call while the machine stays warm; logs in /tmp/bg), beside the tests;
#   wait-exports: waits for them (the next call, within the machine's warm time), logs to $OUT
#   nographs: the stages after it run with VOXTRAL_CUDA_GRAPHS=0 (logs named *_nographs), to
#   compare captured and uncaptured runs on one machine:
#     bash benchmarks/gpu_h200.sh stt-bench tts-bench nographs stt-bench tts-bench
#   The tests run with VOXTRAL_CUDA_GRAPHS=strict: a call that cannot be captured fails them.
#   graphs-test: only the CUDA-graph and bf16 parity tests, bounded, for a call that also
#   exports and benchmarks: bash benchmarks/gpu_h200.sh bg-exports graphs-test wait-exports stt-bench tts-bench
#
# Every stage first installs what the machine lacks (wheels carried in .whl/: executorch
# 1.5.1 for libvoxtral's CPU backend, soundfile, soxr, cffi, mistral-common for the Tekken
# ranks make-checkpoint writes) and builds voxtral-native with
# VOXTRAL_BACKENDS="xnnpack;aoti" against the machine's torch; a warm machine skips that.
# Logs go to $OUT (the device tool brings them back).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
stages=${*:?stages: tests, stt, tts (one or more)}
suffix=""  # log name suffix: _nographs after the nographs stage

setup() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH=/tmp/site
  if [ -f /tmp/voxtral-setup.done ]; then return 0; fi
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
  python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
  VOXTRAL_BACKENDS="xnnpack;aoti" CMAKE_BUILD_PARALLEL_LEVEL=16 \
    python3 -m pip install -e . --no-deps --no-build-isolation -q > "$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; return 1; }
  python3 -c "from voxtral_native import _core; b = _core.backends(); print('backends', b); assert 'aoti' in b" || return 1
  touch /tmp/voxtral-setup.done
}

timed() {  # timed NAME CMD...: runs CMD with /usr/bin/time -v, output to $OUT/NAME.log
  local name=$1; shift
  echo "== $name: $*"
  local start=$SECONDS rc
  if [ -x /usr/bin/time ]; then /usr/bin/time -v "$@" > "$OUT/$name.log" 2>&1; else "$@" > "$OUT/$name.log" 2>&1; fi
  rc=$?
  echo "$name: rc=$rc, $((SECONDS - start)) s" | tee -a "$OUT/$name.log"
  grep -E "Elapsed|Maximum resident" "$OUT/$name.log"
  tail -n 45 "$OUT/$name.log" | grep -v "^\s" | tail -n 40
  return $rc
}

sample_processes() {  # sample_processes NAME: every 20 s, what the export's process tree runs (compiler, linker, ...)
  while sleep 20; do
    echo "--- $SECONDS s"; ps -eo pid,ppid,etimes,pcpu,rss,args --sort=-pcpu | grep -v "ps -eo" | head -n 8 | cut -c1-220
  done >> "$OUT/$1.ps" 2>&1
}

bg_chain() {  # bg_chain stt|tts: checkpoint if missing, then the export; /tmp/bg/NAME.rc when done
  local m=$1 extra
  if [ "$m" = stt ]; then extra="--encoder-quant 4w:128"; else extra="--acoustic-quant 4w:128"; fi
  local start=$SECONDS
  { [ -f /tmp/ckpt/$m-full/params.json ] || python3 -m voxtral_native make-checkpoint $m --size full --seed 1 /tmp/ckpt/$m-full; } \
    > /tmp/bg/ckpt_$m.log 2>&1 || { echo 1 > /tmp/bg/$m.rc; return; }
  echo "checkpoint: $((SECONDS - start)) s" >> /tmp/bg/ckpt_$m.log
  /usr/bin/time -v python3 -m voxtral_native export $m --checkpoint /tmp/ckpt/$m-full --out /tmp/art/$m-cuda \
    --backend cuda --dtype bf16 --quant 4w:128 $extra > /tmp/bg/export_$m.log 2>&1
  echo $? > /tmp/bg/$m.rc
  echo "export: $((SECONDS - start)) s since the chain began" >> /tmp/bg/export_$m.log
}

setup || { echo "setup failed"; exit 1; }
echo "setup done at $SECONDS s"
for stage in $stages; do
case $stage in
  bg-exports)
    mkdir -p /tmp/bg; rm -f /tmp/bg/*.rc
    export -f bg_chain
    # niced: a stage run beside them (the tests) keeps the CPUs it needs
    for m in stt tts; do setsid nohup nice -n 19 bash -c "bg_chain $m" > /dev/null 2>&1 < /dev/null & done
    echo "background exports started"
    ;;
  wait-exports)  # until both chains end or 560 s pass in this call
    while [ $SECONDS -lt 560 ] && ! { [ -f /tmp/bg/stt.rc ] && [ -f /tmp/bg/tts.rc ]; }; do sleep 5; done
    for f in /tmp/bg/*.log; do grep -v "^\s*DEBUG" "$f" | tail -n 60 > "$OUT/bg_$(basename "$f")"; done
    for m in stt tts; do echo "$m: rc=$(cat /tmp/bg/$m.rc 2>/dev/null || echo running)"; grep -E "Elapsed|Maximum resident|export:" /tmp/bg/export_$m.log 2>/dev/null; done
    ;;
  nographs)
    export VOXTRAL_CUDA_GRAPHS=0; suffix=_nographs
    ;;
  graphs-test)  # the captured-vs-uncaptured test and the bf16 parity one alone, at most 270 s (beside bg-exports)
    VOXTRAL_CUDA_GRAPHS=strict timeout 270 python3 -m pytest -m gpu -n 0 -p no:cacheprovider -q -rA \
      -k "cuda_graphs or bf16_int4_package" tests/python/test_gpu.py 2>&1 | tee "$OUT/gpu_tests_graphs.log" | tail -n 25
    ;;
  tests)
    # four xdist workers sharing the tiny exports (made_once): a test that crashes its process is reported and the next runs in a new one
    # bounded to end inside the call's 600 s, with the log kept
    VOXTRAL_CUDA_GRAPHS=strict timeout $((570 - SECONDS)) python3 -m pytest -m gpu -n 4 -p no:cacheprovider -q -rA --timeout 400 \
      tests/python/test_gpu.py tests/python/test_aoti_backend.py 2>&1 | tee "$OUT/gpu_tests.log" | tail -n 25
    ;;
  stt|stt-export)
    [ -f /tmp/ckpt/stt-full/params.json ] || timed ckpt_stt python3 -m voxtral_native make-checkpoint stt --size full --seed 1 /tmp/ckpt/stt-full || exit 1
    sample_processes export_stt & sampler=$!
    timed export_stt python3 -m voxtral_native export stt --checkpoint /tmp/ckpt/stt-full --out /tmp/art/stt-cuda \
      --backend cuda --dtype bf16 --quant 4w:128 --encoder-quant 4w:128; rc=$?
    kill $sampler; [ $rc = 0 ] || exit 1
    ;;&
  stt|stt-bench)
    timed bench_stt$suffix python3 benchmarks/stt.py /tmp/art/stt-cuda --seconds 20 --steps 100 --streams 1,4,16,64
    ;;
  tts|tts-export)
    [ -f /tmp/ckpt/tts-full/params.json ] || timed ckpt_tts python3 -m voxtral_native make-checkpoint tts --size full --seed 1 /tmp/ckpt/tts-full || exit 1
    sample_processes export_tts & sampler=$!
    timed export_tts python3 -m voxtral_native export tts --checkpoint /tmp/ckpt/tts-full --out /tmp/art/tts-cuda \
      --backend cuda --dtype bf16 --quant 4w:128 --acoustic-quant 4w:128; rc=$?
    kill $sampler; [ $rc = 0 ] || exit 1
    ;;&
  tts|tts-bench)
    timed bench_tts$suffix python3 benchmarks/tts.py /tmp/art/tts-cuda --frames 100 --runs 3 --steps 50
    ;;
esac
done
