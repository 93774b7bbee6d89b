#!/usr/bin/env bash
# deploy/openblas_env.sh: which OpenBLAS kernels it names for which CPU flags, that it leaves a
# set OPENBLAS_CORETYPE alone, and, on this machine, that a LibTorch binary started after it
# does not run OpenBLAS's Prescott kernels on an AVX2 CPU (its start-up line would say so).
#
#   tests/openblas_env_test.sh ENV_SCRIPT TRAIN_IN_PROCESS
# shellcheck disable=SC1090  # the script under test is an argument
set -uo pipefail
script="$1" train="$2"
failures=0
expect() {  # expect WHAT WANT GOT
  if [[ "$2" == "$3" ]]; then echo "ok    $1: '$3'"; else echo "FAIL  $1: '$3', want '$2'"; failures=$((failures + 1)); fi
}
# coretype_for FLAGS: what the script exports on an x86-64 CPU with those cpuinfo flags.
coretype_for() {
  local cpuinfo="${TEST_TMPDIR:-/tmp}/cpuinfo"
  printf 'processor\t: 0\nflags\t\t: %s\n' "$1" >"$cpuinfo"
  # shellcheck disable=SC2034  # read by the sourced script
  (unset OPENBLAS_CORETYPE; SOFTQ_CPUINFO="$cpuinfo"; source "$script"; echo "${OPENBLAS_CORETYPE:-}")
}
if [[ "$(uname -m)" == x86_64 ]]; then
  expect "AVX-512 (F, CD, BW, DQ, VL)" SkylakeX \
    "$(coretype_for "fpu sse4_2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl")"
  expect "AVX-512 F only (no BW/DQ/VL), AVX2" Haswell "$(coretype_for "sse4_2 avx avx2 fma avx512f")"
  expect "AVX2 and FMA" Haswell "$(coretype_for "fpu sse4_2 avx avx2 fma")"
  expect "AVX2 without FMA" "" "$(coretype_for "sse4_2 avx avx2")"
  expect "SSE4.2 only" "" "$(coretype_for "fpu sse sse2 sse4_2")"
  expect "an empty flags line" "" "$(coretype_for "")"
fi
expect "a set value is kept" Zen \
  "$(OPENBLAS_CORETYPE=Zen; source "$script"; echo "$OPENBLAS_CORETYPE")"
expect "the caller's set -euo pipefail survives it" "sourced" \
  "$(set -euo pipefail; unset OPENBLAS_CORETYPE; source "$script"; echo sourced)"

# This machine, end to end: the script's choice, then a LibTorch binary's start-up line.
line="$(unset OPENBLAS_CORETYPE; source "$script"
        "$train" --max_env_steps=1 --eval_interval=0 --eval_rollouts=1 2>&1 | grep -m1 '^BLAS')"
echo "      here: ${line:0:160}"
expect "no Prescott warning after the script" "" "$(grep -o 'runs its Prescott.*' <<<"$line")"

echo "$failures failed"
[[ $failures -eq 0 ]]
