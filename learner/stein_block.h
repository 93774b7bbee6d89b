// The adaptive-kernel Stein direction of one state (sql_math.h:
// AdaptiveRbfKernel and SteinDirection) as the four phases of one GPU thread
// block, in plain C++ that compiles for the host and the device.
// learner/kernel_launch.cu runs one block per state with a barrier between
// phases; RunSteinBlockOnHost runs the same phases one logical thread at a
// time, so the CPU tests check the kernel's arithmetic and its median
// selection. Every phase function does the work of logical thread `t` < its
// PhaseThreads count. Thread-safe: pure functions of their arguments.
#ifndef SOFTQ_LEARNER_STEIN_BLOCK_H_
#define SOFTQ_LEARNER_STEIN_BLOCK_H_

#include <cmath>
#include <cstdint>
#include <vector>

#include "learner/host_device.h"

namespace softq::stein {

// One state's particles: fixed x [kx, d] and updated y [ky, d] (rows `d` floats
// apart), the target's score at the fixed particles g [kx, d]; out: scale *
// Delta [ky, d] after `pad_rows` rows of zeros, and h. With `squashed`, g is
// Q's action gradient and the tanh squashing's term -2 x / (1 - x^2 + 1e-6) is
// added first (sql::SquashedScore).
struct BlockArgs {
  int kx, ky, d;
  const float* fixed;
  const float* updated;
  const float* grad_log_p;
  float* direction;  // [pad_rows + ky, d]
  float* bandwidth;
  float scale;
  float negative_inverse_log_kx;  // -1 / log(kx), as the ATen path's scalar
  bool squashed;
  int pad_rows;
};

// A batch of states: state b's particles start at fixed + b *
// fixed_batch_stride (and likewise for the others), each state's rows
// contiguous, `d` floats apart; the outputs are contiguous, direction [batch,
// pad_rows + ky, d] and bandwidth [batch].
struct LaunchArgs {
  int batch, kx, ky, d;
  const float* fixed;
  int64_t fixed_batch_stride;
  const float* updated;
  int64_t updated_batch_stride;
  const float* grad_log_p;
  int64_t grad_batch_stride;
  float* direction;
  float* bandwidth;
  float scale;
  float negative_inverse_log_kx;
  bool squashed;
  int pad_rows;
};

// State b's part of `args`.
SOFTQ_HOST_DEVICE inline BlockArgs StateArgs(const LaunchArgs& args, int b) {
  return {args.kx,
          args.ky,
          args.d,
          args.fixed + b * args.fixed_batch_stride,
          args.updated + b * args.updated_batch_stride,
          args.grad_log_p + b * args.grad_batch_stride,
          args.direction +
              static_cast<int64_t>(b) * (args.pad_rows + args.ky) * args.d,
          args.bandwidth + b,
          args.scale,
          args.negative_inverse_log_kx,
          args.squashed,
          args.pad_rows};
}

// The block's shared memory: kx * ky distances (then kernel values), kx * d
// pulled scores, and the negated bandwidth -h.
struct BlockScratch {
  float* kernel;
  float* pulled;
  float* negative_h;
};

SOFTQ_HOST_DEVICE inline int ScratchFloats(int kx, int ky, int d) {
  return kx * ky + kx * d + 1;
}

// Phase 1, t < kx * ky: the squared distance ||x_i - y_j||^2, t = i * ky + j.
SOFTQ_HOST_DEVICE inline void DistancePhase(const BlockArgs& a,
                                            const BlockScratch& s, int t) {
  const int i = t / a.ky, j = t % a.ky;
  float sum = 0.0f;
  for (int c = 0; c < a.d; ++c) {
    const float diff = a.fixed[i * a.d + c] - a.updated[j * a.d + c];
    sum += diff * diff;
  }
  s.kernel[t] = sum;
  if (t == 0)
    *s.negative_h = *a.bandwidth = NAN;  // stay NaN if no distance is ordered
}

// Phase 2, t < kx * ky: the lower median of the distances, as a stable sort
// would place it. Distance t sits at position (#smaller) + (#equal before t) of
// that sort; the one thread whose position is the median's writes -h =
// min(-median / log kx, -1e-3).
SOFTQ_HOST_DEVICE inline void MedianPhase(const BlockArgs& a,
                                          const BlockScratch& s, int t) {
  const int n = a.kx * a.ky;
  const float mine = s.kernel[t];
  int position = 0;
  for (int u = 0; u < n; ++u) {
    const float other = s.kernel[u];
    position += (other < mine) || (other == mine && u < t);
  }
  if (position == (n - 1) / 2) {
    const float scaled = mine * a.negative_inverse_log_kx;
    const float negative_h = scaled < -1e-3f ? scaled : -1e-3f;
    *s.negative_h = negative_h;
    *a.bandwidth = -negative_h;
  }
}

// Phase 3, t < max(kx * ky, kx * d): kappa = exp(dist / -h) in place, and the
// pulled score g - 2 x / h of each fixed coordinate.
SOFTQ_HOST_DEVICE inline void KernelPhase(const BlockArgs& a,
                                          const BlockScratch& s, int t) {
  const float negative_h = *s.negative_h;
  if (t < a.kx * a.ky) s.kernel[t] = ::expf(s.kernel[t] / negative_h);
  if (t < a.kx * a.d) {
    const float x = a.fixed[t];
    float g = a.grad_log_p[t];
    if (a.squashed) g -= 2.0f * x / (1.000001f - x * x);
    s.pulled[t] = g + 2.0f * x / negative_h;
  }
}

// Phase 4, t < (pad_rows + ky) * d: zero in the padding; then for particle j,
// coordinate c,
//   scale * Delta = scale / kx * (sum_i kappa_ij pulled_ic + 2 / h * y_jc *
//   sum_i kappa_ij).
SOFTQ_HOST_DEVICE inline void DirectionPhase(const BlockArgs& a,
                                             const BlockScratch& s, int t) {
  const int padding = a.pad_rows * a.d;
  if (t < padding) {
    a.direction[t] = 0.0f;
    return;
  }
  const int j = (t - padding) / a.d, c = (t - padding) % a.d;
  float weighted = 0.0f, column = 0.0f;
  for (int i = 0; i < a.kx; ++i) {
    const float kappa = s.kernel[i * a.ky + j];
    weighted += kappa * s.pulled[i * a.d + c];
    column += kappa;
  }
  a.direction[t] =
      a.scale / a.kx *
      (weighted - 2.0f * a.updated[j * a.d + c] * column / *s.negative_h);
}

// Logical threads per phase, in order; a block needs as many as the largest (or
// loops).
SOFTQ_HOST_DEVICE inline int PhaseThreads(int phase, int kx, int ky, int d,
                                          int pad_rows = 0) {
  switch (phase) {
    case 0:
    case 1:
      return kx * ky;
    case 2:
      return kx * ky > kx * d ? kx * ky : kx * d;
    default:
      return (pad_rows + ky) * d;
  }
}

// Runs one state's block on the host, phase by phase, every logical thread in
// turn (the barriers of the device's block are the phase boundaries). `scratch`
// holds ScratchFloats(kx, ky, d) floats.
inline void RunSteinBlockOnHost(const BlockArgs& a, float* scratch) {
  const BlockScratch s{scratch, scratch + a.kx * a.ky,
                       scratch + a.kx * a.ky + a.kx * a.d};
  for (int phase = 0; phase < 4; ++phase) {
    const int threads = PhaseThreads(phase, a.kx, a.ky, a.d, a.pad_rows);
    for (int t = 0; t < threads; ++t) {
      switch (phase) {
        case 0:
          DistancePhase(a, s, t);
          break;
        case 1:
          MedianPhase(a, s, t);
          break;
        case 2:
          KernelPhase(a, s, t);
          break;
        default:
          DirectionPhase(a, s, t);
          break;
      }
    }
  }
}

// Every state of `args` on the host, as the kernel's blocks would.
inline void RunSteinBlocksOnHost(const LaunchArgs& args) {
  std::vector<float> scratch(ScratchFloats(args.kx, args.ky, args.d));
  for (int b = 0; b < args.batch; ++b)
    RunSteinBlockOnHost(StateArgs(args, b), scratch.data());
}

}  // namespace softq::stein

#endif  // SOFTQ_LEARNER_STEIN_BLOCK_H_
