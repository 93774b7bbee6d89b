# shellcheck shell=bash
# Sourced by what starts softq's processes (deploy/local/test.sh and demo.sh,
# deploy/slurm/task.sh, the Kubernetes learner and actor pods as /opt/softq/openblas_env.sh):
# exports OPENBLAS_CORETYPE, unless it is set, naming the newest of
# OpenBLAS's x86-64 kernel sets this CPU and its kernel run. Debian 12's OpenBLAS (0.3.21)
# does not know CPUs newer than itself (Sapphire Rapids, for one) and runs its Prescott (SSE3)
# kernels on them: SQL updates 3.4x slower on such a CPU (56 -> 190 per second, batch 64, one
# thread). SkylakeX's and Haswell's float kernels are what OpenBLAS itself picks for the CPUs
# it knows with AVX-512 and AVX2; elsewhere (another architecture, an older CPU) nothing is set.
# The binaries print a line at start when OpenBLAS still runs Prescott kernels on an AVX2 CPU.
# (SOFTQ_CPUINFO: another cpuinfo to read, for tests/openblas_env_test.sh.)
if [[ -z "${OPENBLAS_CORETYPE:-}" && "$(uname -m)" == x86_64 && -r "${SOFTQ_CPUINFO:-/proc/cpuinfo}" ]]
then
  softq_cpu_flags=" $(grep -m1 '^flags' "${SOFTQ_CPUINFO:-/proc/cpuinfo}" | cut -d: -f2 || true) "
  softq_has() { local f; for f in "$@"; do [[ "$softq_cpu_flags" == *" $f "* ]] || return 1; done; }
  if softq_has avx512f avx512cd avx512bw avx512dq avx512vl; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif softq_has avx2 fma; then
    export OPENBLAS_CORETYPE=Haswell
  fi
  unset -f softq_has
  unset softq_cpu_flags
fi
