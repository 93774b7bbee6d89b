"""Repository rule: Debian 12's Abseil synchronization libraries built with TSan.

Downloads Debian's exact Abseil source (abseil_20220623.1.orig.tar.gz and the
20220623.1-1+deb12u2 Debian patch set, checked by sha256) and runs build.sh on it. The
result, `@absl_tsan//:lib` (a folder of libabsl_*.so.20220623), replaces Debian's copies at
run time through LD_LIBRARY_PATH, set by //tests/faults:tsan_run (`test:tsan --run_under`).
Nothing depends on this repository outside --config=tsan, so a default build never fetches
or builds it.

Offline: put the two files in a folder and pass `--distdir=/that/folder` (Bazel takes them
from there by sha256), or have them once in Bazel's repository cache.
"""

# Debian's pool keeps only current versions; the snapshot archive keeps this one for good.
_MIRRORS = [
    "http://deb.debian.org/debian/pool/main/a/abseil/",
    "http://snapshot.debian.org/archive/debian/20250520T000000Z/pool/main/a/abseil/",
]
_ORIG = ("abseil_20220623.1.orig.tar.gz", "abfe2897f3a30edaa74bc34365afe3c2a3cd012091a97dc7e008f7016adcd5fe")
_DEB = ("abseil_20220623.1-1+deb12u2.debian.tar.xz", "e08490fc7b6f3beca1925953b0c4fb92df2de5e2a01295e4641e2a3d4e528eeb")

def _impl(ctx):
    for name, sha in (_ORIG, _DEB):
        ctx.download(url = [m + name.replace("+", "%2B") for m in _MIRRORS], output = "src/" + name, sha256 = sha)
    res = ctx.execute(
        ["bash", ctx.path(ctx.attr._build_sh), "src/" + _ORIG[0], "src/" + _DEB[0], "out"],
        timeout = 3600,
        quiet = False,
    )
    if res.return_code != 0:
        fail("building TSan Abseil failed (see %s/out/build.log):\n%s" % (ctx.path("."), res.stderr))
    ctx.delete("src")
    ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

filegroup(
    name = "lib",
    srcs = glob(["out/lib/*"]),
)

exports_files(["out/build.log"])
""")

tsan_absl_repository = repository_rule(
    implementation = _impl,
    attrs = {"_build_sh": attr.label(default = "//third_party/absl_tsan:build.sh")},
)
