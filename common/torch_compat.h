// The LibTorch APIs softq uses whose spelling differs between Debian's
// LibTorch 1.13 and the 2.x inside PyTorch wheels (the CUDA build), in one
// place. Code that needs one of them includes this header instead of reaching
// for version checks of its own.
//
// Checked by: the Bazel build against 1.13 (Debian) with -Wall -Wextra
// -Werror; deploy/gpu/check_libtorch_api.sh, which compiles every LibTorch
// source against Debian's 2.6 (C++17) and 2.14 (C++20) headers in the test
// command; cmake/torch_compat_check.cc, built and run against whatever
// LibTorch a CMake build is configured with (a PyTorch wheel's on CUDA hosts).
//
// Spelled the same in 1.13 and 2.x for the calls softq makes, so not here:
// Adam/AdamOptions and step, torch::autograd::grad, at::normal/torch::randint
// with a Generator, torch::jit::Module::define/save,
// Tensor::pin_memory/to(device, non_blocking). Optimizer::zero_grad() compiles
// in both but changed meaning: see ZeroGradInPlace. LibTorch 2.x from
// about 2.12 on #errors below C++20 in ATen/ATen.h: the CMake build then
// switches to C++20 (cmake/SoftqDeps.cmake); the sources build warning-free as
// C++20 against 1.13.
#ifndef SOFTQ_COMMON_TORCH_COMPAT_H_
#define SOFTQ_COMMON_TORCH_COMPAT_H_

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <torch/version.h>

#include <cstdint>

// True when the LibTorch being compiled against is at least major.minor.
#define SOFTQ_TORCH_VERSION_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||                \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace softq {
namespace torch_compat {

// "1.13.0", "2.11.0": the LibTorch the binary was compiled against (for
// start-up lines).
inline const char* CompiledVersion() { return TORCH_VERSION; }

// A CPU random generator seeded with `seed`. 1.13 and 2.x both spell it
// at::make_generator<at::CPUGeneratorImpl>; this is the only place that
// includes the ATen-internal header for it. Not thread-safe: guard it like any
// torch::Generator.
inline torch::Generator MakeCpuGenerator(uint64_t seed) {
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

// Blocks until all work queued on `device` has finished; a no-op for the CPU
// (where torch::cuda::synchronize would throw on a LibTorch without CUDA). For
// benchmarks: timing asynchronous CUDA work without it measures only the
// launch.
inline void Synchronize(const torch::Device& device) {
  if (device.is_cuda())
    torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

// Zeroes the gradients of `optimizer`'s parameters in place. The same call
// differs: 1.13's Optimizer::zero_grad() zeroes in place; 2.x's zero_grad(bool
// set_to_none = true) drops them (undefined until the next backward). In place
// keeps each gradient at a fixed address, which CUDA graph capture of the
// update needs, and behaves the same on both.
inline void ZeroGradInPlace(torch::optim::Optimizer& optimizer) {
#if SOFTQ_TORCH_VERSION_AT_LEAST(2, 0)
  optimizer.zero_grad(/*set_to_none=*/false);
#else
  optimizer.zero_grad();
#endif
}

// Whether this LibTorch can run CUDA work at all (compiled with CUDA and a
// device present).
inline bool CudaAvailable() { return torch::cuda::is_available(); }

}  // namespace torch_compat
}  // namespace softq

#endif  // SOFTQ_COMMON_TORCH_COMPAT_H_
