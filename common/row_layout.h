// The row a transition travels in from the replay table to the learner's
// packed tensor: observation (O) | action (D) | reward | next observation (O)
// | done (1.0 or 0.0), all floats. Pure functions on plain values.
#ifndef SOFTQ_COMMON_ROW_LAYOUT_H_
#define SOFTQ_COMMON_ROW_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "proto/transition.pb.h"

namespace softq {

// The column of each field in a row of O-float observations and D-float
// actions.
struct RowLayout {
  RowLayout(int64_t observation_dim, int64_t action_dim)
      : observation_dim(observation_dim), action_dim(action_dim) {}
  int64_t observation_dim;
  int64_t action_dim;
  int64_t action() const { return observation_dim; }
  int64_t reward() const { return observation_dim + action_dim; }
  int64_t next_observation() const { return reward() + 1; }
  int64_t done() const { return next_observation() + observation_dim; }
  int64_t width() const { return done() + 1; }  // 2 O + D + 2
};

// memcpy of one row's field: the sizes of small observations and actions (up
// to 4 floats) as fixed-size copies the compiler inlines, larger ones through
// memcpy. At observation 2 a call per field cost as much as moving the row.
inline void CopyField(void* to, const void* from, size_t bytes) {
  switch (bytes) {
    case 4:
      std::memcpy(to, from, 4);
      return;
    case 8:
      std::memcpy(to, from, 8);
      return;
    case 12:
      std::memcpy(to, from, 12);
      return;
    case 16:
      std::memcpy(to, from, 16);
      return;
    default:
      std::memcpy(to, from, bytes);
  }
}

// Writes transition i of `batch` (validated; dimensions those of `layout`)
// into `row`, layout.width() floats.
inline void PackRow(const proto::TransitionBatch& batch, int64_t i,
                    const RowLayout& layout, float* row) {
  const int64_t o = layout.observation_dim, d = layout.action_dim;
  const size_t observation_bytes = static_cast<size_t>(o) * sizeof(float);
  CopyField(row, batch.observations().data() + i * o, observation_bytes);
  CopyField(row + layout.action(), batch.actions().data() + i * d,
            static_cast<size_t>(d) * sizeof(float));
  row[layout.reward()] = batch.rewards(static_cast<int>(i));
  CopyField(row + layout.next_observation(),
            batch.next_observations().data() + i * o, observation_bytes);
  row[layout.done()] = batch.dones(static_cast<int>(i)) ? 1.0f : 0.0f;
}

}  // namespace softq

#endif  // SOFTQ_COMMON_ROW_LAYOUT_H_
