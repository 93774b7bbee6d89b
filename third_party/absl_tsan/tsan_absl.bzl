"""Repository rule: Debian 12's Abseil synchronization libraries built with TSan.

Takes Debian's exact Abseil source -- the orig tarball and Debian patch set of the version
the installed libabsl-dev was built from, named and checked by sha256 in SHA256SUMS -- and
runs build.sh on it. The result, `@absl_tsan//:lib` (a folder of libabsl_*.so.20220623),
replaces Debian's copies at run time through LD_LIBRARY_PATH, set by //tests/faults:tsan_run
(`test:tsan --run_under`). Nothing depends on this repository outside --config=tsan, so a
default build never fetches or builds it.

The files come from Bazel's repository cache (by sha256; every fetch puts them there, so
later builds, in any output base, need no network) or a `--distdir` folder; failing those,
fetch_source.sh fetches them through apt (`apt-get source --download-only`, with this
machine's own apt sources and a private apt state). For a machine without the archive, run
`bash third_party/absl_tsan/fetch_source.sh DIR` where there is one and pass --distdir=DIR.
"""

def _sums(ctx):
    """[(name, sha256)] from SHA256SUMS."""
    sums = []
    for line in ctx.read(ctx.attr._sums).splitlines():
        words = [w for w in line.split(" ") if w]
        if words:
            sums.append((words[1], words[0]))
    return sums

def _get(ctx, files, fetched, allow_fail):
    """Each file into src/ by sha256: from the repository cache, --distdir or `fetched`."""
    ok = True
    for name, sha in files:
        res = ctx.download(
            url = "file://%s/%s" % (fetched, name),
            output = "src/" + name,
            sha256 = sha,
            allow_fail = allow_fail,
        )
        ok = ok and res.success
    return ok

def _impl(ctx):
    sums = _sums(ctx)
    version = [n for n, _ in sums if n.endswith(".dsc")][0][len("abseil_"):-len(".dsc")]
    installed = ctx.execute(["dpkg-query", "-W", "-f=${Version}", "libabsl-dev"]).stdout.strip()
    if installed != version:
        fail(("absl_tsan: the installed libabsl-dev is %s, third_party/absl_tsan/SHA256SUMS " +
              "names Debian's source %s: the TSan libraries must stand in for the installed ones " +
              "(update SHA256SUMS to the .dsc and tarballs of that version's source package, " +
              "as `apt-cache showsrc abseil` lists them)") %
             (installed or "not installed", version))
    orig = [n for n, _ in sums if n.endswith(".orig.tar.gz")][0]
    deb = [n for n, _ in sums if n.endswith(".debian.tar.xz")][0]
    files = [(n, s) for n, s in sums if n in (orig, deb)]
    fetched = ctx.path("apt")

    # First the repository cache and --distdir (Bazel warns that the file:// URL is not there
    # yet when neither has a file), then apt.
    if not _get(ctx, files, fetched, True):
        res = ctx.execute(["bash", ctx.path(ctx.attr._fetch_sh), fetched], timeout = 900, quiet = False)
        if res.return_code == 2:
            fail("absl_tsan: Debian's archive is out of reach and the Abseil source is not in " +
                 "Bazel's repository cache: fetch it where there is an archive " +
                 "(bash third_party/absl_tsan/fetch_source.sh DIR) and pass --distdir=DIR")
        if res.return_code != 0:
            fail("absl_tsan: fetching Abseil's source through apt failed (exit %d)" % res.return_code)
        _get(ctx, files, fetched, False)
        ctx.delete("apt")
    res = ctx.execute(
        ["bash", ctx.path(ctx.attr._build_sh), "src/" + orig, "src/" + deb, "out"],
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
    attrs = {
        "_build_sh": attr.label(default = "//third_party/absl_tsan:build.sh"),
        "_fetch_sh": attr.label(default = "//third_party/absl_tsan:fetch_source.sh"),
        "_sums": attr.label(default = "//third_party/absl_tsan:SHA256SUMS"),
    },
)
