#!/usr/bin/env bash
# What LibTorch's headers cost one translation unit on this machine: user and wall seconds of
# `g++ -std=c++17 -O2 -c` of a source that only includes them (Debian's LibTorch), REPEATS
# times each, and of an empty source that loads a precompiled <torch/torch.h>.
#   bash bench/header_cost.sh [REPEATS]        (default 3)
set -euo pipefail
repeats="${1:-3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
api=/usr/include/torch/csrc/api/include
echo "# bench/header_cost.sh $repeats, commit $(git -C "$(dirname "$0")" rev-parse --short HEAD)," \
     "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(g++ --version | head -1)"
repeat() {  # repeat COMPILE_ARG...: g++ -std=c++17 -O2 -w COMPILE_ARG... REPEATS times, " user/wall"
  for _ in $(seq "$repeats"); do
    /usr/bin/time -f " %U/%e" -o "$work/t" g++ -std=c++17 -O2 -w "$@"
    printf '%s' "$(cat "$work/t")"
  done
}
cost() {  # cost NAME HEADER...: one line of user/wall seconds per repeat
  local name="$1" h
  shift
  : >"$work/src.cc"
  for h in "$@"; do echo "#include <$h>" >>"$work/src.cc"; done
  printf '%-28s' "$name"
  repeat -c -I"$api" "$work/src.cc" -o "$work/src.o"
  echo "   (user/wall s)"
}
cost "torch/torch.h" torch/torch.h
cost "torch/types.h" torch/types.h
cost "types.h utils.h" torch/types.h torch/utils.h
cost "types.h utils.h nn modules" torch/types.h torch/utils.h torch/nn/module.h \
  torch/nn/modules/linear.h torch/nn/modules/container/sequential.h torch/nn/modules/activation.h
# The precompiled header, then an empty source that loads it.
echo '#include <torch/torch.h>' >"$work/all.h"
g++ -std=c++17 -O2 -w -I"$api" -x c++-header "$work/all.h" -o "$work/all.h.gch"
echo '' >"$work/empty.cc"
printf '%-28s' "empty, with the .gch"
repeat -Winvalid-pch -include "$work/all.h" -c "$work/empty.cc" -o "$work/empty.o"
echo "   (user/wall s; .gch $(( $(stat -c %s "$work/all.h.gch") / 1000000 )) MB)"
