# Imported dependencies of the CMake build, as INTERFACE targets:
#   softq_dep_torch       LibTorch (SOFTQ_LIBTORCH prefix, or find_package(Torch), or /usr)
#   softq_dep_absl        Abseil 20220623 (status, flags, synchronization, time, strings)
#   softq_dep_protobuf    Protobuf 3.21
#   softq_dep_grpc        gRPC 1.51 (grpc++, reflection)
# and the code generators SOFTQ_PROTOC, SOFTQ_GRPC_PLUGIN with SOFTQ_GENERATOR_ENV.
#
# gRPC, Protobuf and Abseil are found the way the Bazel wrapper finds them
# (third_party/system.BUILD): headers as system includes, plain -l link flags. Their CMake
# config files are not used on purpose: Debian's gRPCConfig.cmake wants the c-ares, re2,
# OpenSSL and zlib dev packages, none of which the code needs; plain flags work unchanged
# against /usr and against Debian packages unpacked with `dpkg -x` (SOFTQ_DEPS_PREFIX).

include_guard(GLOBAL)

set(SOFTQ_DEPS_PREFIX "" CACHE PATH
    "Root where Debian's gRPC/Protobuf/Abseil .debs were unpacked with dpkg -x (holds usr/); empty: the system")
set(SOFTQ_LIBTORCH "" CACHE PATH
    "LibTorch prefix (official archive or a wheel's torch/ folder); empty: find_package(Torch), else /usr")
option(SOFTQ_TORCH_CMAKE_CONFIG
    "Use LibTorch's TorchConfig.cmake when it has one; OFF: plain include and -l flags like the Bazel wrapper" ON)

set(_softq_multiarch "x86_64-linux-gnu")
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(_softq_multiarch "${CMAKE_LIBRARY_ARCHITECTURE}")
endif()

# --- gRPC, Protobuf, Abseil --------------------------------------------------------------
if(SOFTQ_DEPS_PREFIX)
  get_filename_component(_softq_deps_root "${SOFTQ_DEPS_PREFIX}" ABSOLUTE)
  set(SOFTQ_DEPS_INCLUDE "${_softq_deps_root}/usr/include")
  set(SOFTQ_DEPS_LIBDIR "${_softq_deps_root}/usr/lib/${_softq_multiarch}")
  set(SOFTQ_PROTOC "${_softq_deps_root}/usr/bin/protoc")
  set(SOFTQ_GRPC_PLUGIN "${_softq_deps_root}/usr/bin/grpc_cpp_plugin")
  # The unpacked generators find their shared libraries only through LD_LIBRARY_PATH.
  set(SOFTQ_GENERATOR_ENV "LD_LIBRARY_PATH=${SOFTQ_DEPS_LIBDIR}")
else()
  set(SOFTQ_DEPS_INCLUDE "")
  set(SOFTQ_DEPS_LIBDIR "")
  find_program(SOFTQ_PROTOC protoc REQUIRED)
  find_program(SOFTQ_GRPC_PLUGIN grpc_cpp_plugin REQUIRED)
  set(SOFTQ_GENERATOR_ENV "")
endif()

foreach(_f "${SOFTQ_PROTOC}" "${SOFTQ_GRPC_PLUGIN}")
  if(NOT EXISTS "${_f}")
    message(FATAL_ERROR "softq: ${_f} does not exist (SOFTQ_DEPS_PREFIX=${SOFTQ_DEPS_PREFIX})")
  endif()
endforeach()
if(SOFTQ_DEPS_PREFIX)
  foreach(_h grpcpp/grpcpp.h google/protobuf/message.h absl/status/status.h
)
    if(NOT EXISTS "${SOFTQ_DEPS_INCLUDE}/${_h}")
      message(FATAL_ERROR "softq: SOFTQ_DEPS_PREFIX has no ${SOFTQ_DEPS_INCLUDE}/${_h}")
    endif()
  endforeach()
endif()

function(_softq_system_lib name)
  add_library(${name} INTERFACE)
  if(SOFTQ_DEPS_PREFIX)
    target_include_directories(${name} SYSTEM INTERFACE "${SOFTQ_DEPS_INCLUDE}")
    # -rpath-link: the unpacked libraries' own dependencies (libre2, libcares, ...) live
    # there too; rpath: so the binaries run without LD_LIBRARY_PATH. --disable-new-dtags
    # writes DT_RPATH, which (unlike DT_RUNPATH) also serves those indirect dependencies.
    target_link_options(${name} INTERFACE "-L${SOFTQ_DEPS_LIBDIR}"
                        "-Wl,-rpath-link,${SOFTQ_DEPS_LIBDIR}" "-Wl,-rpath,${SOFTQ_DEPS_LIBDIR}"
                        "-Wl,--disable-new-dtags")
  endif()
  target_link_libraries(${name} INTERFACE ${ARGN})
endfunction()

# The same pieces as third_party/system.BUILD's :absl (no umbrella libabsl_flags.so).
set(_softq_absl_libs
    absl_flags_parse absl_flags_usage absl_flags_usage_internal absl_flags_internal
    absl_flags_marshalling absl_flags_reflection absl_flags_config absl_flags_program_name
    absl_flags_private_handle_accessor absl_flags_commandlineflag
    absl_flags_commandlineflag_internal absl_raw_hash_set absl_hash absl_city
    absl_low_level_hash absl_status absl_statusor absl_cord absl_cord_internal
    absl_cordz_info absl_cordz_functions absl_cordz_handle absl_synchronization
    absl_graphcycles_internal absl_time absl_time_zone absl_civil_time
    absl_str_format_internal absl_strings absl_strings_internal absl_int128 absl_symbolize
    absl_stacktrace absl_debugging_internal absl_malloc_internal absl_base
    absl_spinlock_wait absl_raw_logging_internal absl_log_severity absl_throw_delegate
    absl_strerror absl_bad_optional_access absl_bad_variant_access absl_exponential_biased)
find_package(Threads REQUIRED)
_softq_system_lib(softq_dep_absl ${_softq_absl_libs} Threads::Threads)
_softq_system_lib(softq_dep_protobuf protobuf)
_softq_system_lib(softq_dep_grpc grpc++ grpc++_reflection grpc gpr softq_dep_absl
                  softq_dep_protobuf)

# --- GoogleTest (optional: tests/gpu_update_test) ------------------------------------------------
# libgtest-dev's static libraries, from SOFTQ_DEPS_PREFIX (fetch_debs.sh carries the package)
# or the system. Not found: softq_dep_gtest is not defined and the test is not built.
if(SOFTQ_DEPS_PREFIX)
  set(_softq_gtest_hints HINTS "${SOFTQ_DEPS_LIBDIR}" NO_DEFAULT_PATH)
endif()
find_library(SOFTQ_GTEST_LIB NAMES libgtest.a gtest ${_softq_gtest_hints})
find_library(SOFTQ_GTEST_MAIN_LIB NAMES libgtest_main.a gtest_main ${_softq_gtest_hints})
if(SOFTQ_GTEST_LIB AND SOFTQ_GTEST_MAIN_LIB)
  _softq_system_lib(softq_dep_gtest "${SOFTQ_GTEST_MAIN_LIB}" "${SOFTQ_GTEST_LIB}"
                    Threads::Threads)
  message(STATUS "softq: GoogleTest ${SOFTQ_GTEST_LIB}: building tests/gpu_update_test")
else()
  message(STATUS "softq: no GoogleTest (libgtest-dev): tests/gpu_update_test not built")
endif()

# --- LibTorch ----------------------------------------------------------------------------------
add_library(softq_dep_torch INTERFACE)
set(SOFTQ_TORCH_HOW "")
if(SOFTQ_TORCH_CMAKE_CONFIG)
  if(SOFTQ_LIBTORCH)
    find_package(Torch CONFIG QUIET NO_DEFAULT_PATH
                 PATHS "${SOFTQ_LIBTORCH}" "${SOFTQ_LIBTORCH}/share/cmake/Torch")
  else()
    find_package(Torch CONFIG QUIET)
  endif()
  if(Torch_FOUND)
    target_link_libraries(softq_dep_torch INTERFACE ${TORCH_LIBRARIES})
    set(_softq_torch_inc ${TORCH_INCLUDE_DIRS})
    set(SOFTQ_TORCH_HOW "TorchConfig.cmake in ${Torch_DIR}")
    if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
      target_compile_definitions(softq_dep_torch INTERFACE SOFTQ_WITH_CUDA)
      set(_softq_torch_cuda ON)
    endif()
  endif()
endif()
if(NOT SOFTQ_TORCH_HOW)
  # Plain flags, exactly like third_party/libtorch.bzl.
  if(NOT SOFTQ_LIBTORCH OR SOFTQ_LIBTORCH STREQUAL "/usr")
    set(_softq_torch_inc "/usr/include" "/usr/include/torch/csrc/api/include")
    set(_softq_torch_lib "/usr/lib/${_softq_multiarch}")
  else()
    set(_softq_torch_inc "${SOFTQ_LIBTORCH}/include" "${SOFTQ_LIBTORCH}/include/torch/csrc/api/include")
    set(_softq_torch_lib "${SOFTQ_LIBTORCH}/lib")
  endif()
  if(NOT EXISTS "${_softq_torch_lib}/libtorch_cpu.so")
    message(FATAL_ERROR "softq: SOFTQ_LIBTORCH=${SOFTQ_LIBTORCH}: no libtorch_cpu.so in ${_softq_torch_lib}")
  endif()
  set(_softq_torch_libs torch torch_cpu c10)
  if(EXISTS "${_softq_torch_lib}/libtorch_cuda.so")
    list(APPEND _softq_torch_libs torch_cuda c10_cuda)
    target_compile_definitions(softq_dep_torch INTERFACE SOFTQ_WITH_CUDA)
    set(_softq_torch_cuda ON)
  endif()
  list(TRANSFORM _softq_torch_libs PREPEND "-l")
  target_include_directories(softq_dep_torch SYSTEM INTERFACE ${_softq_torch_inc})
  # --no-as-needed: libtorch_cuda registers the CUDA backend from static initializers, and
  # nothing references it directly. --allow-shlib-undefined: a wheel's libraries find their
  # own dependencies (cuDNN, cuBLAS from nvidia-* wheels) through $ORIGIN rpaths at run time.
  target_link_options(softq_dep_torch INTERFACE "-Wl,--allow-shlib-undefined")
  if(NOT _softq_torch_lib STREQUAL "/usr/lib/${_softq_multiarch}")
    # Not for the system folder: an rpath to it would shadow SOFTQ_DEPS_PREFIX's libraries.
    target_link_options(softq_dep_torch INTERFACE "-L${_softq_torch_lib}"
                        "-Wl,-rpath,${_softq_torch_lib}")
  endif()
  target_link_libraries(softq_dep_torch INTERFACE "-Wl,--no-as-needed" ${_softq_torch_libs}
                        "-Wl,--as-needed" Threads::Threads)
  set(SOFTQ_TORCH_HOW "plain flags: ${_softq_torch_lib} (${_softq_torch_libs})")
endif()
message(STATUS "softq: LibTorch from ${SOFTQ_TORCH_HOW}")

# --- CUDA graphs (learner/cuda_graph_update.cc) ------------------------------------------------
# Capturing the update needs, besides a CUDA LibTorch, the CUDA runtime's headers (ATen/cuda
# and c10/cuda include cuda_runtime_api.h and cuda.h; nothing links libcudart directly): from
# the CUDA toolkit, or from the nvidia-* wheels installed beside torch/.
set(SOFTQ_CUDA_GRAPHS AUTO CACHE STRING
    "CUDA graph capture of the update: AUTO (when LibTorch has CUDA and CUDA's headers are found), ON, OFF")
set(_softq_graphs OFF)
if(_softq_torch_cuda AND NOT SOFTQ_CUDA_GRAPHS STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  set(_softq_cuda_hints ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  if(SOFTQ_LIBTORCH)
    file(GLOB _softq_wheel_cuda_inc "${SOFTQ_LIBTORCH}/../nvidia/*/include")
    list(APPEND _softq_cuda_hints ${_softq_wheel_cuda_inc})
  endif()
  find_path(SOFTQ_CUDA_RUNTIME_INCLUDE cuda_runtime_api.h HINTS ${_softq_cuda_hints})
  find_path(SOFTQ_CUDA_DRIVER_INCLUDE cuda.h HINTS ${_softq_cuda_hints})
  if(SOFTQ_CUDA_RUNTIME_INCLUDE AND SOFTQ_CUDA_DRIVER_INCLUDE)
    set(_softq_graphs ON)
    target_include_directories(softq_dep_torch SYSTEM INTERFACE
                               "${SOFTQ_CUDA_RUNTIME_INCLUDE}" "${SOFTQ_CUDA_DRIVER_INCLUDE}")
    target_compile_definitions(softq_dep_torch INTERFACE SOFTQ_CUDA_GRAPHS=1)
  endif()
endif()
if(SOFTQ_CUDA_GRAPHS STREQUAL "ON" AND NOT _softq_graphs)
  message(FATAL_ERROR "softq: SOFTQ_CUDA_GRAPHS=ON, but LibTorch has no CUDA or CUDA's headers "
                      "(cuda_runtime_api.h, cuda.h) were not found")
endif()
message(STATUS "softq: CUDA graphs ${_softq_graphs} (SOFTQ_CUDA_GRAPHS=${SOFTQ_CUDA_GRAPHS})")

# --- Fused CUDA kernels (learner/kernel_launch.cu) ---------------------------------------------
# Compiled by nvcc, with the CUDA runtime linked statically (as NCCL does: kernels launch on
# LibTorch's streams, which CUDA graphs capture). They need what the CUDA graph code needs
# (the headers, a CUDA LibTorch) and a working CUDA compiler; check_language tries it first,
# so a host whose nvcc cannot build gets the ATen path, not a failed configure.
set(SOFTQ_CUDA_KERNELS AUTO CACHE STRING
    "Fused CUDA kernels: AUTO (with CUDA graphs, when a CUDA compiler works), ON, OFF")
set(SOFTQ_CUDA_KERNELS_ON OFF)
if(_softq_graphs AND NOT SOFTQ_CUDA_KERNELS STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # Hopper (H100, H200), with its PTX for newer GPUs to compile at load time. Not
      # "native": that fails the configure when no GPU is visible. -DCMAKE_CUDA_ARCHITECTURES=
      # for another GPU.
      set(CMAKE_CUDA_ARCHITECTURES 90)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(SOFTQ_CUDA_KERNELS_ON ON)
  endif()
endif()
if(SOFTQ_CUDA_KERNELS STREQUAL "ON" AND NOT SOFTQ_CUDA_KERNELS_ON)
  message(FATAL_ERROR "softq: SOFTQ_CUDA_KERNELS=ON, but CUDA graphs are off or no CUDA "
                      "compiler works")
endif()
message(STATUS "softq: fused CUDA kernels ${SOFTQ_CUDA_KERNELS_ON} (SOFTQ_CUDA_KERNELS="
               "${SOFTQ_CUDA_KERNELS}; CUDA compiler ${CMAKE_CUDA_COMPILER_VERSION}; "
               "architectures ${CMAKE_CUDA_ARCHITECTURES})")

# The C++ standard: 17 (the project's), or 20 when LibTorch's headers demand it (2.x releases
# from about 2.12 on #error in ATen/ATen.h below C++20). The sources compile as either.
set(SOFTQ_CXX_STANDARD "" CACHE STRING "C++ standard; empty: 17, or 20 if LibTorch needs it")
set(CMAKE_CXX_STANDARD 17)
if(SOFTQ_CXX_STANDARD)
  set(CMAKE_CXX_STANDARD ${SOFTQ_CXX_STANDARD})
else()
  foreach(_dir ${_softq_torch_inc})
    if(EXISTS "${_dir}/ATen/ATen.h")
      file(STRINGS "${_dir}/ATen/ATen.h" _softq_guard REGEX "__cplusplus < 20[2-9][0-9]+L")
      if(_softq_guard)
        set(CMAKE_CXX_STANDARD 20)
      endif()
    endif()
  endforeach()
endif()
message(STATUS "softq: C++${CMAKE_CXX_STANDARD}")
if(SOFTQ_DEPS_PREFIX)
  message(STATUS "softq: gRPC/Protobuf/Abseil from ${SOFTQ_DEPS_INCLUDE}, ${SOFTQ_DEPS_LIBDIR}")
else()
  message(STATUS "softq: gRPC/Protobuf/Abseil from the system; protoc ${SOFTQ_PROTOC}")
endif()
