"""Repository rule wrapping a LibTorch installation.

The prefix comes from the environment variable SOFTQ_LIBTORCH (pass it with
`--repo_env=SOFTQ_LIBTORCH=/opt/libtorch`), defaulting to Debian's `/usr`. A prefix other
than /usr is laid out like the official LibTorch archives and the PyTorch wheel's `torch/`
folder: `include/`, `include/torch/csrc/api/include/`, `lib/`. A CUDA build is detected by
the presence of libtorch_cuda.so and linked in whole.

With a CUDA LibTorch, the CUDA graph capture of the learner's update
(learner/cuda_graph_update.cc, SOFTQ_CUDA_GRAPHS) is compiled in when CUDA's runtime headers
(cuda_runtime_api.h and cuda.h) are found: in SOFTQ_CUDA_INCLUDE (a folder; "none" turns
the graphs off), else /usr/local/cuda/include, else a wheel's nvidia/*/include beside the
prefix. (The fused CUDA kernels need nvcc: the CMake build only.)
"""

def _cuda_include(ctx, prefix):
    """The folder holding CUDA's runtime headers, or None."""
    wanted = ctx.os.environ.get("SOFTQ_CUDA_INCLUDE", "")
    if wanted == "none":
        return None
    candidates = [wanted] if wanted else ["/usr/local/cuda/include"]
    nvidia = ctx.path(prefix + "/../nvidia")
    if not wanted and nvidia.exists:
        candidates += [str(d) + "/include" for d in nvidia.readdir()]
    for c in candidates:
        if ctx.path(c + "/cuda_runtime_api.h").exists and ctx.path(c + "/cuda.h").exists:
            return c
    if wanted:
        fail("SOFTQ_CUDA_INCLUDE=%s: no cuda_runtime_api.h and cuda.h there" % wanted)
    return None

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
    defines = []
    if cuda:
        libs += ["-ltorch_cuda", "-lc10_cuda"]
        defines.append("SOFTQ_WITH_CUDA")
        cuda_include = _cuda_include(ctx, prefix)
        if cuda_include:
            ctx.symlink(cuda_include, "cuda_include")
            includes.append("cuda_include")
            hdrs = hdrs[:-2] + ', "cuda_include/**"])'
            defines.append("SOFTQ_CUDA_GRAPHS=1")
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
        defines = repr(defines),
    ))

libtorch_repository = repository_rule(
    implementation = _libtorch_impl,
    environ = ["SOFTQ_LIBTORCH", "SOFTQ_CUDA_INCLUDE"],
    local = True,
)
