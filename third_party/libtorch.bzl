"""Repository rule wrapping a LibTorch installation.

The prefix comes from the environment variable SOFTQ_LIBTORCH (pass it with
`--repo_env=SOFTQ_LIBTORCH=/opt/libtorch`), defaulting to Debian's `/usr`. A prefix other
than /usr is laid out like the official LibTorch archives and the PyTorch wheel's `torch/`
folder: `include/`, `include/torch/csrc/api/include/`, `lib/`. A CUDA build is detected by
the presence of libtorch_cuda.so and linked in whole.
"""

def _libtorch_impl(ctx):
    prefix = ctx.os.environ.get("SOFTQ_LIBTORCH", "/usr").rstrip("/") or "/usr"
    if prefix == "/usr":
        libdir = "/usr/lib/x86_64-linux-gnu"
        ctx.symlink("/usr/include/torch/csrc/api/include", "api")
        includes = ["api"]
        hdrs = 'glob(["api/**"])'
    else:
        libdir = prefix + "/lib"
        ctx.symlink(prefix + "/include", "include")
        includes = ["include", "include/torch/csrc/api/include"]
        hdrs = 'glob(["include/**"])'
    if not ctx.path(libdir + "/libtorch_cpu.so").exists:
        fail("SOFTQ_LIBTORCH=%s: no libtorch_cpu.so in %s" % (prefix, libdir))
    libs = ["-ltorch", "-ltorch_cpu", "-lc10"]
    cuda = ctx.path(libdir + "/libtorch_cuda.so").exists
    if cuda:
        libs += ["-ltorch_cuda", "-lc10_cuda"]
    linkopts = ["-L" + libdir, "-Wl,-rpath," + libdir, "-Wl,--no-as-needed"] + libs + ["-Wl,--as-needed"]
    ctx.file("BUILD", """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "libtorch",
    hdrs = {hdrs},
    includes = {includes},
    linkopts = {linkopts},
    defines = {defines},
)
""".format(
        hdrs = hdrs,
        includes = repr(includes),
        linkopts = repr(linkopts),
        defines = repr(["SOFTQ_WITH_CUDA"] if cuda else []),
    ))

libtorch_repository = repository_rule(
    implementation = _libtorch_impl,
    environ = ["SOFTQ_LIBTORCH"],
    local = True,
)
