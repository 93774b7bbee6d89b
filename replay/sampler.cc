#include "replay/sampler.h"

#include "absl/strings/str_cat.h"
#include "replay/memory_limit.h"
#include "replay/prioritized_sampler.h"
#include "replay/uniform_sampler.h"

namespace softq {

absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(absl::string_view name,
                                                     uint64_t capacity,
                                                     double alpha) {
  if (name == "uniform") return std::unique_ptr<Sampler>(new UniformSampler());
  if (name == "prioritized") {
    if (!(alpha >= 0 && alpha <= 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--priority_exponent=", alpha, ": must be in [0, 1]"));
    }
    if (absl::Status s = CheckFitsInMemory(
            capacity, SamplerBytesPerItem(name),
            absl::StrCat("--capacity=", capacity, ": the prioritized sampler"));
        !s.ok()) {
      return s;
    }
    return std::unique_ptr<Sampler>(new PrioritizedSampler(capacity, alpha));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--sampler=", name, ": must be one of uniform, prioritized"));
}

uint64_t SamplerBytesPerItem(absl::string_view name) {
  // A priority (float) per slot and a sum tree (doubles) of up to 4 x capacity
  // nodes.
  return name == "prioritized" ? sizeof(float) + 4 * sizeof(double) : 0;
}

}  // namespace softq
