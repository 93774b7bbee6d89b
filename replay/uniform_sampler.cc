#include "replay/uniform_sampler.h"

namespace softq {

SampledSlot UniformSampler::Sample(std::mt19937_64& gen, uint64_t size) const {
  return {std::uniform_int_distribution<uint64_t>(0, size - 1)(gen),
          1.0 / static_cast<double>(size)};
}

}  // namespace softq
