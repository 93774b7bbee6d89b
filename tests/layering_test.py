"""The layers of the project, checked on its BUILD files and #includes (no Bazel needed).

  env/     the environments: depends on common/ only (directly; proto/ through common/)
  policy/  networks, named parameters, the acting policy: depends on common/ only
  eval/    evaluation of a policy on any environment: env/, policy/, common/ only
  actor/   the acting loop: env/, policy/, common/, proto/, replay/;
           never learner/ (directly or through any package it reaches)

Each layered package's BUILD file is read for the labels it names (visibility lists left
out) and each of its .h/.cc files for `#include "<folder>/..."` of a project folder. A
package may name only its allowed folders, and what it reaches through the BUILD files of
common/, proto/ and replay/ (read too) may not include a forbidden one. Before the real tree,
the check is run on small trees that break each rule, and must fail on every one of them.

Usage: layering_test.py [ROOT]  (ROOT: the directory holding env/, policy/, actor/, ...;
default: the current directory, the test's runfiles root under Bazel).
"""

import os
import re
import sys
import tempfile

# Top-level folders of the project that a label or an #include can name.
PROJECT = {"actor", "bench", "common", "deploy", "env", "eval", "learner", "policy",
           "proto", "replay", "tests", "third_party"}

# Package -> the project folders it may name directly (its own included).
ALLOWED_DIRECT = {
    "env": {"env", "common"},
    "policy": {"policy", "common"},
    "eval": {"eval", "env", "policy", "common"},
    "actor": {"actor", "env", "policy", "common", "proto", "replay"},
}
# Package -> the folders it must not reach, directly or through other packages' BUILD deps.
FORBIDDEN_REACH = {
    "env": PROJECT - {"env", "common", "proto"},
    "policy": PROJECT - {"policy", "common", "proto"},
    "eval": PROJECT - {"eval", "env", "policy", "common", "proto"},
    "actor": {"learner", "bench", "tests", "deploy"},
}
# Packages whose BUILD files are read to follow what the layered ones reach.
FOLLOWED = ["common", "proto", "replay"]

LABEL = re.compile(r'(?<![A-Za-z0-9_:])//([A-Za-z0-9_]+)')
INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)/', re.M)
VISIBILITY = re.compile(r'(default_)?visibility\s*=\s*\[[^\]]*\]', re.S)
LOAD = re.compile(r'^load\([^)]*\)', re.M)  # .bzl files are no dependencies


def strip_comments(text):
    return "\n".join(line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
                     for line in text.splitlines())


def build_folders(root, package):
    """The project folders that package/BUILD names in labels (visibility, load() out)."""
    with open(os.path.join(root, package, "BUILD")) as f:  # missing: an error
        text = LOAD.sub("", VISIBILITY.sub("", strip_comments(f.read())))
    return {m.group(1) for m in LABEL.finditer(text) if m.group(1) in PROJECT}


def include_folders(root, package):
    """(file, folder) for each #include "folder/..." of a project folder in package/."""
    found = []
    directory = os.path.join(root, package)
    for name in sorted(os.listdir(directory)):
        if not name.endswith((".h", ".cc")):
            continue
        with open(os.path.join(directory, name)) as f:
            for m in INCLUDE.finditer(f.read()):
                if m.group(1) in PROJECT:
                    found.append((os.path.join(package, name), m.group(1)))
    return found


def check(root):
    """The violations in the tree at root, as one line each."""
    violations, graph = [], {}
    for package in list(ALLOWED_DIRECT) + FOLLOWED:
        if os.path.exists(os.path.join(root, package, "BUILD")):
            graph[package] = build_folders(root, package)
        else:
            violations.append(f"{package}/BUILD: missing")
    for package, allowed in ALLOWED_DIRECT.items():
        if package not in graph:
            continue
        for folder in sorted(graph[package] - allowed):
            violations.append(f"{package}/BUILD: depends on //{folder} "
                              f"(allowed: {', '.join(sorted(allowed))})")
        for source, folder in include_folders(root, package):
            if folder not in allowed:
                violations.append(f'{source}: #include "{folder}/..." '
                                  f"(allowed: {', '.join(sorted(allowed))})")
        # What the package reaches through the BUILD files read.
        reached, todo = set(), [package]
        while todo:
            for folder in graph.get(todo.pop(), set()):
                if folder not in reached:
                    reached.add(folder)
                    todo.append(folder)
        for folder in sorted(reached & FORBIDDEN_REACH[package]):
            violations.append(f"{package}/ reaches //{folder} through BUILD deps")
    return violations


def write(root, path, text):
    os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
    with open(os.path.join(root, path), "w") as f:
        f.write(text)


def self_test():
    """The check on trees that break one rule each: it must fail on every one."""
    good = {
        "env/BUILD": 'cc_library(name = "e", deps = ["//common:flags"])\n'
                     'package(default_visibility = ["//tests:__pkg__"])\n',
        "env/e.h": '#include "common/flags.h"\n#include <vector>\n',
        "policy/BUILD": 'cc_library(name = "p", deps = ["//common:tensor_codec"])\n',
        "policy/p.h": '#include "common/tensor_codec.h"\n',
        "eval/BUILD": 'cc_library(name = "v", deps = ["//env:e", "//policy:p"])\n',
        "eval/v.cc": '#include "env/e.h"\n#include "policy/p.h"\n',
        "actor/BUILD": 'cc_library(name = "a", deps = ["//env:e", "//policy:p", "//replay:client"])\n'
                       '# "//learner:in_a_comment" is no dependency\n',
        "actor/a.cc": '#include "env/e.h"\n#include "policy/p.h"\n',
        "common/BUILD": 'cc_library(name = "c", deps = ["//proto:x"])\n',
        "proto/BUILD": 'load("//third_party:proto.bzl", "softq_proto")\n',
        "replay/BUILD": 'cc_library(name = "client", deps = ["//common:c"])\n',
    }
    bad = {
        "actor depends on learner": {"actor/BUILD": 'cc_library(deps = ["//learner:sql_agent"])\n'},
        "actor includes learner": {"actor/b.h": '#include "learner/sql_agent.h"\n'},
        "actor reaches learner": {"replay/BUILD": 'cc_library(deps = ["//learner:x"])\n'},
        "env depends on policy": {"env/BUILD": 'cc_library(deps = ["//policy:networks"])\n'},
        "env depends on proto": {"env/BUILD": 'cc_library(deps = ["//proto:transition_proto"])\n'},
        "env includes actor": {"env/f.cc": '#include "actor/actor.h"\n'},
        "policy depends on learner": {"policy/BUILD": 'cc_library(deps = ["//learner:sql_agent"])\n'},
        "policy includes env": {"policy/q.cc": '#include "env/environment.h"\n'},
        "policy reaches actor": {"common/BUILD": 'cc_library(deps = ["//actor:actor"])\n'},
        "eval depends on actor": {"eval/BUILD": 'cc_library(deps = ["//actor:actor"])\n'},
        "eval includes learner": {"eval/w.h": '#include "learner/learner.h"\n'},
        "eval depends on replay": {"eval/BUILD": 'cc_library(deps = ["//replay:client"])\n'},
        "eval reaches learner": {"common/BUILD": 'cc_library(deps = ["//learner:x"])\n'},
    }
    with tempfile.TemporaryDirectory() as root:
        for path, text in good.items():
            write(root, path, text)
        if check(root):
            return [f"self-test: a tree within the layers fails: {check(root)}"]
    failures = []
    for name, change in bad.items():
        with tempfile.TemporaryDirectory() as root:
            for path, text in {**good, **change}.items():
                write(root, path, text)
            if not check(root):
                failures.append(f"self-test: the check passes a tree where {name}")
    return failures


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    failures = self_test() + check(root)
    for line in failures:
        print("layering:", line)
    if failures:
        return 1
    print("layering: ok (env/, policy/ on common/ only; eval/ on env/, policy/, common/; "
          "actor/ never reaches learner/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
