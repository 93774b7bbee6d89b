#include "common/torch_threads.h"

#include <dlfcn.h>
#include <malloc.h>

#include <cstring>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace softq {
namespace {

// OpenBLAS older than the CPU takes it for a Prescott (SSE3 kernels); OPENBLAS_CORETYPE,
// read when the library loads, is the remedy (deploy/openblas_env.sh).
std::string OpenBlasCoreWarning(const char* core) {
#if defined(__x86_64__)
  if (core != nullptr && std::strcmp(core, "Prescott") == 0 && __builtin_cpu_supports("avx2")) {
    return "; OpenBLAS runs its Prescott (SSE3) kernels on this AVX2 CPU, about 3x slower: set "
           "OPENBLAS_CORETYPE (deploy/openblas_env.sh picks it)";
  }
#endif
  (void)core;
  return "";
}

}  // namespace

std::string ConfigureTorchThreads(int torch_threads, int blas_threads) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  torch::set_num_threads(torch_threads);
  std::string blas = "reference or unknown (install libopenblas0-pthread: ~27x faster)";
  std::string warning;
  using SetThreads = void (*)(int);
  using GetText = char* (*)();
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(blas_threads);
    auto config = reinterpret_cast<GetText>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
    auto core = reinterpret_cast<GetText>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
    blas = absl::StrCat("OpenBLAS (", config ? config() : "?", ")");
    warning = OpenBlasCoreWarning(core ? core() : nullptr);
  } else if (at::hasMKL()) {  // a PyTorch wheel's LibTorch: MKL linked in, on torch's threads
    blas = "MKL (in LibTorch)";
    blas_threads = torch::get_num_threads();
  } else {
    blas_threads = 0;
  }
  return absl::StrCat("BLAS ", blas, ", torch threads ", torch::get_num_threads(),
                      ", BLAS threads ", blas_threads, warning);
}

}  // namespace softq
