#include "replay/shard.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/types/span.h"
#include "common/transition_check.h"
#include "replay/batch_check.h"
#include "replay/crc32.h"

namespace softq {
namespace {

constexpr int kMaxPriorityUpdates = 1000000;

absl::Status CheckPriorities(const char* field,
                             absl::Span<const float> priorities) {
  for (size_t i = 0; i < priorities.size(); ++i) {
    if (!(priorities[i] > 0) || !std::isfinite(priorities[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "[", i, "] is ", priorities[i], ", expected finite and > 0"));
    }
  }
  return absl::OkStatus();
}

// The checks of `options` that need no allocation.
absl::Status CheckOptions(const ShardOptions& options) {
  if (options.capacity < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--capacity=", options.capacity, ": must be at least 1"));
  }
  if ((options.observation_dim == 0) != (options.action_dim == 0) ||
      options.observation_dim > kMaxObservationDim ||
      options.action_dim > kMaxActionDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--observation_dim=", options.observation_dim,
        " --action_dim=", options.action_dim,
        ": both 0 (fixed by the first insert) or both set, at most ",
        kMaxObservationDim, " and ", kMaxActionDim));
  }
  if (absl::Status s = CheckBatchLimits(options.limits); !s.ok()) return s;
  if (options.max_tracked_actors < 1 ||
      options.max_tracked_actors > kMaxTrackedActors) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_tracked_actors=", options.max_tracked_actors,
                     ": expected 1..", kMaxTrackedActors));
  }
  return RateLimiter::Validate(options.rate_limiter, options.capacity);
}

// `s`, its message led by the flag that sized the table when it says the table
// does not fit.
absl::Status NamingCapacity(const absl::Status& s, uint64_t capacity) {
  if (!absl::IsResourceExhausted(s)) return s;
  return absl::ResourceExhaustedError(
      absl::StrCat("--capacity=", capacity, ": ", s.message()));
}

// The checks of Table::Insert that need the table's state: a batch passing
// them is stored unless its storage cannot be allocated.
absl::Status CheckFitsTable(const proto::TransitionBatch& batch,
                            const TableInfo& info) {
  const uint64_t n = static_cast<uint64_t>(TransitionCount(batch));
  if (n > info.capacity) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TransitionBatch.rewards has ", n,
        " transitions, more than the table's capacity ", info.capacity));
  }
  // As Table::Insert words them.
  if (info.observation_dim != 0 &&
      batch.observation_dim() != info.observation_dim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TransitionBatch.observation_dim is ", batch.observation_dim(),
        ", the table holds observation_dim ", info.observation_dim));
  }
  if (info.action_dim != 0 && batch.action_dim() != info.action_dim) {
    return absl::InvalidArgumentError(
        absl::StrCat("TransitionBatch.action_dim is ", batch.action_dim(),
                     ", the table holds action_dim ", info.action_dim));
  }
  return absl::OkStatus();
}

// The generator Sample draws from (ShardOptions::seed).
std::mt19937_64 SampleGenerator(const ShardOptions& options) {
  if (options.seed == 0) return std::mt19937_64(std::random_device()());
  std::seed_seq seq{static_cast<uint32_t>(options.seed),
                    static_cast<uint32_t>(options.seed >> 32),
                    Crc32(0, options.shard_id.data(), options.shard_id.size())};
  return std::mt19937_64(seq);
}

}  // namespace

uint64_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) *
         static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

Shard::Shard(const ShardOptions& options, std::unique_ptr<Table> table,
             std::unique_ptr<Sampler> sampler)
    : options_(options),
      start_(absl::Now()),
      table_(std::move(table)),
      sampler_(std::move(sampler)),
      rate_limiter_(options.rate_limiter),
      gen_(SampleGenerator(options)),
      insert_rate_(start_),
      sample_rate_(start_) {
  table_->SetMaxTrackedActors(options.max_tracked_actors);
}

absl::StatusOr<std::unique_ptr<Shard>> Shard::Create(
    const ShardOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  // The table first, its check counting the sampler's memory: each may fit
  // alone while both do not, and then nothing is allocated.
  absl::StatusOr<std::unique_ptr<Table>> table = Table::Create(
      options.capacity, options.observation_dim, options.action_dim,
      /*first_key=*/0, SamplerBytesPerItem(options.sampler));
  if (!table.ok()) return NamingCapacity(table.status(), options.capacity);
  absl::StatusOr<std::unique_ptr<Sampler>> sampler =
      MakeSampler(options.sampler, options.capacity, options.priority_exponent);
  if (!sampler.ok()) return sampler.status();
  return std::unique_ptr<Shard>(
      new Shard(options, *std::move(table), *std::move(sampler)));
}

absl::StatusOr<std::unique_ptr<Shard>> Shard::Restore(
    const ShardOptions& options, const std::string& path) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  // The table first, its check counting the sampler's memory, as in Create.
  absl::StatusOr<RestoredTable> restored = ReadCheckpoint(
      path, {options.capacity, options.observation_dim, options.action_dim,
             SamplerBytesPerItem(options.sampler)});
  if (!restored.ok())
    return NamingCapacity(restored.status(), options.capacity);
  const TableInfo info = restored->table->Info();
  absl::StatusOr<std::unique_ptr<Sampler>> sampler =
      MakeSampler(options.sampler, options.capacity, options.priority_exponent);
  if (!sampler.ok()) return sampler.status();
  std::unique_ptr<Shard> shard(
      new Shard(options, std::move(restored->table), *std::move(sampler)));
  absl::MutexLock lock(&shard->mu_);
  uint64_t i = 0;
  for (uint64_t key = info.oldest_key; key < info.next_key; ++key, ++i) {
    const float p =
        restored->priorities.empty() ? 1.0f : restored->priorities[i];
    shard->sampler_->Set(shard->table_->SlotOfKey(key), p);
  }
  shard->samples_total_ = restored->samples_total;
  shard->rate_limiter_.Restore(&shard->mu_, info.size);
  return shard;
}

void Shard::AwaitTurnLocked(Kind kind) {
  const Kind other = kind == kInsertKind ? kSampleKind : kInsertKind;
  // Only changes made under mu_ (a turn taken, a waiter let in) can make this
  // true, so the mutex re-evaluates it when it should.
  auto my_turn = [this, kind, other]() {
    mu_.AssertHeld();
    return last_turn_ != kind ||
           waiting_[other].load(std::memory_order_relaxed) == 0;
  };
  mu_.Await(absl::Condition(&my_turn));
  waiting_[kind].fetch_sub(1, std::memory_order_relaxed);
  last_turn_ = kind;
}

absl::StatusOr<KeyRange> Shard::Insert(
    const proto::TransitionBatch& batch,
    const google::protobuf::RepeatedField<float>& priorities,
    absl::Time deadline, const CancelledFn& cancelled) {
  // The O(n) checks run before taking the lock, so concurrent writers validate
  // in parallel.
  if (absl::Status s = CheckTransitionBatch(batch, options_.limits); !s.ok())
    return s;
  const int n = static_cast<int>(TransitionCount(batch));
  if (!priorities.empty()) {
    if (priorities.size() != n) {
      return absl::InvalidArgumentError(
          absl::StrCat("InsertRequest.priorities has ", priorities.size(),
                       " values, expected 0 or ", n));
    }
    if (absl::Status s =
            CheckPriorities("InsertRequest.priorities", priorities);
        !s.ok()) {
      return s;
    }
  }
  // A durable shard logs the batch as serialized bytes; serializing and
  // checksumming them happen here, outside the lock, so the lock covers only
  // the write(2).
  std::string logged;
  uint32_t logged_crc = 0;
  const absl::Span<const float> priority_span(priorities.data(),
                                              priorities.size());
  if (log_ != nullptr) {
    if (!batch.SerializeToString(&logged)) {
      return absl::InternalError("cannot serialize the batch for the log");
    }
    logged_crc = InsertLogPayloadCrc(priority_span, logged);
  }
  waiting_[kInsertKind].fetch_add(1, std::memory_order_relaxed);
  absl::ReleasableMutexLock lock(&mu_);
  AwaitTurnLocked(kInsertKind);
  if (!log_error_.ok()) return log_error_;
  // Admitted by the rate limiter, and evicting nothing a running checkpoint
  // has yet to copy, both at once.
  while (true) {
    if (absl::Status s =
            rate_limiter_.AwaitCanInsert(&mu_, deadline, cancelled);
        !s.ok())
      return s;
    if (CanSaveEvictionsLocked(n)) {
      SaveEvictionsLocked(n);
      break;
    }
    auto copied = [this, n]() {
      mu_.AssertHeld();
      return CanSaveEvictionsLocked(n);
    };
    const absl::Time step =
        std::min(deadline, absl::Now() + absl::Milliseconds(100));
    if (mu_.AwaitWithDeadline(absl::Condition(&copied), step)) continue;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          "deadline passed while a checkpoint copied the items this insert "
          "evicts");
    }
    if (cancelled && cancelled()) {
      return absl::CancelledError("insert cancelled during a checkpoint");
    }
  }
  if (!log_error_.ok()) return log_error_;  // set while we waited
  const float default_priority =
      sampler_->keeps_priorities() ? sampler_->max_priority() : 0.0f;
  // A durable shard logs the batch before storing it: a batch the log did not
  // take is not stored at all (not sampled, counted or checkpointed), so the
  // client's re-send cannot duplicate it.
  uint64_t log_bytes_before = 0;
  if (log_ != nullptr) {
    const TableInfo info = table_->Info();
    // What the table would refuse is refused before anything is logged.
    if (absl::Status s = CheckFitsTable(batch, info); !s.ok()) return s;
    log_bytes_before = log_->bytes();
    if (absl::Status s = log_->Append(info.next_key, default_priority,
                                      priority_span, logged, logged_crc);
        !s.ok()) {
      // Append cut the file back (or refuses every later record until a
      // checkpoint): neither the log nor the table holds any of the batch.
      return absl::InternalError(absl::StrCat(
          "batch not acknowledged, nothing of it stored: ", s.message()));
    }
  }
  absl::StatusOr<KeyRange> keys = table_->Insert(batch, /*validated=*/true);
  if (!keys.ok()) {
    // Refused after all (its storage could not be allocated): take the record
    // back so that recovery does not replay what was never stored.
    if (log_ != nullptr) {
      if (absl::Status s = log_->CutBack(log_bytes_before); !s.ok()) {
        log_error_ = absl::UnavailableError(absl::StrCat(
            "the shard's insert log holds a batch the table refused (",
            s.message(), "); inserts are refused until a checkpoint succeeds"));
      }
    }
    return keys.status();
  }
  if (sampler_->keeps_priorities()) {
    for (int i = 0; i < n; ++i) {
      sampler_->Set(table_->SlotOfKey(keys->first_key + i),
                    priorities.empty() ? default_priority : priorities[i]);
    }
  }
  rate_limiter_.Inserted(&mu_, n, table_->size());
  insert_rate_.Add(n, absl::Now());
  for (double r : batch.finished_returns()) {
    if (recent_returns_.size() == kRecentReturns) recent_returns_.pop_front();
    recent_returns_.push_back(r);
  }
  episodes_total_ += static_cast<uint64_t>(batch.finished_returns_size());
  if (log_ != nullptr && durability_.log_max_bytes > 0 &&
      log_->bytes() >= auto_checkpoint_bytes_) {
    // Bound the log (and the time a restart spends replaying it), without the
    // lock, unless a checkpoint is running. A failure is reported (one line,
    // and the count) and retried after as many bytes again; the batch is
    // logged either way.
    lock.Release();
    if (checkpoint_mu_.TryLock()) {
      absl::StatusOr<CheckpointWritten> written =
          CheckpointInSlices(durability_.checkpoint_path);
      checkpoint_mu_.Unlock();
      if (!written.ok()) {
        absl::MutexLock relock(&mu_);
        auto_checkpoint_bytes_ = log_->bytes() + durability_.log_max_bytes;
        ++checkpoint_failures_;
        std::cerr << "replay shard " << options_.shard_id
                  << ": automatic checkpoint to " << durability_.checkpoint_path
                  << " failed (insert log " << log_->bytes()
                  << " bytes; retried after " << durability_.log_max_bytes
                  << " more): " << written.status().message() << std::endl;
      }
    }
  }
  return keys;
}

absl::Status Shard::CheckSampleSize(uint32_t batch_size) const {
  if (batch_size < 1 || batch_size > options_.capacity) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SampleRequest.batch_size is ", batch_size, ", expected 1..",
        options_.capacity, " (the table's capacity)"));
  }
  return absl::OkStatus();
}

absl::Status Shard::DrawLocked(uint32_t batch_size, absl::Time deadline,
                               const CancelledFn& cancelled, Draw* draw) {
  AwaitTurnLocked(kSampleKind);
  if (absl::Status s = rate_limiter_.AwaitCanSample(&mu_, deadline, cancelled);
      !s.ok())
    return s;
  // The response's size, bounded before anything is drawn or counted (the
  // dimensions are known once the table holds an item).
  draw->info = table_->Info();
  const auto row_bytes = static_cast<uint64_t>(SampledTransitionBytes(
      draw->info.observation_dim, draw->info.action_dim));
  if (batch_size * row_bytes > options_.max_sample_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("SampleRequest.batch_size is ", batch_size, ": ",
                     batch_size, " transitions of ~", row_bytes,
                     " bytes exceed the shard's ", options_.max_sample_bytes,
                     "-byte message limit (--max_message_bytes)"));
  }
  const uint64_t size = table_->size();
  std::vector<uint64_t> slots(batch_size);
  draw->probabilities.resize(batch_size);
  for (uint32_t i = 0; i < batch_size; ++i) {
    const SampledSlot s = sampler_->Sample(gen_, size);
    slots[i] = s.slot;
    draw->probabilities[i] = s.probability;
  }
  draw->keys.resize(batch_size);
  table_->KeysOfSlots(slots, draw->keys.data());
  draw->table_size = size;
  samples_total_ += batch_size;
  rate_limiter_.Sampled(&mu_, batch_size);
  sample_rate_.Add(batch_size, absl::Now());
  return absl::OkStatus();
}

// The rows are copied under the table's lock alone, held shared: the shard's
// is released once the table's is held, so no insert evicts a drawn item
// before it is copied, inserts wait for this copy only, and other Samples draw
// and copy meanwhile (a sampler calling flat out does not keep inserts waiting
// for tens of ms, and concurrent Samples do not wait for each other's copies).
// Nothing guarded by mu_ is touched after the table's read.
absl::Status Shard::DrawAndRead(uint32_t batch_size, absl::Time deadline,
                                const CancelledFn& cancelled,
                                const ReadFn& read) {
  if (absl::Status s = CheckSampleSize(batch_size); !s.ok()) return s;
  waiting_[kSampleKind].fetch_add(1, std::memory_order_relaxed);
  absl::ReleasableMutexLock lock(&mu_);
  Draw draw;
  if (absl::Status s = DrawLocked(batch_size, deadline, cancelled, &draw);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = read(draw, [&lock] { lock.Release(); }); !s.ok()) {
    return absl::InternalError(
        absl::StrCat("sampled a key not held: ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status Shard::Sample(uint32_t batch_size, absl::Time deadline,
                           const CancelledFn& cancelled,
                           proto::SampleResponse* out) {
  return DrawAndRead(
      batch_size, deadline, cancelled,
      [out, this](const Draw& draw, const std::function<void()>& release) {
        out->Clear();
        out->mutable_keys()->Add(draw.keys.begin(), draw.keys.end());
        out->mutable_probabilities()->Add(draw.probabilities.begin(),
                                          draw.probabilities.end());
        out->set_table_size(draw.table_size);
        return table_->Read(draw.keys, out->mutable_batch(), release);
      });
}

absl::StatusOr<PackedSample> Shard::SamplePacked(uint32_t batch_size,
                                                 absl::Time deadline,
                                                 const CancelledFn& cancelled) {
  PackedSample packed;
  if (absl::Status s = DrawAndRead(
          batch_size, deadline, cancelled,
          [&packed, this](const Draw& draw,
                          const std::function<void()>& release) {
            PackedSampleBuilder answer(draw.keys, draw.probabilities,
                                       draw.table_size,
                                       draw.info.observation_dim,
                                       draw.info.action_dim, draw.info.has_ids);
            absl::Status s =
                table_->ReadRows(draw.keys, answer.rows(), answer.episode_ids(),
                                 answer.step_ids(), release);
            packed = std::move(answer).Finish();
            return s;
          });
      !s.ok()) {
    return s;
  }
  return packed;
}

absl::Status Shard::UpdatePriorities(
    const proto::UpdatePrioritiesRequest& request,
    proto::UpdatePrioritiesResponse* out) {
  if (request.keys_size() != request.priorities_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "UpdatePrioritiesRequest.priorities has ", request.priorities_size(),
        " values but keys has ", request.keys_size()));
  }
  if (request.keys_size() > kMaxPriorityUpdates) {
    return absl::InvalidArgumentError(
        absl::StrCat("UpdatePrioritiesRequest.keys has ", request.keys_size(),
                     " values, at most ", kMaxPriorityUpdates));
  }
  if (absl::Status s = CheckPriorities("UpdatePrioritiesRequest.priorities",
                                       request.priorities());
      !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&mu_);
  const uint64_t next_key = table_->Info().next_key;
  for (int i = 0; i < request.keys_size(); ++i) {
    if (request.keys(i) >= next_key) {
      return absl::InvalidArgumentError(absl::StrCat(
          "UpdatePrioritiesRequest.keys[", i, "] is ", request.keys(i),
          ", a key this shard never gave (next key ", next_key, ")"));
    }
  }
  uint32_t updated = 0, missing = 0;
  for (int i = 0; i < request.keys_size(); ++i) {
    if (!table_->Contains(request.keys(i))) {
      ++missing;
      continue;
    }
    sampler_->Set(table_->SlotOfKey(request.keys(i)), request.priorities(i));
    ++updated;
  }
  out->set_updated(updated);
  out->set_missing(missing);
  return absl::OkStatus();
}

void Shard::Stats(proto::ShardStats* out, bool per_actor) const {
  const TableInfo info = table_->Info();
  out->set_shard_id(options_.shard_id);
  out->set_size(info.size);
  out->set_capacity(info.capacity);
  out->set_inserts_total(info.inserts_total);
  out->set_observation_dim(info.observation_dim);
  out->set_action_dim(info.action_dim);
  const ActorCounts actors = table_->Actors(/*tracked=*/per_actor);
  for (const auto& [actor, count] : actors.tracked) {
    proto::ActorCount* a = out->add_per_actor();
    a->set_actor_id(actor);
    a->set_inserted(count);
  }
  out->set_other_actors_inserted(actors.other);
  out->set_max_tracked_actors(options_.max_tracked_actors);
  out->set_resident_bytes(ResidentBytes());
  const absl::Time now = absl::Now();
  out->set_uptime_seconds(absl::ToDoubleSeconds(now - start_));
  absl::MutexLock lock(&mu_);
  out->set_samples_total(samples_total_);
  out->set_checkpoints_total(checkpoints_written_);
  out->set_episodes_total(episodes_total_);
  for (double r : recent_returns_) out->add_recent_returns(r);
  out->set_insert_rate(insert_rate_.Rate(now));
  out->set_sample_rate(sample_rate_.Rate(now));
  out->set_storage_bytes(info.storage_bytes + sampler_->bytes());
  out->set_sampler(std::string(sampler_->name()));
  const RateLimiterInfo rl = rate_limiter_.Info(&mu_);
  proto::RateLimiterState* state = out->mutable_rate_limiter();
  state->set_min_size_to_sample(rl.options.min_size_to_sample);
  state->set_samples_per_insert(rl.options.samples_per_insert);
  state->set_error_buffer(rl.options.error_buffer);
  state->set_blocked_inserts(rl.blocked_inserts);
  state->set_blocked_samples(rl.blocked_samples);
}

absl::StatusOr<CheckpointWritten> Shard::Checkpoint(const std::string& path) {
  absl::MutexLock lock(&checkpoint_mu_);
  return CheckpointInSlices(path);
}

void Shard::UnsavedEvictionsLocked(uint64_t n, uint64_t* from,
                                   uint64_t* to) const {
  *from = *to = 0;
  if (copy_cursor_ >= copy_end_) return;
  // Without the table's lock: this runs in the condition an insert waits on,
  // which a Sample evaluates while it holds that lock (Shard::Sample).
  const uint64_t capacity = table_->capacity();
  const uint64_t next_key = table_->NextKeyUnlocked();
  // A batch larger than the table is refused by it: it evicts nothing.
  if (n > capacity || next_key + n <= capacity) return;
  *from = std::max(copy_cursor_, saved_end_);
  *to = std::max(*from, std::min(next_key + n - capacity, copy_end_));
}

bool Shard::CanSaveEvictionsLocked(uint64_t n) const {
  uint64_t from, to;
  UnsavedEvictionsLocked(n, &from, &to);
  return from == to ||
         saved_bytes_ + (to - from) * CheckpointItemBytes(copy_header_) <=
             kCheckpointSavedBytes;
}

void Shard::SaveEvictionsLocked(uint64_t n) {
  uint64_t from, to;
  UnsavedEvictionsLocked(n, &from, &to);
  if (from == to) return;
  SavedItems items{from, to, std::string()};
  EncodeCheckpointItems(copy_header_, *table_, *sampler_, from, to,
                        &items.bytes);
  saved_bytes_ += items.bytes.size();
  saved_.push_back(std::move(items));
  saved_end_ = to;
}

absl::StatusOr<CheckpointWritten> Shard::CheckpointInSlices(
    const std::string& path) {
  const bool drops_log = log_ != nullptr && path == durability_.checkpoint_path;
  // The snapshot: the header, and the log's length, which ends with the last
  // insert the snapshot holds (inserts are logged under mu_).
  CheckpointHeader header;
  uint64_t log_bytes = 0;
  bool log_error_before = false;
  {
    absl::MutexLock lock(&mu_);
    header.info = table_->Info();
    header.actors = table_->Actors();
    header.samples_total = samples_total_;
    header.priorities = sampler_->keeps_priorities();
    if (drops_log) log_bytes = log_->bytes();
    log_error_before = !log_error_.ok();
    copy_cursor_ = saved_end_ = header.info.oldest_key;
    copy_end_ = header.info.next_key;
    copy_header_ = header;
  }
  const uint64_t item_bytes = CheckpointItemBytes(header);
  absl::StatusOr<CheckpointWritten> written = WriteCheckpointInSlices(
      path, header, kCheckpointSliceItems,
      [&](uint64_t first_key, uint64_t end_key, std::string* out) {
        absl::MutexLock lock(&mu_);
        // Items evicted meanwhile come from saved_ (they lead), the rest
        // from the table.
        uint64_t key = first_key;
        while (key < end_key && !saved_.empty() &&
               saved_.front().first_key <= key) {
          SavedItems& front = saved_.front();
          const uint64_t stop = std::min(end_key, front.end_key);
          out->append(front.bytes, (key - front.first_key) * item_bytes,
                      (stop - key) * item_bytes);
          key = stop;
          if (stop == front.end_key) {
            saved_bytes_ -= front.bytes.size();
            saved_.pop_front();
          }
        }
        EncodeCheckpointItems(header, *table_, *sampler_, key, end_key, out);
        copy_cursor_ = end_key;
        saved_end_ = std::max(saved_end_, end_key);
        return absl::OkStatus();
      });
  {
    absl::MutexLock lock(&mu_);
    copy_cursor_ = copy_end_ = saved_end_ = 0;
    saved_.clear();
    saved_bytes_ = 0;
    if (written.ok()) ++checkpoints_written_;
  }
  if (!written.ok() || !drops_log) return written;
  // The checkpoint now holds every insert logged before log_bytes and is
  // durably renamed into place: those records go, the later ones stay. (A
  // kill between the two leaves records the checkpoint holds; recovery skips
  // them by key.)
  if (absl::Status s = log_->DropBefore(log_bytes); !s.ok()) {
    return absl::InternalError(absl::StrCat(
        "checkpoint ", path,
        " written, but the insert log was not cut back: ", s.message()));
  }
  absl::MutexLock lock(&mu_);
  // A record the table refused was logged before the snapshot (inserts are
  // refused from then on), so it is gone now.
  if (log_error_before) log_error_ = absl::OkStatus();
  auto_checkpoint_bytes_ = log_->bytes() + durability_.log_max_bytes;
  return written;
}

absl::StatusOr<std::unique_ptr<Shard>> Shard::Open(
    const ShardOptions& options, const DurabilityOptions& durability,
    ShardRecovery* recovery) {
  ShardRecovery ignored;
  if (recovery == nullptr) recovery = &ignored;
  *recovery = ShardRecovery();
  absl::StatusOr<std::unique_ptr<Shard>> shard =
      Restore(options, durability.checkpoint_path);
  if (shard.ok()) {
    recovery->checkpoint_found = true;
    recovery->checkpoint_items = (*shard)->table_->size();
  } else if (absl::IsNotFound(shard.status())) {
    shard = Create(options);
  }
  if (!shard.ok()) return shard.status();
  Shard* s = shard->get();
  absl::MutexLock lock(&s->mu_);
  absl::StatusOr<std::unique_ptr<InsertLog>> log = InsertLog::Open(
      durability.log_path, durability.log,
      [s, recovery](InsertLogRecord&& record) {
        s->mu_.AssertHeld();
        return s->ApplyLoggedLocked(std::move(record), recovery);
      },
      &recovery->log);
  if (!log.ok()) return log.status();
  s->rate_limiter_.Restore(&s->mu_, s->table_->size());
  s->log_ = *std::move(log);
  s->durability_ = durability;
  s->auto_checkpoint_bytes_ = s->log_->bytes() + durability.log_max_bytes;
  return shard;
}

absl::Status Shard::ApplyLoggedLocked(InsertLogRecord&& record,
                                      ShardRecovery* recovery) {
  const uint64_t n = static_cast<uint64_t>(record.batch.rewards_size());
  const uint64_t next_key = table_->Info().next_key;
  if (record.first_key + n <= next_key) {
    ++recovery->records_skipped;  // the checkpoint holds it
    return absl::OkStatus();
  }
  if (record.first_key != next_key) {
    return absl::DataLossError(absl::StrCat(
        "logged keys ", record.first_key, "..", record.first_key + n - 1,
        " do not continue the table, whose next key is ", next_key,
        " (a log from another checkpoint?)"));
  }
  if (!record.priorities.empty() && record.priorities.size() != n) {
    return absl::DataLossError(
        absl::StrCat("logged batch has ", n, " transitions but ",
                     record.priorities.size(), " priorities"));
  }
  // What Insert accepted: priorities finite and > 0; the default is 0 (none)
  // or such a priority.
  if (absl::Status s = CheckPriorities("logged priorities", record.priorities);
      !s.ok()) {
    return absl::DataLossError(s.message());
  }
  if (!(record.default_priority >= 0) ||
      !std::isfinite(record.default_priority)) {
    return absl::DataLossError(
        absl::StrCat("logged default priority is ", record.default_priority));
  }
  absl::StatusOr<KeyRange> keys = table_->Insert(record.batch);
  if (!keys.ok()) {
    return absl::DataLossError(absl::StrCat(
        "logged batch refused by the table: ", keys.status().message()));
  }
  if (sampler_->keeps_priorities()) {
    // The priority the batch was given at insert time; a log written by a
    // shard without priorities says 0: take the current maximum then.
    const float default_priority = record.default_priority > 0
                                       ? record.default_priority
                                       : sampler_->max_priority();
    for (uint64_t i = 0; i < n; ++i) {
      sampler_->Set(
          table_->SlotOfKey(keys->first_key + i),
          record.priorities.empty() ? default_priority : record.priorities[i]);
    }
  }
  ++recovery->records_replayed;
  recovery->transitions_replayed += n;
  return absl::OkStatus();
}

uint64_t Shard::checkpoint_failures() const {
  absl::MutexLock lock(&mu_);
  return checkpoint_failures_;
}

void Shard::Cancel() {
  absl::MutexLock lock(&mu_);
  rate_limiter_.Cancel(&mu_);
}

}  // namespace softq
