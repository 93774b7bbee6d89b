#include "common/torch_threads.h"

#include <dlfcn.h>
#include <malloc.h>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"

namespace softq {

std::string ConfigureTorchThreads(int torch_threads, int blas_threads) {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  torch::set_num_threads(torch_threads);
  std::string blas = "reference or unknown (install libopenblas0-pthread: ~27x faster)";
  using SetThreads = void (*)(int);
  using GetConfig = char* (*)();
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(blas_threads);
    auto config = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
    blas = absl::StrCat("OpenBLAS (", config ? config() : "?", ")");
  } else if (at::hasMKL()) {  // a PyTorch wheel's LibTorch: MKL linked in, on torch's threads
    blas = "MKL (in LibTorch)";
    blas_threads = torch::get_num_threads();
  } else {
    blas_threads = 0;
  }
  return absl::StrCat("BLAS ", blas, ", torch threads ", torch::get_num_threads(),
                      ", BLAS threads ", blas_threads);
}

}  // namespace softq
