#!/bin/bash
# The negative control of `bazel test --config=tsan` (deploy/local/test.sh runs it there):
# tsan_canary_test races on purpose in softq:: code, one side on a gRPC thread. With the TSan
# Abseil and tsan.supp in place (this test runs under tests/faults:tsan_run like every TSan
# test, and its environment reaches the canary), TSan must report that race. Passes only if
# the canary fails with a data race naming softq's racy_counter; a suppression or an
# uninstrumented build that hides it fails this test. Meaningless without TSan: tagged manual.
set -uo pipefail
canary="$1"
out=$(mktemp)
"$canary" >"$out" 2>&1
status=$?
fail() { echo "FAIL: $*"; sed 's/^/  canary| /' "$out" | tail -40; exit 1; }
[[ $status -ne 0 ]] || fail "the canary passed: TSan reported no race"
grep -q "WARNING: ThreadSanitizer: data race" "$out" || fail "exit $status without a data race report"
grep -q "softq::(anonymous namespace)::racy_counter" "$out" ||
  fail "the race report does not name softq::(anonymous namespace)::racy_counter"
echo "ok: TSan reported the canary's race on softq::(anonymous namespace)::racy_counter (exit $status)"
