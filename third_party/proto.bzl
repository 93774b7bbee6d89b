"""softq_proto: C++ code generation with the system protoc and grpc_cpp_plugin.

Bazel's proto rules want @com_google_protobuf, which cannot be fetched offline; a genrule
over /usr/bin/protoc does the same job. One call per .proto file.
"""

def softq_proto(name, src, deps = [], grpc = False):
    base = src[:-len(".proto")]
    outs = [base + ".pb.h", base + ".pb.cc"]
    if grpc:
        outs += [base + ".grpc.pb.h", base + ".grpc.pb.cc"]
    dep_srcs = [d + "_srcs" for d in deps]
    cmd = "/usr/bin/protoc -I. --cpp_out=$(GENDIR) "
    if grpc:
        cmd += "--plugin=protoc-gen-grpc=/usr/bin/grpc_cpp_plugin --grpc_out=$(GENDIR) "
    cmd += "$(location %s)" % src
    native.filegroup(name = name + "_srcs", srcs = [src] + dep_srcs)
    native.genrule(
        name = name + "_gen",
        srcs = [src] + dep_srcs,
        outs = outs,
        cmd = cmd,
    )
    native.cc_library(
        name = name,
        srcs = [o for o in outs if o.endswith(".cc")],
        hdrs = [o for o in outs if o.endswith(".h")],
        deps = deps + ["@system//:protobuf"] + (["@system//:grpc"] if grpc else []),
    )
