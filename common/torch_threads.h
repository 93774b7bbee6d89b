// Run-time settings for processes that run LibTorch. Debian's LibTorch calls whatever
// libblas.so.3 resolves to (OpenBLAS once installed), and OpenBLAS's threads fight LibTorch's
// on small matrices, so each binary sets both deliberately and prints what it runs with.
// It also keeps freed tensor memory in the process: glibc's default returns every block over
// 128 KiB to the kernel, and re-faulting those pages cost ~15% of an SQL update.
// Call from main before starting threads.
#ifndef SOFTQ_COMMON_TORCH_THREADS_H_
#define SOFTQ_COMMON_TORCH_THREADS_H_

#include <string>

namespace softq {

// Sets LibTorch's intra-op threads and, when the BLAS is OpenBLAS, its threads, and the
// allocator settings above. Returns a one-line description:
// "BLAS OpenBLAS (...), torch threads N, BLAS threads M", and a warning after it when
// OpenBLAS runs kernels far older than the CPU.
std::string ConfigureTorchThreads(int torch_threads, int blas_threads = 1);

}  // namespace softq

#endif  // SOFTQ_COMMON_TORCH_THREADS_H_
