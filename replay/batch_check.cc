#include "replay/batch_check.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "absl/strings/str_cat.h"
#include "common/transition_check.h"

namespace softq {
namespace {

uint32_t Bits(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  return bits;
}

// True when every value is within `bound` in magnitude, and so finite: with the
// sign bit cleared, a float's bits order like its magnitude, and NaN and inf
// lie above every finite bound. SSE2 checks four floats per instruction; the
// scalar loop (which GCC does not vectorize at -O2) handles the tail and other
// architectures.
bool AllWithin(const google::protobuf::RepeatedField<float>& values,
               float bound) {
  const float* p = values.data();
  const int n = values.size();
  const uint32_t limit = Bits(bound) & 0x7fffffffu;
  int i = 0;
  uint32_t bad = 0;
#ifdef __SSE2__
  const __m128i abs_mask = _mm_set1_epi32(0x7fffffff);
  const __m128i limits = _mm_set1_epi32(static_cast<int32_t>(limit));
  __m128i any = _mm_setzero_si128();
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; k += 4) {
      const __m128i bits = _mm_castps_si128(_mm_loadu_ps(p + i + k));
      // Both sides are below 2^31 once the sign bit is cleared: the signed
      // comparison is the unsigned one.
      any = _mm_or_si128(
          any, _mm_cmpgt_epi32(_mm_and_si128(bits, abs_mask), limits));
    }
  }
  bad = static_cast<uint32_t>(_mm_movemask_epi8(any));
#endif
  for (; i < n; ++i) {
    bad |= static_cast<uint32_t>((Bits(p[i]) & 0x7fffffffu) > limit);
  }
  return bad == 0;
}

bool WellFormed(const proto::TransitionBatch& b, const BatchLimits& limits) {
  const int64_t od = b.observation_dim(), ad = b.action_dim();
  const int64_t n = TransitionCount(b);
  if (od < 1 || od > kMaxObservationDim || ad < 1 || ad > kMaxActionDim)
    return false;
  if (n < 1 || n > kMaxBatchTransitions) return false;
  if (b.observations_size() != n * od || b.next_observations_size() != n * od ||
      b.actions_size() != n * ad || b.dones_size() != n) {
    return false;
  }
  if (!(b.episode_ids_size() == 0 && b.step_ids_size() == 0) &&
      (b.episode_ids_size() != n || b.step_ids_size() != n)) {
    return false;
  }
  if (b.actor_id() > static_cast<uint32_t>(INT32_MAX)) return false;
  if (b.finished_returns_size() > n) return false;
  for (double r : b.finished_returns()) {
    if (!std::isfinite(r)) return false;
  }
  constexpr float kFinite = std::numeric_limits<float>::max();
  return AllWithin(b.observations(), limits.max_abs_observation) &&
         AllWithin(b.actions(), kFinite) &&
         AllWithin(b.rewards(), limits.max_abs_reward) &&
         AllWithin(b.next_observations(), limits.max_abs_observation);
}

// The first value of `values` beyond `bound`, named, for finite values.
absl::Status CheckBound(const char* field,
                        const google::protobuf::RepeatedField<float>& values,
                        float bound, const char* flag) {
  for (int i = 0; i < values.size(); ++i) {
    if (!(std::fabs(values[i]) <= bound)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "TransitionBatch.", field, "[", i, "] is ", values[i],
          ", beyond the shard's bound of ", bound, " in magnitude (", flag,
          "); nothing of the batch is stored"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

BatchLimits DefaultShardLimits() {
  BatchLimits limits;
  limits.max_abs_observation = static_cast<float>(kDefaultMaxAbsObservation);
  limits.max_abs_reward = static_cast<float>(kDefaultMaxAbsReward);
  return limits;
}

absl::Status CheckBatchLimits(const BatchLimits& limits) {
  for (const auto& [flag, bound] :
       {std::pair<const char*, float>{"max_abs_observation",
                                      limits.max_abs_observation},
        {"max_abs_reward", limits.max_abs_reward}}) {
    if (!(bound > 0) || !std::isfinite(bound)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, "=", bound, ": expected > 0 and at most ",
                       std::numeric_limits<float>::max()));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTransitionBatch(const proto::TransitionBatch& batch,
                                  const BatchLimits& limits) {
  if (WellFormed(batch, limits)) return absl::OkStatus();
  if (absl::Status s = ValidateTransitionBatch(batch); !s.ok()) return s;
  for (const absl::Status& s :
       {CheckBound("observations", batch.observations(),
                   limits.max_abs_observation, "--max_abs_observation"),
        CheckBound("rewards", batch.rewards(), limits.max_abs_reward,
                   "--max_abs_reward"),
        CheckBound("next_observations", batch.next_observations(),
                   limits.max_abs_observation, "--max_abs_observation")}) {
    if (!s.ok()) return s;
  }
  return absl::InternalError(
      "CheckTransitionBatch disagrees with the reference");
}

}  // namespace softq
