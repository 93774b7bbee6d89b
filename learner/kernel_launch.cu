// The project's fused CUDA kernels, each one launch where the ATen path takes
// several:
//   the adaptive-kernel Stein direction, one thread block per state: the phases
//   of
//     learner/stein_block.h with a barrier between them, the state's distances
//     and pulled scores in shared memory (about fourteen operations);
//   the critic's soft TD target and loss gradient, one thread per transition
//     (learner/soft_td_block.h; about nine operations with the loss's backward
//     pass).
#include <cuda_runtime.h>

#include "learner/kernel_launch.h"
#include "learner/soft_td_block.h"
#include "learner/stein_block.h"

namespace softq::stein {
namespace {

__global__ void SteinDirectionKernel(LaunchArgs args) {
  extern __shared__ float scratch[];
  const BlockArgs a = StateArgs(args, static_cast<int>(blockIdx.x));
  const BlockScratch s{scratch, scratch + a.kx * a.ky,
                       scratch + a.kx * a.ky + a.kx * a.d};
  for (int t = threadIdx.x; t < PhaseThreads(0, a.kx, a.ky, a.d);
       t += blockDim.x) {
    DistancePhase(a, s, t);
  }
  __syncthreads();
  for (int t = threadIdx.x; t < PhaseThreads(1, a.kx, a.ky, a.d);
       t += blockDim.x) {
    MedianPhase(a, s, t);
  }
  __syncthreads();
  for (int t = threadIdx.x; t < PhaseThreads(2, a.kx, a.ky, a.d);
       t += blockDim.x) {
    KernelPhase(a, s, t);
  }
  __syncthreads();
  for (int t = threadIdx.x; t < PhaseThreads(3, a.kx, a.ky, a.d, a.pad_rows);
       t += blockDim.x) {
    DirectionPhase(a, s, t);
  }
}

}  // namespace

const char* LaunchSteinDirection(const LaunchArgs& args, void* stream) {
  int widest = 0;
  for (int phase = 0; phase < 4; ++phase) {
    const int n = PhaseThreads(phase, args.kx, args.ky, args.d, args.pad_rows);
    if (n > widest) widest = n;
  }
  int threads = ((widest + 31) / 32) * 32;
  if (threads > kMaxBlockThreads) threads = kMaxBlockThreads;
  const size_t shared = sizeof(float) * ScratchFloats(args.kx, args.ky, args.d);
  SteinDirectionKernel<<<args.batch, threads, shared,
                         static_cast<cudaStream_t>(stream)>>>(args);
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace softq::stein

namespace softq::soft_td {
namespace {

__global__ void SoftTdKernel(Args args) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b < args.batch) SoftTdElement(args, b);
}

}  // namespace

const char* LaunchSoftTd(const Args& args, void* stream) {
  constexpr int kThreads = 128;
  const int blocks = (args.batch + kThreads - 1) / kThreads;
  SoftTdKernel<<<blocks, kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      args);
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace softq::soft_td
