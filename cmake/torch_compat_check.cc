// Compiles common/torch_compat.h against the LibTorch the CMake build is
// configured with (Debian's 1.13 in CI, a wheel's 2.x on a CUDA host) and runs
// it: prints the version and whether CUDA is usable, and exits non-zero if a
// CPU generator does not reproduce or ZeroGradInPlace does not zero in place.
#include <torch/optim/adam.h>
#include <torch/types.h>

#include <cstdio>

#include "common/torch_compat.h"

static_assert(SOFTQ_TORCH_VERSION_AT_LEAST(1, 13),
              "softq needs LibTorch 1.13 or later");

int main() {
  torch::Generator a = softq::torch_compat::MakeCpuGenerator(7);
  torch::Generator b = softq::torch_compat::MakeCpuGenerator(7);
  const torch::Tensor x = at::normal(0.0, 1.0, {4}, a);
  const torch::Tensor y = at::normal(0.0, 1.0, {4}, b);
  // ZeroGradInPlace keeps the gradient tensor (same storage), zeroed.
  torch::Tensor w = torch::ones({3}, torch::requires_grad());
  torch::optim::Adam adam({w}, torch::optim::AdamOptions(0.1));
  (w * w).sum().backward();
  const void* grad_storage = w.grad().data_ptr();
  softq::torch_compat::ZeroGradInPlace(adam);
  if (!w.grad().defined() || w.grad().data_ptr() != grad_storage ||
      w.grad().abs().sum().item<float>() != 0) {
    return 1;
  }
  const bool cuda = softq::torch_compat::CudaAvailable();
  if (cuda) {
    const torch::Device device(torch::kCUDA);
    const torch::Tensor z = x.to(device, /*non_blocking=*/true) * 2;
    softq::torch_compat::Synchronize(device);
    if (!torch::allclose(z.cpu(), x * 2)) return 1;
  }
  softq::torch_compat::Synchronize(torch::kCPU);
  std::printf("torch_compat_check: LibTorch %s, CUDA %s\n",
              softq::torch_compat::CompiledVersion(),
              cuda ? "available" : "not available");
  return torch::equal(x, y) ? 0 : 1;
}
