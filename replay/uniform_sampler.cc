#include "replay/uniform_sampler.h"

#include "absl/random/distributions.h"

namespace softq {

SampledSlot UniformSampler::Sample(absl::BitGenRef gen, uint64_t size) const {
  return {absl::Uniform<uint64_t>(gen, 0, size), 1.0 / static_cast<double>(size)};
}

}  // namespace softq
