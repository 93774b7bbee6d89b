#include "replay/table.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/transition_check.h"
#include "replay/batch_check.h"
#include "replay/memory_limit.h"

namespace softq {

Table::Table(uint64_t capacity, uint32_t observation_dim, uint32_t action_dim,
             uint64_t first_key, uint64_t bytes_beside_per_item)
    : capacity_(std::max<uint64_t>(capacity, 1)),
      bytes_beside_per_item_(bytes_beside_per_item),
      oldest_key_(first_key),
      next_key_(first_key),
      next_key_unlocked_(first_key) {
  if (observation_dim > 0 && action_dim > 0) {
    absl::MutexLock lock(&mu_);
    // A failure leaves the dimensions unset; the first insert then reports it.
    AllocateLocked(observation_dim, action_dim, /*ids=*/false).IgnoreError();
  }
}

absl::StatusOr<std::unique_ptr<Table>> Table::Create(
    uint64_t capacity, uint32_t observation_dim, uint32_t action_dim,
    uint64_t first_key, uint64_t bytes_beside_per_item) {
  auto table =
      std::make_unique<Table>(capacity, 0, 0, first_key, bytes_beside_per_item);
  if (observation_dim > 0 && action_dim > 0) {
    absl::MutexLock lock(&table->mu_);
    if (absl::Status s =
            table->AllocateLocked(observation_dim, action_dim, /*ids=*/false);
        !s.ok()) {
      return s;
    }
  }
  return table;
}

absl::Status Table::CheckStorageFits(uint64_t capacity,
                                     uint32_t observation_dim,
                                     uint32_t action_dim, bool ids,
                                     uint64_t bytes_beside_per_item) {
  const uint64_t floats_per_item =
      static_cast<uint64_t>(RowLayout(observation_dim, action_dim).width());
  return CheckFitsInMemory(
      std::max<uint64_t>(capacity, 1),
      floats_per_item * sizeof(float) + (ids ? 12 : 0) + bytes_beside_per_item,
      absl::StrCat("table storage for capacity ", capacity,
                   " with observation_dim ", observation_dim,
                   " and action_dim ", action_dim,
                   bytes_beside_per_item > 0
                       ? absl::StrCat(" (and ", bytes_beside_per_item,
                                      " bytes per item beside it)")
                       : ""));
}

absl::Status Table::AllocateLocked(uint32_t observation_dim,
                                   uint32_t action_dim, bool ids) {
  if (absl::Status s = CheckStorageFits(capacity_, observation_dim, action_dim,
                                        ids, bytes_beside_per_item_);
      !s.ok()) {
    return s;
  }
  rows_.resize(capacity_ * RowLayout(observation_dim, action_dim).width());
  if (ids) {
    episode_ids_.resize(capacity_);
    step_ids_.resize(capacity_);
  }
  observation_dim_ = observation_dim;
  action_dim_ = action_dim;
  return absl::OkStatus();
}

absl::StatusOr<KeyRange> Table::Insert(const proto::TransitionBatch& batch,
                                       bool validated) {
  if (!validated) {
    if (absl::Status s = CheckTransitionBatch(batch); !s.ok()) return s;
  }
  const uint64_t n = static_cast<uint64_t>(TransitionCount(batch));
  if (n > capacity_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TransitionBatch.rewards has ", n,
        " transitions, more than the table's capacity ", capacity_));
  }
  absl::MutexLock lock(&mu_);
  if (observation_dim_ != 0 && batch.observation_dim() != observation_dim_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TransitionBatch.observation_dim is ", batch.observation_dim(),
        ", the table holds observation_dim ", observation_dim_));
  }
  if (action_dim_ != 0 && batch.action_dim() != action_dim_) {
    return absl::InvalidArgumentError(
        absl::StrCat("TransitionBatch.action_dim is ", batch.action_dim(),
                     ", the table holds action_dim ", action_dim_));
  }
  const bool has_ids = batch.episode_ids_size() > 0;
  if (observation_dim_ == 0) {
    if (absl::Status s = AllocateLocked(batch.observation_dim(),
                                        batch.action_dim(), has_ids);
        !s.ok()) {
      return s;
    }
  } else if (has_ids && episode_ids_.empty()) {
    if (absl::Status s =
            CheckStorageFits(capacity_, observation_dim_, action_dim_,
                             /*ids=*/true, bytes_beside_per_item_);
        !s.ok()) {
      return s;
    }
    episode_ids_.resize(capacity_);
    step_ids_.resize(capacity_);
  }
  // Validation is complete: from here on nothing fails, so the batch is stored
  // whole.
  const uint64_t first = next_key_;
  const uint64_t slot = first % capacity_;
  const RowLayout layout(observation_dim_, action_dim_);
  const uint64_t width = layout.width();
  for (uint64_t i = 0, s = slot; i < n;
       ++i, s = (s + 1 == capacity_ ? 0 : s + 1)) {
    PackRow(batch, static_cast<int64_t>(i), layout, rows_.data() + s * width);
  }
  if (!episode_ids_.empty()) {
    for (uint64_t i = 0, s = slot; i < n;
         ++i, s = (s + 1 == capacity_ ? 0 : s + 1)) {
      episode_ids_[s] = has_ids ? batch.episode_ids(i) : 0;
      step_ids_[s] = has_ids ? batch.step_ids(i) : 0;
    }
  }
  next_key_ += n;
  next_key_unlocked_.store(next_key_, std::memory_order_release);
  if (next_key_ - oldest_key_ > capacity_) oldest_key_ = next_key_ - capacity_;
  inserts_total_ += n;
  // Bounded: a client inventing actor ids grows the map to the bound, then
  // only the `other` count.
  if (auto it = actors_.tracked.find(batch.actor_id());
      it != actors_.tracked.end()) {
    it->second += n;
  } else if (actors_.tracked.size() < max_tracked_actors_) {
    actors_.tracked.emplace(batch.actor_id(), n);
  } else {
    actors_.other += n;
  }
  return KeyRange{first, static_cast<uint32_t>(n)};
}

namespace {

// Calls copy(i, slot) for each of `keys` in order, where slot is the key's
// slot in `table` (rows of `row_bytes`). Sampled rows are scattered over a
// table that may be far larger than the caches: the lines of a row further on
// (about 2 KiB ahead: 32 rows at observation 2, 4 at observation 111) are
// requested while row i is copied, so that the misses overlap.
template <typename Copy>
void ForEachRowPrefetched(absl::Span<const uint64_t> keys, uint64_t capacity,
                          const char* table, uint64_t row_bytes, Copy copy) {
  auto prefetch_row = [&](uint64_t key) {
    const char* c = table + key % capacity * row_bytes;
    for (uint64_t off = 0; off < row_bytes; off += 64) {
      __builtin_prefetch(c + off);
    }
    __builtin_prefetch(c + row_bytes - 1);
  };
  const size_t n = keys.size();
  const size_t ahead = std::clamp<uint64_t>(2048 / row_bytes, 4, 32);
  for (size_t i = 0; i < std::min(n, ahead); ++i) prefetch_row(keys[i]);
  for (size_t i = 0; i < n; ++i) {
    if (i + ahead < n) prefetch_row(keys[i + ahead]);
    copy(i, keys[i] % capacity);
  }
}

}  // namespace

absl::Status Table::CheckHeldLocked(absl::Span<const uint64_t> keys) const {
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] < oldest_key_ || keys[i] >= next_key_) {
      return absl::NotFoundError(absl::StrCat(
          "key ", keys[i], " (keys[", i, "]) is not held; held keys are [",
          oldest_key_, ", ", next_key_, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status Table::Read(absl::Span<const uint64_t> keys,
                         proto::TransitionBatch* out,
                         const std::function<void()>& locked) const {
  absl::ReaderMutexLock lock(&mu_);
  if (locked) locked();
  if (absl::Status s = CheckHeldLocked(keys); !s.ok()) return s;
  const uint64_t n = keys.size();
  const uint32_t od = observation_dim_, ad = action_dim_;
  out->set_observation_dim(od);
  out->set_action_dim(ad);
  // Room for the rows, left uninitialized (every value is written below).
  auto grow = [n](auto* field, uint64_t per_row) {
    const int count = static_cast<int>(n * per_row);
    field->Reserve(field->size() + count);
    return field->AddNAlreadyReserved(count);
  };
  float* obs = grow(out->mutable_observations(), od);
  float* next = grow(out->mutable_next_observations(), od);
  float* act = grow(out->mutable_actions(), ad);
  float* rew = grow(out->mutable_rewards(), 1);
  bool* done = grow(out->mutable_dones(), 1);
  const bool ids = !episode_ids_.empty();
  uint64_t* episode = ids ? grow(out->mutable_episode_ids(), 1) : nullptr;
  uint32_t* step = ids ? grow(out->mutable_step_ids(), 1) : nullptr;
  const RowLayout layout(od, ad);
  const uint64_t width = layout.width();
  ForEachRowPrefetched(
      keys, capacity_, reinterpret_cast<const char*>(rows_.data()),
      width * sizeof(float), [&](size_t i, uint64_t s) {
        const float* row = rows_.data() + s * width;
        CopyField(obs + i * od, row, od * sizeof(float));
        CopyField(act + i * ad, row + layout.action(), ad * sizeof(float));
        rew[i] = row[layout.reward()];
        CopyField(next + i * od, row + layout.next_observation(),
                  od * sizeof(float));
        done[i] = row[layout.done()] != 0.0f;
        if (ids) {
          episode[i] = episode_ids_[s];
          step[i] = step_ids_[s];
        }
      });
  return absl::OkStatus();
}

absl::Status Table::ReadRows(absl::Span<const uint64_t> keys, char* rows,
                             char* episode_ids, char* step_ids,
                             const std::function<void()>& locked) const {
  absl::ReaderMutexLock lock(&mu_);
  if (locked) locked();
  if (absl::Status s = CheckHeldLocked(keys); !s.ok()) return s;
  const uint64_t row_bytes =
      RowLayout(observation_dim_, action_dim_).width() * sizeof(float);
  const bool ids = !episode_ids_.empty();
  if (ids != (episode_ids != nullptr && step_ids != nullptr)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the table ", ids ? "stores" : "stores no", " episode and step ids; ",
        "the read was given room for ", ids ? "none" : "them"));
  }
  const char* table = reinterpret_cast<const char*>(rows_.data());
  ForEachRowPrefetched(
      keys, capacity_, table, row_bytes, [&](size_t i, uint64_t s) {
        std::memcpy(rows + i * row_bytes, table + s * row_bytes, row_bytes);
        if (ids) {
          std::memcpy(episode_ids + i * 8, &episode_ids_[s], 8);
          std::memcpy(step_ids + i * 4, &step_ids_[s], 4);
        }
      });
  return absl::OkStatus();
}

bool Table::Contains(uint64_t key) const {
  absl::ReaderMutexLock lock(&mu_);
  return key >= oldest_key_ && key < next_key_;
}

uint64_t Table::KeyOfSlot(uint64_t slot) const {
  absl::ReaderMutexLock lock(&mu_);
  // The unique held key k with k % capacity == slot: count back from the newest
  // key.
  const uint64_t newest = next_key_ - 1;
  const uint64_t back = (newest % capacity_ + capacity_ - slot) % capacity_;
  return newest - back;
}

void Table::KeysOfSlots(absl::Span<const uint64_t> slots,
                        uint64_t* keys) const {
  absl::ReaderMutexLock lock(&mu_);
  const uint64_t newest = next_key_ - 1;
  const uint64_t newest_slot = newest % capacity_;
  for (size_t i = 0; i < slots.size(); ++i) {
    keys[i] = newest - (newest_slot + capacity_ - slots[i]) % capacity_;
  }
}

absl::Status Table::ForEachItem(
    const std::function<absl::Status(uint64_t, const ItemView&)>& fn,
    uint64_t first_key, uint64_t end_key) const {
  absl::ReaderMutexLock lock(&mu_);
  const bool ids = !episode_ids_.empty();
  const RowLayout layout(observation_dim_, action_dim_);
  const uint64_t end = std::min(end_key, next_key_);
  for (uint64_t key = std::max(first_key, oldest_key_); key < end; ++key) {
    const uint64_t s = key % capacity_;
    const float* row = rows_.data() + s * layout.width();
    const ItemView item{row,
                        row + layout.action(),
                        row[layout.reward()],
                        row + layout.next_observation(),
                        row[layout.done()] != 0.0f,
                        ids ? episode_ids_[s] : 0,
                        ids ? step_ids_[s] : 0};
    if (absl::Status st = fn(key, item); !st.ok()) return st;
  }
  return absl::OkStatus();
}

void Table::SetCounters(uint64_t inserts_total, ActorCounts actors) {
  absl::MutexLock lock(&mu_);
  inserts_total_ = inserts_total;
  actors_ = std::move(actors);
}

void Table::SetMaxTrackedActors(uint64_t n) {
  absl::MutexLock lock(&mu_);
  max_tracked_actors_ = n;
  while (actors_.tracked.size() > n) {
    auto last = std::prev(actors_.tracked.end());
    actors_.other += last->second;
    actors_.tracked.erase(last);
  }
}

ActorCounts Table::Actors(bool tracked) const {
  absl::ReaderMutexLock lock(&mu_);
  if (tracked) return actors_;
  ActorCounts counts;
  counts.other = actors_.other;
  return counts;
}

TableInfo Table::Info() const {
  absl::ReaderMutexLock lock(&mu_);
  TableInfo info;
  info.capacity = capacity_;
  info.size = SizeLocked();
  info.oldest_key = oldest_key_;
  info.next_key = next_key_;
  info.inserts_total = inserts_total_;
  info.observation_dim = observation_dim_;
  info.action_dim = action_dim_;
  info.has_ids = !episode_ids_.empty();
  info.storage_bytes = rows_.size() * sizeof(float) +
                       episode_ids_.size() * sizeof(uint64_t) +
                       step_ids_.size() * sizeof(uint32_t);
  return info;
}

uint64_t Table::size() const {
  absl::ReaderMutexLock lock(&mu_);
  return SizeLocked();
}

}  // namespace softq
