// Sampling policy of a shard: which slot of the table to draw next, and with
// what probability. The table keeps the data; a sampler keeps only what its
// policy needs (nothing for uniform, a sum tree of priorities for prioritized).
// Slots are those of replay/table.h: the held items always occupy slots [0,
// size).
//
// Not thread-safe: REQUIRES external synchronization (the shard's lock).
#ifndef SOFTQ_REPLAY_SAMPLER_H_
#define SOFTQ_REPLAY_SAMPLER_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace softq {

struct SampledSlot {
  uint64_t slot = 0;
  double probability = 0;  // of drawing this slot in one draw, in (0, 1]
};

class Sampler {
 public:
  virtual ~Sampler() = default;

  // "uniform" or "prioritized".
  virtual absl::string_view name() const = 0;

  // Records the priority (finite, > 0, unchecked here) of the item now in
  // `slot`: called on insert (overwriting an evicted item's) and on update.
  // Uniform samplers ignore it.
  virtual void Set(uint64_t slot, float priority) = 0;

  // The priority recorded for `slot`; 1 for uniform samplers.
  virtual float Get(uint64_t slot) const = 0;

  // Priority given to inserts that name none: the largest priority ever set (1
  // at first).
  virtual float max_priority() const = 0;

  // True when priorities matter and belong in checkpoints.
  virtual bool keeps_priorities() const = 0;

  // Draws one of the `size` >= 1 held slots [0, size).
  virtual SampledSlot Sample(std::mt19937_64& gen, uint64_t size) const = 0;

  // Bytes this sampler allocated.
  virtual uint64_t bytes() const = 0;
};

// "uniform", or "prioritized" with priority exponent `alpha` in [0, 1] (0 =
// uniform over held items). InvalidArgument naming --sampler otherwise;
// ResourceExhausted naming --capacity when a prioritized sampler would not fit
// this process's memory (memory_limit.h).
absl::StatusOr<std::unique_ptr<Sampler>> MakeSampler(absl::string_view name,
                                                     uint64_t capacity,
                                                     double alpha);

// The memory a sampler of that name keeps per table slot: a prioritized one's
// priority and sum tree; 0 for others.
uint64_t SamplerBytesPerItem(absl::string_view name);

}  // namespace softq

#endif  // SOFTQ_REPLAY_SAMPLER_H_
