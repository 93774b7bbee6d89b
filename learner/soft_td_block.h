// The critic's soft TD step for one transition (sql_math.h: SoftValue,
// SoftTdTarget and the gradient of CriticLoss) in plain C++ that compiles for
// the host and the device: learner/kernel_launch.cu runs one GPU thread per
// transition, and the CPU tests run the same function against the ATen
// operations. Thread-safe: a pure function of its arguments.
#ifndef SOFTQ_LEARNER_SOFT_TD_BLOCK_H_
#define SOFTQ_LEARNER_SOFT_TD_BLOCK_H_

#include <cmath>
#include <cstdint>

#include "learner/host_device.h"

namespace softq::soft_td {

// Float32 arrays of B transitions: next_q [B, M] (row b at next_q + b *
// next_q_stride, its M particles contiguous), q, rewards and dones [B] (element
// b at b * their stride).
struct Args {
  int batch, particles;
  const float* next_q;
  int64_t next_q_stride;
  const float* q;
  int64_t q_stride;
  const float* rewards;
  int64_t rewards_stride;
  const float* dones;
  int64_t dones_stride;
  float reward_scale, discount;
  float value_offset;  // action_dim * log 2 - log M, SoftValue's constant
  float loss_scale;   // 1 / B: J_Q = 0.5 * mean((q - y)^2) has dJ/dq_b = (q_b -
                      // y_b) / B
  float* target;      // out: y [B], contiguous
  float* q_gradient;  // out: dJ/dq [B], contiguous
};

// Transition b: V = logsumexp_m next_q[b, m] + value_offset (shifted by the
// row's maximum unless it is infinite, as ATen's logsumexp), y = reward_scale *
// r + discount * (1 - d) * V, and dJ/dq_b.
SOFTQ_HOST_DEVICE inline void SoftTdElement(const Args& a, int b) {
  const float* row = a.next_q + b * a.next_q_stride;
  float largest = -INFINITY;
  for (int m = 0; m < a.particles; ++m)
    largest = row[m] > largest ? row[m] : largest;
  const float shift =
      (largest == INFINITY || largest == -INFINITY) ? 0.0f : largest;
  float sum = 0.0f;
  for (int m = 0; m < a.particles; ++m) sum += ::expf(row[m] - shift);
  const float value = ::logf(sum) + shift + a.value_offset;
  const float not_done = 1.0f - a.dones[b * a.dones_stride];
  const float reward = a.rewards[b * a.rewards_stride];
  const float y = a.reward_scale * reward + a.discount * (not_done * value);
  a.target[b] = y;
  a.q_gradient[b] = (a.q[b * a.q_stride] - y) * a.loss_scale;
}

// Every transition of `a` on the host, as the kernel's threads would.
inline void RunSoftTdOnHost(const Args& a) {
  for (int b = 0; b < a.batch; ++b) SoftTdElement(a, b);
}

}  // namespace softq::soft_td

#endif  // SOFTQ_LEARNER_SOFT_TD_BLOCK_H_
