// Run-time settings for processes that run LibTorch. Debian's LibTorch calls
// whatever libblas.so.3 resolves to (OpenBLAS once installed), and OpenBLAS's
// threads fight LibTorch's on small matrices, so each binary sets both
// deliberately and prints what it runs with. It also keeps freed tensor memory
// in the process: glibc's default returns every block over 128 KiB to the
// kernel, and re-faulting those pages cost ~15% of an SQL update. Call from
// main before starting threads.
#ifndef SOFTQ_COMMON_TORCH_THREADS_H_
#define SOFTQ_COMMON_TORCH_THREADS_H_

#include <string>

namespace softq {

// Debian 12's OpenBLAS (0.3.21) does not know CPUs newer than itself (Sapphire
// Rapids, for one) and runs its Prescott (SSE3) kernels on them: an SQL update
// at batch 64 ran 56/s instead of 190/s. It reads OPENBLAS_CORETYPE only as it
// loads, so the remedy is a new process image: when OpenBLAS runs Prescott
// kernels, OPENBLAS_CORETYPE is unset and this CPU has better ones, this sets
// it and re-executes the binary in place (same PID, same argv). Returns when
// there is nothing to do, or when exec fails (ConfigureTorchThreads' line then
// warns). Call first in main: before any thread starts and before any output.
void RestartWithOpenBlasKernelsForThisCpu(char** argv);

// The CPU features OpenBLAS's x86-64 kernel sets need.
struct CpuFeatures {
  bool avx2 = false, fma = false;
  bool avx512f = false, avx512cd = false, avx512bw = false, avx512dq = false,
       avx512vl = false;
};

// The newest OpenBLAS kernel set such a CPU runs, as OPENBLAS_CORETYPE names
// it: "SkylakeX" with AVX-512 F/CD/BW/DQ/VL, "Haswell" with AVX2 and FMA (what
// OpenBLAS itself picks for the CPUs it knows), "" otherwise.
std::string OpenBlasCoreTypeFor(const CpuFeatures& cpu);

// Sets LibTorch's intra-op threads and, when the BLAS is OpenBLAS, its threads,
// and the allocator settings above. Returns a one-line description: "BLAS
// OpenBLAS (...), torch threads N, BLAS threads M", and a warning after it when
// OpenBLAS runs kernels far older than the CPU.
std::string ConfigureTorchThreads(int torch_threads, int blas_threads = 1);

}  // namespace softq

#endif  // SOFTQ_COMMON_TORCH_THREADS_H_
