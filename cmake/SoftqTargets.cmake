# Target helpers for the CMake build: the project's own sources get -Wall -Wextra -Werror
# (like .bazelrc's per_file_copt); generated and third-party code does not.
include_guard(GLOBAL)

set(SOFTQ_WARNINGS -Wall -Wextra -Werror)

# softq_proto_library(name file.proto...): protoc + grpc_cpp_plugin into build/gen/proto/,
# included as "proto/x.pb.h" like Bazel's genrule output. gRPC stubs for every file (files
# without services get an empty stub, harmless).
function(softq_proto_library name)
  set(gen "${CMAKE_BINARY_DIR}/gen")
  set(srcs)
  foreach(proto ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" base "${proto}")
    set(outs "${gen}/${base}.pb.cc" "${gen}/${base}.pb.h"
             "${gen}/${base}.grpc.pb.cc" "${gen}/${base}.grpc.pb.h")
    set(protoc_cmd "${SOFTQ_PROTOC}")
    if(SOFTQ_GENERATOR_ENV)
      set(protoc_cmd ${CMAKE_COMMAND} -E env "${SOFTQ_GENERATOR_ENV}" "${SOFTQ_PROTOC}")
    endif()
    set(include_flags "-I${CMAKE_SOURCE_DIR}")
    if(SOFTQ_DEPS_INCLUDE)
      list(APPEND include_flags "-I${SOFTQ_DEPS_INCLUDE}")
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${CMAKE_COMMAND} -E make_directory "${gen}"
      COMMAND ${protoc_cmd} ${include_flags} "--cpp_out=${gen}" "--grpc_out=${gen}"
              "--plugin=protoc-gen-grpc=${SOFTQ_GRPC_PLUGIN}" "${proto}"
      DEPENDS "${CMAKE_SOURCE_DIR}/${proto}"
      WORKING_DIRECTORY "${CMAKE_SOURCE_DIR}"
      COMMENT "protoc ${proto}"
      VERBATIM)
    list(APPEND srcs "${gen}/${base}.pb.cc" "${gen}/${base}.grpc.pb.cc")
  endforeach()
  add_library(${name} STATIC ${srcs})
  target_include_directories(${name} PUBLIC "${gen}")
  target_link_libraries(${name} PUBLIC softq_dep_grpc softq_dep_protobuf)
endfunction()

function(_softq_own_sources target uses_torch)
  target_compile_options(${target} PRIVATE ${SOFTQ_WARNINGS})
  target_include_directories(${target} PRIVATE "${CMAKE_SOURCE_DIR}")
  # Every LibTorch user shares one precompiled <torch/torch.h>: parsing it is most of each
  # such translation unit's cost (toolchain notes).
  if(SOFTQ_PCH AND uses_torch)
    if(NOT TARGET softq_torch_pch)
      set(anchor "${CMAKE_BINARY_DIR}/softq_torch_pch.cc")
      file(CONFIGURE OUTPUT "${anchor}" CONTENT "// Anchor for the shared precompiled <torch/torch.h>.\n")
      add_library(softq_torch_pch STATIC "${anchor}")
      target_link_libraries(softq_torch_pch PUBLIC softq_dep_torch softq_dep_absl)
      target_compile_options(softq_torch_pch PRIVATE ${SOFTQ_WARNINGS})
      target_precompile_headers(softq_torch_pch PRIVATE <torch/torch.h>)
    endif()
    target_precompile_headers(${target} REUSE_FROM softq_torch_pch)
  endif()
  # Loading the precompiled header is itself most of a small source's time (about 8 s on a
  # slow 2-core VM): a unity build loads it once per 8 sources.
  if(SOFTQ_UNITY AND uses_torch)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
  endif()
endfunction()

# softq_library(name [TORCH] SRCS a.cc... DEPS targets...): a static library of own sources;
# TORCH: its sources include LibTorch (they reuse the precompiled header).
function(softq_library name)
  cmake_parse_arguments(arg "TORCH" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${arg_SRCS})
  target_link_libraries(${name} PUBLIC ${arg_DEPS})
  _softq_own_sources(${name} ${arg_TORCH})
endfunction()

# softq_binary(name dir [TORCH] SRCS a.cc... DEPS targets...): an executable at
# build/<dir>/<name>.
function(softq_binary name dir)
  cmake_parse_arguments(arg "TORCH" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${arg_SRCS})
  target_link_libraries(${name} PRIVATE ${arg_DEPS})
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/${dir}")
  _softq_own_sources(${name} ${arg_TORCH})
endfunction()
