// The adaptive-kernel Stein direction, one thread block per state: the phases of
// learner/stein_block.h with a barrier between them, the state's distances and pulled
// scores in shared memory. One launch where the ATen path takes about fourteen.
#include <cuda_runtime.h>

#include "learner/stein_block.h"
#include "learner/stein_kernel.h"

namespace softq::stein {
namespace {

__global__ void SteinDirectionKernel(LaunchArgs args) {
  extern __shared__ float scratch[];
  const int b = blockIdx.x;
  const BlockArgs a{args.kx,
                    args.ky,
                    args.d,
                    args.fixed + b * args.fixed_batch_stride,
                    args.updated + b * args.updated_batch_stride,
                    args.grad_log_p + b * args.grad_batch_stride,
                    args.direction + static_cast<int64_t>(b) * args.ky * args.d,
                    args.bandwidth + b,
                    args.scale,
                    args.negative_inverse_log_kx};
  const BlockScratch s{scratch, scratch + a.kx * a.ky, scratch + a.kx * a.ky + a.kx * a.d};
  for (int t = threadIdx.x; t < PhaseThreads(0, a.kx, a.ky, a.d); t += blockDim.x) {
    DistancePhase(a, s, t);
  }
  __syncthreads();
  for (int t = threadIdx.x; t < PhaseThreads(1, a.kx, a.ky, a.d); t += blockDim.x) {
    MedianPhase(a, s, t);
  }
  __syncthreads();
  for (int t = threadIdx.x; t < PhaseThreads(2, a.kx, a.ky, a.d); t += blockDim.x) {
    KernelPhase(a, s, t);
  }
  __syncthreads();
  for (int t = threadIdx.x; t < PhaseThreads(3, a.kx, a.ky, a.d); t += blockDim.x) {
    DirectionPhase(a, s, t);
  }
}

}  // namespace

const char* LaunchSteinDirection(const LaunchArgs& args, void* stream) {
  int widest = 0;
  for (int phase = 0; phase < 4; ++phase) {
    const int n = PhaseThreads(phase, args.kx, args.ky, args.d);
    if (n > widest) widest = n;
  }
  int threads = ((widest + 31) / 32) * 32;
  if (threads > kMaxBlockThreads) threads = kMaxBlockThreads;
  const size_t shared = sizeof(float) * ScratchFloats(args.kx, args.ky, args.d);
  SteinDirectionKernel<<<args.batch, threads, shared, static_cast<cudaStream_t>(stream)>>>(args);
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace softq::stein
