#include "replay/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/transition_check.h"
#include "replay/crc32.h"

namespace softq {
namespace {

constexpr char kMagic[8] = {'S', 'O', 'F', 'T', 'Q', 'R', 'P', 'L'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kHasIds = 1;
constexpr uint32_t kHasPriorities = 2;
constexpr uint64_t kHeaderBytes = 8 + 4 * 4 + 6 * 8;
constexpr uint64_t kActorBytes = 4 + 8;
// The entry that holds ActorCounts::other (real ids are below 2^31).
constexpr uint32_t kOtherActorsId = 0xffffffffu;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Buffered file writer that checksums what it writes, one pass per buffer.
class Writer {
 public:
  explicit Writer(int fd) : fd_(fd) { buffer_.reserve(kFlushBytes); }
  template <typename T>
  void Put(const T& value) {
    Append(&value, sizeof(T));
  }
  void Append(const void* data, size_t n) {
    buffer_.append(static_cast<const char*>(data), n);
    bytes_ += n;
    if (buffer_.size() >= kFlushBytes)
      Flush().IgnoreError();  // error kept in status_
  }
  absl::Status Flush() {
    crc_ = Crc32(crc_, buffer_.data(), buffer_.size());
    size_t done = 0;
    while (status_.ok() && done < buffer_.size()) {
      const ssize_t w =
          ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0)
        status_ = Errno("write");
      else
        done += static_cast<size_t>(w);
    }
    buffer_.clear();
    return status_;
  }
  // CRC-32 of every byte written so far.
  uint32_t crc() const { return Crc32(crc_, buffer_.data(), buffer_.size()); }
  uint64_t bytes() const { return bytes_; }

 private:
  static constexpr size_t kFlushBytes = 1 << 20;
  int fd_;
  std::string buffer_;
  uint32_t crc_ = 0;  // of the bytes flushed; buffer_'s are not in it yet
  uint64_t bytes_ = 0;
  absl::Status status_;
};

// Reads a file sequentially through a 1 MiB buffer, checksumming what it hands
// out: a restore holds the table and this buffer, not a copy of the file.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd), buffer_(kBufferBytes) {}
  template <typename T>
  bool Get(T* value) {
    return Read(value, sizeof(T));
  }
  // False when the file ends (or fails: `error()`) before `n` bytes.
  bool Read(void* out, size_t n) {
    char* to = static_cast<char*>(out);
    while (n > 0) {
      if (begin_ == end_ && !Fill()) return false;
      const size_t k = std::min(n, end_ - begin_);
      std::memcpy(to, buffer_.data() + begin_, k);
      begin_ += k;
      to += k;
      n -= k;
    }
    return true;
  }
  // CRC-32 of every byte read so far.
  uint32_t crc() {
    FoldCrc();
    return crc_;
  }
  const absl::Status& error() const { return error_; }

 private:
  static constexpr size_t kBufferBytes = 1 << 20;
  // Extends crc_ over the bytes handed out since the last fold: one pass per
  // buffer, not one call per field.
  void FoldCrc() {
    crc_ = Crc32(crc_, buffer_.data() + crc_begin_, begin_ - crc_begin_);
    crc_begin_ = begin_;
  }
  bool Fill() {
    FoldCrc();
    for (;;) {
      const ssize_t r = ::read(fd_, buffer_.data(), buffer_.size());
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) error_ = Errno("read");
      begin_ = crc_begin_ = 0;
      end_ = r > 0 ? static_cast<size_t>(r) : 0;
      return r > 0;
    }
  }
  int fd_;
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t crc_begin_ = 0;  // buffer_[crc_begin_, begin_) is not in crc_ yet
  uint32_t crc_ = 0;
  absl::Status error_;
};

absl::Status DataLoss(const std::string& path, const std::string& what) {
  return absl::DataLossError(
      absl::StrCat("checkpoint ", path, " refused: ", what));
}

}  // namespace

std::string CheckpointPath(const std::string& dir,
                           const std::string& shard_id) {
  return absl::StrCat(dir, "/replay-", shard_id, ".ckpt");
}

uint64_t CheckpointItemBytes(const CheckpointHeader& header) {
  return (2ull * header.info.observation_dim + header.info.action_dim + 1) *
             sizeof(float) +
         1 + (header.info.has_ids ? 12 : 0) + (header.priorities ? 4 : 0);
}

void EncodeCheckpointItems(const CheckpointHeader& header, const Table& table,
                           const Sampler& sampler, uint64_t first_key,
                           uint64_t end_key, std::string* out) {
  const uint32_t od = header.info.observation_dim;
  const uint32_t ad = header.info.action_dim;
  auto put = [out](const void* data, size_t n) {
    out->append(static_cast<const char*>(data), n);
  };
  table
      .ForEachItem(
          [&](uint64_t key, const ItemView& item) {
            const uint8_t done = item.done ? 1 : 0;
            put(item.observation, od * sizeof(float));
            put(item.action, ad * sizeof(float));
            put(&item.reward, sizeof(float));
            put(item.next_observation, od * sizeof(float));
            put(&done, 1);
            if (header.info.has_ids) {
              put(&item.episode_id, sizeof(uint64_t));
              put(&item.step_id, sizeof(uint32_t));
            }
            if (header.priorities) {
              const float p = sampler.Get(table.SlotOfKey(key));
              put(&p, sizeof(float));
            }
            return absl::OkStatus();
          },
          first_key, end_key)
      .IgnoreError();  // the callback never fails
}

absl::StatusOr<CheckpointWritten> WriteCheckpoint(const std::string& path,
                                                  const Table& table,
                                                  const Sampler& sampler,
                                                  uint64_t samples_total) {
  CheckpointHeader header;
  header.info = table.Info();
  header.actors = table.Actors();
  header.samples_total = samples_total;
  header.priorities = sampler.keeps_priorities();
  return WriteCheckpointInSlices(
      path, header, /*slice_items=*/4096,
      [&](uint64_t first_key, uint64_t end_key, std::string* out) {
        EncodeCheckpointItems(header, table, sampler, first_key, end_key, out);
        return absl::OkStatus();
      });
}

absl::StatusOr<CheckpointWritten> WriteCheckpointInSlices(
    const std::string& path, const CheckpointHeader& header,
    uint64_t slice_items, const ReadCheckpointItemsFn& read_items) {
  const TableInfo& info = header.info;
  const ActorCounts& actors = header.actors;
  const uint64_t samples_total = header.samples_total;
  // The reader's limit, checked here: a checkpoint written is one it reads.
  if (actors.tracked.size() > kMaxTrackedActors) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint ", path, " not written: the table counts ",
        actors.tracked.size(), " actor ids, more than a checkpoint holds (",
        kMaxTrackedActors, ")"));
  }
  const std::string tmp = path + ".tmp";
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno(absl::StrCat("open ", tmp));
  Writer w(fd);
  const uint32_t flags =
      (info.has_ids ? kHasIds : 0) | (header.priorities ? kHasPriorities : 0);
  w.Append(kMagic, sizeof(kMagic));
  w.Put(kVersion);
  w.Put(info.observation_dim);
  w.Put(info.action_dim);
  w.Put(flags);
  w.Put(info.capacity);
  w.Put(info.oldest_key);
  w.Put(info.next_key);
  w.Put(info.inserts_total);
  w.Put(samples_total);
  w.Put(static_cast<uint64_t>(actors.tracked.size() +
                              (actors.other > 0 ? 1 : 0)));
  for (const auto& [actor, count] : actors.tracked) {
    w.Put(actor);
    w.Put(count);
  }
  if (actors.other > 0) {
    w.Put(kOtherActorsId);
    w.Put(actors.other);
  }
  absl::Status items;
  std::string slice;
  for (uint64_t first = info.oldest_key; items.ok() && first < info.next_key;) {
    const uint64_t end = info.next_key - first > slice_items
                             ? first + slice_items
                             : info.next_key;
    slice.clear();
    items = read_items(first, end, &slice);
    w.Append(slice.data(), slice.size());
    first = end;
  }
  const uint32_t crc = w.crc();
  w.Put(crc);
  absl::Status s = items.ok() ? w.Flush() : items;
  if (s.ok() && ::fsync(fd) != 0) s = Errno(absl::StrCat("fsync ", tmp));
  if (::close(fd) != 0 && s.ok()) s = Errno(absl::StrCat("close ", tmp));
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    s = Errno(absl::StrCat("rename ", tmp, " to ", path));
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  // The rename is durable once the directory is synced; until then the caller
  // must not rely on it (the shard keeps its insert log on an error).
  std::string dir = path.substr(0, path.find_last_of('/') + 1);
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Errno(absl::StrCat("open directory ", dir));
  const absl::Status synced =
      ::fsync(dfd) == 0 ? absl::OkStatus()
                        : Errno(absl::StrCat("fsync directory ", dir));
  ::close(dfd);
  if (!synced.ok()) return synced;
  return CheckpointWritten{path, info.size, w.bytes()};
}

namespace {

// The file ended (or a read failed) before the length its header implies,
// checked up front: it changed while being read.
absl::Status ShortRead(const std::string& path, const Reader& r) {
  if (!r.error().ok()) {
    return absl::InternalError(
        absl::StrCat("checkpoint ", path, ": ", r.error().message()));
  }
  return DataLoss(path, "truncated while being read");
}

absl::StatusOr<RestoredTable> ReadOpenCheckpoint(
    int fd, uint64_t file_bytes, const std::string& path,
    const CheckpointExpectation& expectation) {
  Reader r(fd);
  char magic[8];
  uint32_t version = 0, od = 0, ad = 0, flags = 0;
  uint64_t capacity = 0, oldest = 0, next = 0, inserts_total = 0,
           samples_total = 0, actors = 0;
  if (file_bytes < kHeaderBytes + 4) {
    return DataLoss(path, absl::StrCat("truncated: ", file_bytes,
                                       " bytes, less than a header"));
  }
  const bool header_read = r.Read(magic, sizeof(magic)) && r.Get(&version) &&
                           r.Get(&od) && r.Get(&ad) && r.Get(&flags) &&
                           r.Get(&capacity) && r.Get(&oldest) && r.Get(&next) &&
                           r.Get(&inserts_total) && r.Get(&samples_total) &&
                           r.Get(&actors);
  if (!header_read) return ShortRead(path, r);
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    return DataLoss(path, "not a softq replay checkpoint (bad magic)");
  }
  if (version != kVersion) {
    return DataLoss(path, absl::StrCat("version ", version,
                                       ", this build reads ", kVersion));
  }
  const uint64_t count = next - oldest;
  // A shard checkpointed before its first insert has no dimensions yet.
  const bool dims_unset = od == 0 && ad == 0 && next == 0;
  if ((!dims_unset &&
       (od < 1 || od > kMaxObservationDim || ad < 1 || ad > kMaxActionDim)) ||
      capacity < 1 || next < oldest || count > capacity ||
      (flags & ~(kHasIds | kHasPriorities)) != 0 ||
      actors > kMaxCheckpointActorEntries ||
      (oldest != 0 && count != capacity)) {
    return DataLoss(
        path,
        absl::StrCat("corrupted header (observation_dim ", od, ", action_dim ",
                     ad, ", capacity ", capacity, ", keys [", oldest, ", ",
                     next, "), flags ", flags, ", actors ", actors, ")"));
  }
  if (capacity != expectation.capacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", path, " has capacity ", capacity,
                     " but --capacity=", expectation.capacity));
  }
  if (dims_unset) {
    od = expectation.observation_dim;
    ad = expectation.action_dim;
  }
  if (expectation.observation_dim != 0 &&
      (od != expectation.observation_dim || ad != expectation.action_dim)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint ", path, " has observation_dim ", od, " and action_dim ",
        ad, " but the flags say ", expectation.observation_dim, " and ",
        expectation.action_dim));
  }
  const uint64_t item_bytes = (2ull * od + ad + 1) * sizeof(float) + 1 +
                              ((flags & kHasIds) ? 12 : 0) +
                              ((flags & kHasPriorities) ? 4 : 0);
  const uint64_t expected =
      kHeaderBytes + actors * kActorBytes + count * item_bytes + 4;
  if (file_bytes != expected) {
    return DataLoss(path, absl::StrCat(file_bytes < expected ? "truncated"
                                                             : "trailing bytes",
                                       ": file has ", file_bytes,
                                       " bytes, header implies ", expected));
  }
  ActorCounts per_actor;
  for (uint64_t i = 0; i < actors; ++i) {
    uint32_t id = 0;
    uint64_t n = 0;
    if (!r.Get(&id) || !r.Get(&n)) return ShortRead(path, r);
    if (id == kOtherActorsId) {
      per_actor.other += n;
    } else {
      per_actor.tracked[id] = n;
    }
  }
  if (per_actor.tracked.size() > kMaxTrackedActors) {
    return DataLoss(
        path, absl::StrCat(per_actor.tracked.size(), " actor ids, more than ",
                           kMaxTrackedActors));
  }
  absl::StatusOr<std::unique_ptr<Table>> table = Table::Create(
      capacity, od, ad, oldest, expectation.bytes_beside_per_item);
  if (!table.ok()) return table.status();
  RestoredTable restored;
  restored.table = *std::move(table);
  restored.samples_total = samples_total;
  if (flags & kHasPriorities) restored.priorities.reserve(count);
  constexpr uint64_t kChunk = 4096;
  for (uint64_t first = 0; first < count; first += kChunk) {
    const uint64_t n = std::min(kChunk, count - first);
    proto::TransitionBatch batch;
    batch.set_observation_dim(od);
    batch.set_action_dim(ad);
    batch.mutable_observations()->Resize(static_cast<int>(n * od), 0.0f);
    batch.mutable_next_observations()->Resize(static_cast<int>(n * od), 0.0f);
    batch.mutable_actions()->Resize(static_cast<int>(n * ad), 0.0f);
    batch.mutable_rewards()->Resize(static_cast<int>(n), 0.0f);
    for (uint64_t i = 0; i < n; ++i) {
      float reward = 0;
      uint8_t done_byte = 0;
      uint64_t episode = 0;
      uint32_t step = 0;
      float p = 1;
      const bool item_read =
          r.Read(batch.mutable_observations()->mutable_data() + i * od,
                 od * sizeof(float)) &&
          r.Read(batch.mutable_actions()->mutable_data() + i * ad,
                 ad * sizeof(float)) &&
          r.Get(&reward) &&
          r.Read(batch.mutable_next_observations()->mutable_data() + i * od,
                 od * sizeof(float)) &&
          r.Get(&done_byte) &&
          (!(flags & kHasIds) || (r.Get(&episode) && r.Get(&step))) &&
          (!(flags & kHasPriorities) || r.Get(&p));
      if (!item_read) return ShortRead(path, r);
      batch.set_rewards(static_cast<int>(i), reward);
      batch.add_dones(done_byte != 0);
      if (flags & kHasIds) {
        batch.add_episode_ids(episode);
        batch.add_step_ids(step);
      }
      if (flags & kHasPriorities) {
        if (!(p > 0) || !std::isfinite(p)) {
          return DataLoss(path, absl::StrCat("priority of key ",
                                             oldest + first + i, " is ", p));
        }
        restored.priorities.push_back(p);
      }
    }
    if (absl::StatusOr<KeyRange> k = restored.table->Insert(batch); !k.ok()) {
      return DataLoss(path, std::string(k.status().message()));
    }
  }
  const uint32_t crc = r.crc();
  uint32_t stored_crc = 0;
  if (!r.Get(&stored_crc)) return ShortRead(path, r);
  if (crc != stored_crc) {
    return DataLoss(path, absl::StrCat("checksum mismatch (stored ", stored_crc,
                                       ", computed ", crc, ")"));
  }
  restored.table->SetCounters(inserts_total, std::move(per_actor));
  return restored;
}

}  // namespace

absl::StatusOr<RestoredTable> ReadCheckpoint(
    const std::string& path, const CheckpointExpectation& expectation) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return absl::NotFoundError(absl::StrCat("no checkpoint at ", path));
    return Errno(absl::StrCat("open ", path));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const absl::Status s = Errno(absl::StrCat("stat ", path));
    ::close(fd);
    return s;
  }
  absl::StatusOr<RestoredTable> restored = ReadOpenCheckpoint(
      fd, static_cast<uint64_t>(st.st_size), path, expectation);
  ::close(fd);
  return restored;
}

}  // namespace softq
