// Storage of one replay shard: a fixed-capacity FIFO ring of transitions kept
// in one flat, preallocated float array, a row per slot laid out as a sampled
// row (common/row_layout.h), so that reading a sampled item touches one
// contiguous span and an insert holds no per-item allocation. The arrays are
// reserved whole and their pages committed as the ring first fills
// (huge_page_allocator.h). Items get monotonically increasing keys; key k lives
// in slot k % capacity and is held iff oldest_key() <= k < next_key().
// Observation and action sizes are fixed by the constructor or, when given as
// 0, by the first insert.
//
// Invariant used by the samplers: while the ring has not wrapped, keys start at
// 0, so the held items always occupy slots [0, size()).
//
// Thread-safe: every method takes the table's own mutex, the const ones
// shared (concurrent reads copy in parallel; an insert waits for them, and
// reads that come after a waiting insert wait for it).
#ifndef SOFTQ_REPLAY_TABLE_H_
#define SOFTQ_REPLAY_TABLE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/row_layout.h"
#include "proto/transition.pb.h"
#include "replay/huge_page_allocator.h"

namespace softq {

// The most actor ids a table counts one by one (--max_tracked_actors at most
// this), and so the most a checkpoint holds: its writer refuses more and its
// reader accepts no more (replay/checkpoint.h), one constant for both.
inline constexpr uint64_t kMaxTrackedActors = uint64_t{1} << 20;
// --max_tracked_actors' default.
inline constexpr uint64_t kDefaultTrackedActors = 65536;

// Transitions inserted per actor id: the first max_tracked_actors ids seen one
// by one, the transitions of every later id in `other`.
struct ActorCounts {
  std::map<uint32_t, uint64_t> tracked;  // actor_id -> transitions inserted
  uint64_t other = 0;
};

// Keys first_key .. first_key + count - 1 given to one stored batch.
struct KeyRange {
  uint64_t first_key = 0;
  uint32_t count = 0;
};

// A consistent snapshot of the table's counters.
struct TableInfo {
  uint64_t capacity = 0;
  uint64_t size = 0;
  uint64_t oldest_key = 0;
  uint64_t next_key =
      0;  // == transitions ever inserted (plus a restored offset)
  uint64_t inserts_total =
      0;  // transitions ever inserted, evicted ones included
  uint32_t observation_dim = 0;
  uint32_t action_dim = 0;
  bool has_ids = false;        // episode/step ids are stored
  uint64_t storage_bytes = 0;  // bytes allocated for items
  // (The per-actor counts are not here: Info is taken on every Sample, and
  // copying them cost 14.7 ms at 200k actors. See Actors().)
};

// Borrowed view of one stored item; valid while the table's lock is held
// (ForEachItem).
struct ItemView {
  const float* observation;  // observation_dim floats
  const float* action;       // action_dim floats
  float reward;
  const float* next_observation;  // observation_dim floats
  bool done;
  uint64_t episode_id;  // 0 when the table stores no ids
  uint32_t step_id;
};

class Table {
 public:
  // `capacity` >= 1. Dimensions of 0 are fixed by the first insert; non-zero
  // ones allocate the storage now. `first_key` is the key of the first insert
  // (non-zero only on restore, and then it must be a multiple of capacity or
  // the table must fill before wrapping). `bytes_beside_per_item`: memory
  // others keep per slot of this table (a prioritized sampler's), which its
  // storage check counts too.
  Table(uint64_t capacity, uint32_t observation_dim, uint32_t action_dim,
        uint64_t first_key = 0, uint64_t bytes_beside_per_item = 0);

  // As the constructor, but a table whose storage does not fit
  // (CheckStorageFits) is refused with that RESOURCE_EXHAUSTED instead of being
  // left for its first insert to report.
  static absl::StatusOr<std::unique_ptr<Table>> Create(
      uint64_t capacity, uint32_t observation_dim, uint32_t action_dim,
      uint64_t first_key = 0, uint64_t bytes_beside_per_item = 0);

  // OK when the storage of such a table (with episode and step ids: `ids`),
  // plus `bytes_beside_per_item` per slot, fits the memory this process may use
  // (memory_limit.h); else RESOURCE_EXHAUSTED naming the sizes and the limit.
  // Inserts that fix the sizes check it too.
  static absl::Status CheckStorageFits(uint64_t capacity,
                                       uint32_t observation_dim,
                                       uint32_t action_dim, bool ids = false,
                                       uint64_t bytes_beside_per_item = 0);

  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // Validates `batch` (common/transition_check.h, dimensions against the
  // table's, at most capacity transitions) and stores all of it, evicting the
  // oldest items when full. Returns the keys given, or InvalidArgument naming
  // the field (ResourceExhausted when the storage cannot be allocated); on
  // error nothing changed. Thread-safe. `validated`: the caller already ran
  // ValidateTransitionBatch (skips the O(n) re-check).
  absl::StatusOr<KeyRange> Insert(const proto::TransitionBatch& batch,
                                  bool validated = false)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Appends the items with `keys` (in order, repeats allowed) to `out`, setting
  // its dimensions. NotFound naming the first key not held; then `out` is
  // unchanged. `locked`, when given, runs once the table's lock is held and
  // before anything is read: a caller that serializes its inserts under a lock
  // of its own releases it there, so that the items it drew stay held while
  // they are copied and its inserts wait only for this copy.
  absl::Status Read(absl::Span<const uint64_t> keys,
                    proto::TransitionBatch* out,
                    const std::function<void()>& locked = nullptr) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // As Read, but the items go row after row into `rows` (RowLayout width
  // floats each, unaligned bytes), and, when the table stores them (Info's
  // has_ids), their episode and step ids into `episode_ids` (8 bytes each) and
  // `step_ids` (4 bytes each), all little-endian; the ids' are null when it
  // stores none. NotFound naming the first key not held, FailedPrecondition
  // when the ids' room does not match; then nothing was written.
  absl::Status ReadRows(absl::Span<const uint64_t> keys, char* rows,
                        char* episode_ids, char* step_ids,
                        const std::function<void()>& locked = nullptr) const
      ABSL_LOCKS_EXCLUDED(mu_);
  // True when `key` is held now.
  bool Contains(uint64_t key) const ABSL_LOCKS_EXCLUDED(mu_);

  // Key held in `slot`, for slot < size(). REQUIRES: the caller serializes with
  // inserts (the shard's lock), else the answer may be stale.
  uint64_t KeyOfSlot(uint64_t slot) const ABSL_LOCKS_EXCLUDED(mu_);
  // KeyOfSlot for many slots under one lock.
  void KeysOfSlots(absl::Span<const uint64_t> slots, uint64_t* keys) const
      ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t SlotOfKey(uint64_t key) const { return key % capacity_; }

  // Calls `fn` for every held item with a key in [first_key, end_key) in key
  // order under the table's lock, stopping at the first error, which it
  // returns. `fn` must not call back into the table.
  absl::Status ForEachItem(
      const std::function<absl::Status(uint64_t, const ItemView&)>& fn,
      uint64_t first_key = 0, uint64_t end_key = UINT64_MAX) const
      ABSL_LOCKS_EXCLUDED(mu_);

  // Restore support: overwrites the accounting counters (after re-inserting the
  // items) as given, even beyond max_tracked_actors (SetMaxTrackedActors folds
  // them).
  void SetCounters(uint64_t inserts_total, ActorCounts actors)
      ABSL_LOCKS_EXCLUDED(mu_);

  // From now on at most `n` (1..kMaxTrackedActors, default
  // kDefaultTrackedActors) actor ids are counted one by one; ids tracked beyond
  // it, the highest first, are folded into ActorCounts::other now.
  void SetMaxTrackedActors(uint64_t n) ABSL_LOCKS_EXCLUDED(mu_);

  // A copy of the per-actor counts, O(tracked actors) under the table's lock:
  // for stats and checkpoints, not for the sampling path. `tracked` false:
  // `other` only, O(1).
  ActorCounts Actors(bool tracked = true) const ABSL_LOCKS_EXCLUDED(mu_);

  // Counters only, O(1).
  TableInfo Info() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t capacity() const { return capacity_; }
  // Info().next_key without the table's lock (for conditions evaluated while
  // another thread holds it): exact when the caller serializes with inserts.
  uint64_t NextKeyUnlocked() const {
    return next_key_unlocked_.load(std::memory_order_acquire);
  }
  uint64_t size() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status AllocateLocked(uint32_t observation_dim, uint32_t action_dim,
                              bool ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // NotFound naming the first of `keys` not held.
  absl::Status CheckHeldLocked(absl::Span<const uint64_t> keys) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  uint64_t SizeLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return next_key_ - oldest_key_;
  }

  const uint64_t capacity_;
  const uint64_t bytes_beside_per_item_;
  mutable absl::Mutex mu_;
  uint32_t observation_dim_ ABSL_GUARDED_BY(mu_) = 0;  // 0 until fixed
  uint32_t action_dim_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t oldest_key_ ABSL_GUARDED_BY(mu_);
  uint64_t next_key_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> next_key_unlocked_;  // next_key_, stored after it
  uint64_t inserts_total_ ABSL_GUARDED_BY(mu_) = 0;
  ActorCounts actors_ ABSL_GUARDED_BY(mu_);
  uint64_t max_tracked_actors_ ABSL_GUARDED_BY(mu_) = kDefaultTrackedActors;
  template <typename T>
  using Array = std::vector<T, HugePageAllocator<T>>;
  // capacity rows of RowLayout(observation_dim_, action_dim_).width() floats;
  // allocated once.
  Array<float> rows_ ABSL_GUARDED_BY(mu_);
  // Allocated by the first batch that carries ids (most actors send none).
  Array<uint64_t> episode_ids_ ABSL_GUARDED_BY(mu_);
  Array<uint32_t> step_ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_TABLE_H_
