// Uniform sampling over the held slots: each of the `size` items with
// probability 1/size. Keeps no state. Not thread-safe (see sampler.h).
#ifndef SOFTQ_REPLAY_UNIFORM_SAMPLER_H_
#define SOFTQ_REPLAY_UNIFORM_SAMPLER_H_

#include "replay/sampler.h"

namespace softq {

class UniformSampler final : public Sampler {
 public:
  absl::string_view name() const override { return "uniform"; }
  void Set(uint64_t, float) override {}
  float Get(uint64_t) const override { return 1.0f; }
  float max_priority() const override { return 1.0f; }
  bool keeps_priorities() const override { return false; }
  SampledSlot Sample(std::mt19937_64& gen, uint64_t size) const override;
  uint64_t bytes() const override { return 0; }
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_UNIFORM_SAMPLER_H_
