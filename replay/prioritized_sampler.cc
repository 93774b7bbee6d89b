#include "replay/prioritized_sampler.h"

#include <algorithm>
#include <cmath>

namespace softq {

PrioritizedSampler::PrioritizedSampler(uint64_t capacity, double alpha)
    : alpha_(alpha), leaves_(1) {
  while (leaves_ < capacity) leaves_ *= 2;
  priorities_.assign(capacity, 0.0f);
  tree_.assign(2 * leaves_, 0.0);
}

void PrioritizedSampler::Set(uint64_t slot, float priority) {
  priorities_[slot] = priority;
  max_priority_ = std::max(max_priority_, priority);
  uint64_t node = leaves_ + slot;
  tree_[node] = std::pow(static_cast<double>(priority), alpha_);
  for (node /= 2; node >= 1; node /= 2)
    tree_[node] = tree_[2 * node] + tree_[2 * node + 1];
}

SampledSlot PrioritizedSampler::Sample(std::mt19937_64& gen,
                                       uint64_t size) const {
  const double total = tree_[1];
  if (!(total > 0))
    return {0, 1.0 / static_cast<double>(std::max<uint64_t>(size, 1))};
  double u = std::uniform_real_distribution<double>(0.0, total)(gen);
  uint64_t node = 1;
  while (node < leaves_) {
    const double left = tree_[2 * node];
    // Rounding can leave u just above the left sum with an empty right subtree.
    if (u < left || tree_[2 * node + 1] <= 0) {
      node = 2 * node;
    } else {
      u -= left;
      node = 2 * node + 1;
    }
  }
  return {node - leaves_, tree_[node] / total};
}

uint64_t PrioritizedSampler::bytes() const {
  return priorities_.size() * sizeof(float) + tree_.size() * sizeof(double);
}

}  // namespace softq
