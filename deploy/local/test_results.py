"""The test command's bookkeeping (deploy/local/test.sh): one line per test target or check.

  test_results.py bazel LOG TESTLOGS STATUS NAME >> RESULTS   # one `bazel test` run's targets
  test_results.py check NAME STATUS [DETAIL] >> RESULTS
  test_results.py summary RESULTS [--may_skip=LABEL=WHY ...]

A RESULTS line is `status<TAB>name<TAB>detail`, status one of passed, failed, skipped. A test
target Bazel reports PASSED counts as skipped when every case in its test.xml was skipped
(GoogleTest's GTEST_SKIP): a target that checked nothing is never a pass. `summary` names
each skip and each failure and ends with "N passed, N failed, N skipped"; it exits 1 when
something failed or when something was skipped that is not allowed to skip on this machine
(each --may_skip gives the label and the reason it may). A `bazel test` run that exited
non-zero (but for 4, no tests) without a failed target, a broken build, is one failure.
"""

import glob
import os
import re
import sys
import xml.etree.ElementTree as ET

_RESULT = re.compile(
    r"^(//\S+)\s+(?:\(cached\) )?(PASSED|FAILED TO BUILD|FAILED|TIMEOUT|FLAKY|NO STATUS|"
    r"INCOMPLETE|REMOTE FAILURE)\b")


def _cases(testlogs, label):
    """(cases, skipped cases, skip messages) over the target's test.xml files (one per
    shard); (0, 0, []) when there are none."""
    package, name = label[2:].split(":", 1)
    base = os.path.join(testlogs, package, name)
    files = glob.glob(os.path.join(base, "test.xml")) + glob.glob(
        os.path.join(base, "shard_*", "test.xml"))
    cases = skipped = 0
    why = []
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except (ET.ParseError, OSError):
            continue
        for case in root.iter("testcase"):
            cases += 1
            skip = case.find("skipped")
            if case.get("result") == "skipped" or skip is not None:
                skipped += 1
                message = (skip.get("message") if skip is not None else "") or ""
                message = message.strip().splitlines()[-1] if message.strip() else ""
                if message and message not in why:
                    why.append(message)
    return cases, skipped, why


def bazel(log_path, testlogs, status, name):
    seen = {}
    with open(log_path, errors="replace") as log:
        for line in log:
            m = _RESULT.match(line)
            if m:
                seen[m.group(1)] = m.group(2)
    if status not in (0, 4) and all(r == "PASSED" for r in seen.values()):
        print(f"failed\tbazel test ({name})\tbazel exited {status} before reporting a "
              "failed target")
    for label, result in seen.items():
        if result != "PASSED":
            print(f"failed\t{label}\t{result}")
            continue
        cases, skipped, why = _cases(testlogs, label)
        reason = "; ".join(why) or "no reason given"
        if cases and skipped == cases:
            print(f"skipped\t{label}\tall {cases} cases skipped ({reason})")
        elif skipped:
            print(f"passed\t{label}\t{skipped} of {cases} cases skipped ({reason})")
        else:
            print(f"passed\t{label}\t")


def summary(results_path, may_skip):
    allowed = dict(item.split("=", 1) if "=" in item else (item, "") for item in may_skip)
    rows = []
    with open(results_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2:
                rows.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    bad_skips = []
    for status, name, detail in rows:
        counts[status] = counts.get(status, 0) + 1
        if status == "passed" and detail:
            print(f"partly skipped: {name}: {detail}")
        elif status == "skipped":
            if name in allowed:
                print(f"skipped: {name}: {detail} [may skip here: {allowed[name]}]")
            else:
                print(f"skipped: {name}: {detail} [MUST RUN on this machine]")
                bad_skips.append(name)
        elif status == "failed":
            print(f"failed: {name}: {detail}")
    if bad_skips:
        print(f"error: {len(bad_skips)} check(s) skipped that must run here: "
              + ", ".join(bad_skips))
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return 1 if counts["failed"] or bad_skips else 0


def main(argv):
    if len(argv) == 6 and argv[1] == "bazel":
        bazel(argv[2], argv[3], int(argv[4]), argv[5])
        return 0
    if len(argv) >= 4 and argv[1] == "check" and argv[3] in ("passed", "failed", "skipped"):
        detail = " ".join(argv[4:]).replace("\t", " ").replace("\n", " ")
        print(f"{argv[3]}\t{argv[2]}\t{detail}")
        return 0
    if len(argv) >= 3 and argv[1] == "summary":
        may = [a.split("=", 1)[1] for a in argv[3:] if a.startswith("--may_skip=")]
        return summary(argv[2], may)
    print("usage:\n" + "\n".join(__doc__.splitlines()[2:5]), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
