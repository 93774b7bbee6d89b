#include "common/torch_threads.h"

#include <dlfcn.h>
#include <malloc.h>
#include <torch/types.h>
#include <torch/utils.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace softq {
namespace {

using GetText = char* (*)();

// The kernel set the process's OpenBLAS runs ("Prescott", "SkylakeX", ...);
// nullptr when the BLAS is not OpenBLAS.
const char* OpenBlasCoreName() {
  auto core =
      reinterpret_cast<GetText>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  return core != nullptr ? core() : nullptr;
}

CpuFeatures ThisCpuFeatures() {
  CpuFeatures cpu;
#if defined(__x86_64__)
  cpu.avx2 = __builtin_cpu_supports("avx2");
  cpu.fma = __builtin_cpu_supports("fma");
  cpu.avx512f = __builtin_cpu_supports("avx512f");
  cpu.avx512cd = __builtin_cpu_supports("avx512cd");
  cpu.avx512bw = __builtin_cpu_supports("avx512bw");
  cpu.avx512dq = __builtin_cpu_supports("avx512dq");
  cpu.avx512vl = __builtin_cpu_supports("avx512vl");
#endif
  return cpu;
}

// OpenBLAS older than the CPU runs Prescott kernels; names the better set, or
// "".
std::string BetterOpenBlasCoreType() {
  const char* core = OpenBlasCoreName();
  if (core == nullptr || std::strcmp(core, "Prescott") != 0) return "";
  return OpenBlasCoreTypeFor(ThisCpuFeatures());
}

}  // namespace

std::string OpenBlasCoreTypeFor(const CpuFeatures& cpu) {
  if (cpu.avx512f && cpu.avx512cd && cpu.avx512bw && cpu.avx512dq &&
      cpu.avx512vl) {
    return "SkylakeX";
  }
  if (cpu.avx2 && cpu.fma) return "Haswell";
  return "";
}

void RestartWithOpenBlasKernelsForThisCpu(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr)
    return;  // chosen, or already restarted
  const std::string core_type = BetterOpenBlasCoreType();
  if (core_type.empty()) return;
  setenv("OPENBLAS_CORETYPE", core_type.c_str(), /*overwrite=*/1);
  execv("/proc/self/exe", argv);  // returns only on failure
}

std::string ConfigureTorchThreads(int torch_threads, int blas_threads) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  torch::set_num_threads(torch_threads);
  std::string blas =
      "reference or unknown (install libopenblas0-pthread: much faster)";
  std::string warning;
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(
          dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(blas_threads);
    auto config =
        reinterpret_cast<GetText>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
    blas = absl::StrCat("OpenBLAS (", config ? config() : "?", ")");
    const std::string better = BetterOpenBlasCoreType();
    if (!better.empty()) {
      warning = absl::StrCat(
          "; OpenBLAS runs its Prescott (SSE3) kernels on a CPU that has ",
          better, "'s, about 3x slower: set OPENBLAS_CORETYPE=", better);
    }
  } else if (at::hasMKL()) {  // a PyTorch wheel's LibTorch: MKL linked in, on
                              // torch's threads
    blas = "MKL (in LibTorch)";
    blas_threads = torch::get_num_threads();
  } else {
    blas_threads = 0;
  }
  return absl::StrCat("BLAS ", blas, ", torch threads ",
                      torch::get_num_threads(), ", BLAS threads ", blas_threads,
                      warning);
}

}  // namespace softq
