// Prioritized sampling (Schaul et al. 2016): slot i is drawn with probability
// p_i^alpha / sum_j p_j^alpha, using a sum tree over all capacity slots (slots
// never written hold 0), so Set and Sample are O(log capacity). The caller
// turns the returned probability into an importance weight (N * P(i))^-beta;
// the shard does not.
//
// Memory: 4 bytes of raw priority per slot plus 8 bytes per tree node (2 *
// 2^ceil(log2 cap)). Inner nodes are recomputed from their children on every
// update (not adjusted by deltas) so rounding errors do not accumulate over
// millions of updates. Not thread-safe (see sampler.h).
#ifndef SOFTQ_REPLAY_PRIORITIZED_SAMPLER_H_
#define SOFTQ_REPLAY_PRIORITIZED_SAMPLER_H_

#include <vector>

#include "replay/sampler.h"

namespace softq {

class PrioritizedSampler final : public Sampler {
 public:
  PrioritizedSampler(uint64_t capacity, double alpha);

  absl::string_view name() const override { return "prioritized"; }
  void Set(uint64_t slot, float priority) override;
  float Get(uint64_t slot) const override { return priorities_[slot]; }
  float max_priority() const override { return max_priority_; }
  bool keeps_priorities() const override { return true; }
  SampledSlot Sample(std::mt19937_64& gen, uint64_t size) const override;
  uint64_t bytes() const override;

  // Sum of p^alpha over all slots (for tests).
  double total() const { return tree_[1]; }

 private:
  const double alpha_;
  uint64_t leaves_;                // power of two >= capacity
  std::vector<float> priorities_;  // raw priority per slot
  std::vector<double> tree_;  // tree_[1] root; leaf of slot s at leaves_ + s
  float max_priority_ = 1.0f;
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_PRIORITIZED_SAMPLER_H_
