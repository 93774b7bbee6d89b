// Checkpoint file of one shard: the table's items (and priorities, for
// prioritized shards) and counters, written atomically and read back whole or
// not at all.
//
// Format (native little-endian; a checkpoint moves between machines of one
// architecture):
//   header  "SOFTQRPL" u32 version=1 u32 observation_dim u32 action_dim u32
//   flags
//           (1 = episode/step ids, 2 = priorities) u64 capacity u64 oldest_key
//           u64 next_key u64 inserts_total u64 samples_total u64 actor_count
//   actors  actor_count x (u32 actor_id, u64 inserted); actor_id 0xffffffff
//           (never a real one: ids are below 2^31) holds ActorCounts::other,
//           so actor_count <= kMaxCheckpointActorEntries
//   items   next_key - oldest_key items in key order: observation, action,
//   reward,
//           next_observation (floats), u8 done, [u64 episode_id u32 step_id],
//           [f32 priority]
//   trailer u32 CRC-32 of every byte before it
// Writing goes to "<path>.tmp", fsync, rename over <path>, fsync of the
// directory. Reading checks magic, version, sizes against the file length, then
// builds a new Table in one pass through a 1 MiB buffer (the file is never held
// whole) and verifies the CRC before returning it: a truncated or corrupted
// file yields DataLoss and nothing else. Functions are thread-safe
// (they touch only their arguments).
#ifndef SOFTQ_REPLAY_CHECKPOINT_H_
#define SOFTQ_REPLAY_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "replay/sampler.h"
#include "replay/table.h"

namespace softq {

// The most actor entries a checkpoint holds: every id a table tracks
// (kMaxTrackedActors) and its `other` count. The writer refuses a table with
// more (nothing written), the reader a file that names more.
inline constexpr uint64_t kMaxCheckpointActorEntries = kMaxTrackedActors + 1;

struct CheckpointWritten {
  std::string path;
  uint64_t items = 0;
  uint64_t bytes = 0;
};

struct RestoredTable {
  std::unique_ptr<Table> table;
  // One per held item in key order when the file carries priorities, else
  // empty.
  std::vector<float> priorities;
  uint64_t samples_total = 0;
};

// "<dir>/replay-<shard_id>.ckpt".
std::string CheckpointPath(const std::string& dir, const std::string& shard_id);

// Writes `table` (with `sampler`'s priorities when it keeps them) to `path`.
// REQUIRES: no insert into `table` and no sampler change while it runs (the
// shard holds its lock). FailedPrecondition, before any file is touched, when
// the table tracks more than kMaxTrackedActors actor ids (possible only through
// Table::SetCounters). Internal (with errno text) when the file system fails;
// the old checkpoint is then intact, unless only the directory's fsync failed
// (the new file is in place, but its rename may not survive a power loss).
absl::StatusOr<CheckpointWritten> WriteCheckpoint(const std::string& path,
                                                  const Table& table,
                                                  const Sampler& sampler,
                                                  uint64_t samples_total);

// What a checkpoint's header holds, taken at one instant: the snapshot whose
// items [info.oldest_key, info.next_key) the file holds.
struct CheckpointHeader {
  TableInfo info;
  ActorCounts actors;
  uint64_t samples_total = 0;
  bool priorities = false;  // items carry the sampler's priorities
};

// Appends to `out` the file's encoding of `table`'s items with keys in
// [first_key, end_key), in the layout `header` names (ids, priorities from
// `sampler`). REQUIRES: those keys held, no insert and no sampler change
// while it runs (the shard's lock).
void EncodeCheckpointItems(const CheckpointHeader& header, const Table& table,
                           const Sampler& sampler, uint64_t first_key,
                           uint64_t end_key, std::string* out);

// Bytes of one item in the layout `header` names.
uint64_t CheckpointItemBytes(const CheckpointHeader& header);

// Appends the encoding of items [first_key, end_key) to `out`, or fails.
using ReadCheckpointItemsFn = std::function<absl::Status(
    uint64_t first_key, uint64_t end_key, std::string* out)>;

// Writes the checkpoint of `header`'s snapshot, its items fetched in key order
// by `read_items`, at most `slice_items` keys per call: each call may take and
// drop the caller's lock, so inserts and samples run between slices (the
// caller keeps the snapshot's items from being overwritten until they are
// read). Errors and file handling as WriteCheckpoint; an error from
// `read_items` is returned and nothing replaces <path>.
absl::StatusOr<CheckpointWritten> WriteCheckpointInSlices(
    const std::string& path, const CheckpointHeader& header,
    uint64_t slice_items, const ReadCheckpointItemsFn& read_items);

// What the reader of a checkpoint expects of it, checked against the header
// before anything is allocated: a damaged or foreign header must not make the
// reader allocate the table it names.
struct CheckpointExpectation {
  uint64_t capacity = 0;         // must equal the checkpoint's
  uint32_t observation_dim = 0;  // 0: any; else must equal the checkpoint's
  uint32_t action_dim = 0;       // (with observation_dim)
  // Memory others keep per slot of the table (a prioritized sampler's), counted
  // with the table's storage when checking that the restored table fits.
  uint64_t bytes_beside_per_item = 0;
};

// Reads `path`. NotFound when it does not exist; DataLoss naming the problem
// when it is truncated, corrupted or of another format/version;
// InvalidArgument when its capacity or dimensions are not `expected`;
// ResourceExhausted when its table would not fit this process's memory.
absl::StatusOr<RestoredTable> ReadCheckpoint(
    const std::string& path, const CheckpointExpectation& expected);

}  // namespace softq

#endif  // SOFTQ_REPLAY_CHECKPOINT_H_
