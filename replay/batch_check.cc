#include "replay/batch_check.h"

#include <cstdint>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/transition_check.h"

namespace softq {
namespace {

// True when every value is finite: a float is not finite iff its exponent bits
// are all ones. SSE2 checks four floats per instruction; the scalar loop (which
// GCC does not vectorize at -O2) handles the tail and other architectures.
bool AllFinite(const google::protobuf::RepeatedField<float>& values) {
  const float* p = values.data();
  const int n = values.size();
  int i = 0;
  uint32_t bad = 0;
#ifdef __SSE2__
  const __m128i mask = _mm_set1_epi32(0x7f800000);
  __m128i any = _mm_setzero_si128();
  for (; i + 16 <= n; i += 16) {
    for (int k = 0; k < 16; k += 4) {
      const __m128i bits = _mm_castps_si128(_mm_loadu_ps(p + i + k));
      any = _mm_or_si128(any, _mm_cmpeq_epi32(_mm_and_si128(bits, mask), mask));
    }
  }
  bad = static_cast<uint32_t>(_mm_movemask_epi8(any));
#endif
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, p + i, sizeof(bits));
    bad |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}

bool WellFormed(const proto::TransitionBatch& b) {
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
  return AllFinite(b.observations()) && AllFinite(b.actions()) &&
         AllFinite(b.rewards()) && AllFinite(b.next_observations());
}

}  // namespace

absl::Status CheckTransitionBatch(const proto::TransitionBatch& batch) {
  if (WellFormed(batch)) return absl::OkStatus();
  absl::Status s = ValidateTransitionBatch(batch);
  if (s.ok())
    return absl::InternalError(
        "CheckTransitionBatch disagrees with the reference");
  return s;
}

}  // namespace softq
