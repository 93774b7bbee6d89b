// Write-ahead log of one shard's inserts: each batch the shard stores is
// appended as one checksummed record before the insert is acknowledged, and on
// restart the records are handed back in order to be re-inserted on top of the
// checkpoint. Framing only: what a record means (keys, priorities) is the
// shard's business (replay/shard.h).
//
// Thread-safe: Append, Reset and the accessors take the log's own lock.
//
// Format (native little-endian, like the checkpoint):
//   file    "SOFTQWAL" u32 version=1, then records until the end of the file
//   record  u32 batch_bytes, u32 priority_count, u64 first_key,
//           f32 default_priority, u32 payload_crc, u32 header_crc,
//           payload: priority_count x f32, then batch_bytes of serialized
//           proto::TransitionBatch
//   header_crc: CRC-32C of the 24 record bytes before it; payload_crc:
//   CRC-32C of the payload (computed by the caller before taking any lock).
//   CRC-32C (replay/crc32.h) rather than the checkpoint's CRC-32: it has a CPU
//   instruction, and the log is checksummed on the insert path.
//
// Durability: Append returns once the record is written with write(2), i.e. in
// the kernel's page cache. That survives the death of the process (kill -9, a
// crash) but not of the machine (power loss, kernel panic). With
// InsertLogOptions::fsync each Append also fdatasync()s before returning, which
// survives a machine crash at the cost of one disk flush per batch.
//
// Recovery (Open of an existing log): an existing file shorter than its header
// is started anew and reported (InsertLogRecovery::short_file). Records are
// read in order. An incomplete
// record at the end of the file (a write cut short by the kill), a bad last
// record that ends exactly at the end of the file, or a bad record followed by
// nothing but zero bytes (a machine crash without fsync) is a torn tail: it is
// reported in InsertLogRecovery, cut off, and never acknowledged anyway. A bad
// record followed by other data is corruption: DataLoss naming the file and
// offset, and the log is left as it is (the operator decides).
#ifndef SOFTQ_REPLAY_INSERT_LOG_H_
#define SOFTQ_REPLAY_INSERT_LOG_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "proto/transition.pb.h"

namespace softq {

struct InsertLogOptions {
  // fdatasync() after every Append and Reset (survives machine crashes; slow).
  bool fsync = false;
};

// One logged insert, as handed back by recovery.
struct InsertLogRecord {
  uint64_t first_key = 0;  // key the shard gave the batch's first transition
  // Priority each transition got when `priorities` is empty (the shard's
  // maximum at insert time; 0 for samplers without priorities).
  float default_priority = 0;
  std::vector<float> priorities;  // empty, or one per transition
  proto::TransitionBatch batch;
};

struct InsertLogRecovery {
  uint64_t records = 0;      // records handed to `apply`
  uint64_t transitions = 0;  // transitions in them
  uint64_t valid_bytes = 0;  // log length after recovery (header included)
  uint64_t torn_bytes = 0;   // bytes of a torn tail cut off (0: none)
  uint64_t torn_offset = 0;  // where the torn tail began
  // The file was there but shorter than its header (short_file_bytes < 12: cut
  // by hand or a damaged file system, or a creation cut short): whatever it
  // held is gone, and it was started anew. Worth a line to the operator.
  bool short_file = false;
  uint64_t short_file_bytes = 0;
};

// Length of a log holding no record (its header).
inline constexpr int64_t kEmptyInsertLogBytes = 12;

// "<dir>/replay-<shard_id>.wal", next to CheckpointPath's file.
std::string InsertLogPath(const std::string& dir, const std::string& shard_id);

// CRC-32C of a record's payload, for Append's `payload_crc`.
uint32_t InsertLogPayloadCrc(absl::Span<const float> priorities,
                             absl::string_view batch_bytes);

class InsertLog {
 public:
  using ApplyFn = std::function<absl::Status(InsertLogRecord&&)>;

  // Opens the log at `path`, creating it (with its header) when missing. An
  // existing log is recovered first: each good record goes to `apply` in file
  // order (an error from `apply` stops recovery and is returned), a torn tail
  // is cut off; corruption gives DataLoss naming the offset. Internal (errno
  // text) when the file system fails. `recovery` (may be null) gets the counts.
  static absl::StatusOr<std::unique_ptr<InsertLog>> Open(
      const std::string& path, const InsertLogOptions& options,
      const ApplyFn& apply, InsertLogRecovery* recovery);

  ~InsertLog();
  InsertLog(const InsertLog&) = delete;
  InsertLog& operator=(const InsertLog&) = delete;

  // Appends one record with a single writev(2) (plus fdatasync with
  // options.fsync). `batch_bytes` is the serialized TransitionBatch and
  // `payload_crc` is InsertLogPayloadCrc(priorities, batch_bytes). On failure
  // returns Internal with the errno text and cuts the file back to before the
  // record; if even that fails, this and every later Append fail until a Reset
  // succeeds.
  absl::Status Append(uint64_t first_key, float default_priority,
                      absl::Span<const float> priorities,
                      absl::string_view batch_bytes, uint32_t payload_crc)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Cuts the log back to `bytes`, a length it had before the records after it
  // were appended (a record the caller could not act on). On failure every
  // later Append fails until a Reset succeeds.
  absl::Status CutBack(uint64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);

  // Empties the log (keeps the header): call once a checkpoint holding every
  // logged insert is durably in place.
  absl::Status Reset() ABSL_LOCKS_EXCLUDED(mu_);

  // Drops the records before byte `offset` (a length the log had: records
  // end there), keeping those after it: call once a checkpoint holding every
  // insert logged before `offset` is durably in place. The records after it
  // are copied to "<path>.tmp" (most of them without the lock, so Append
  // waits only for the last few) which is renamed over the log: a kill at any
  // point leaves the old log or the new one whole. On failure the log is
  // unchanged. REQUIRES: not called concurrently with itself or Reset.
  absl::Status DropBefore(uint64_t offset) ABSL_LOCKS_EXCLUDED(mu_);

  // Current length of the file in bytes (header included).
  uint64_t bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& path() const { return path_; }

 private:
  InsertLog(std::string path, const InsertLogOptions& options, int fd,
            uint64_t bytes);

  const std::string path_;
  const InsertLogOptions options_;
  mutable absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);  // O_APPEND; replaced only by DropBefore
  uint64_t bytes_ ABSL_GUARDED_BY(mu_);
  absl::Status broken_ ABSL_GUARDED_BY(mu_);  // non-OK: the tail is unknown
};

}  // namespace softq

#endif  // SOFTQ_REPLAY_INSERT_LOG_H_
