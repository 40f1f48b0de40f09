#!/bin/bash
# The CPU kernels on the device tool's host CPU (AVX-512 VNNI), a check that needs no GPU:
# libvoxtral's ring attention from this source and from OLD_SOURCE (a ring_attention.cpp),
# their outputs' md5s and timings to $OUT. The machine has no exir-capable executorch, so the
# programs are made here first:
#   python benchmarks/device_cpu/gen_cases.py      # -> benchmarks/device_cpu/cases (ignored)
#   git show REV:csrc/backends/executorch/ops/ring_attention.cpp > .whl/ring_attention_old.cpp
# then, through the device tool, with the executorch cp312 wheel in .whl/ (device README):
#   carry [".whl", "benchmarks/device_cpu/cases"]:
#   OLD_SOURCE=.whl/ring_attention_old.cpp bash benchmarks/device_cpu/dev_run.sh
# Run here (python benchmarks/device_cpu/dev_check.py /tmp/here 2) for the md5s to compare.
# gen_linears.py / dev_linears.py do the same for the encoder's linear kernels per scheme.
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-600 > $OUT/cpu.txt
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit 1
build() { CMAKE_BUILD_PARALLEL_LEVEL=16 python3 -m pip install -e . --no-deps --no-build-isolation -q > $OUT/build_$1.log 2>&1 || { tail -30 $OUT/build_$1.log; exit 1; }; }
run() { for t in 2 16; do python3 benchmarks/device_cpu/dev_check.py /tmp/$1$t $t > $OUT/$1$t.log 2>&1; (cd /tmp/$1$t && md5sum *) >> $OUT/$1$t.log; tail -8 $OUT/$1$t.log; done; }
build new && run new
if [ -n "${OLD_SOURCE:-}" ]; then
  cp "$OLD_SOURCE" csrc/backends/executorch/ops/ring_attention.cpp
  build old && run old
  git checkout csrc/backends/executorch/ops/ring_attention.cpp
fi
