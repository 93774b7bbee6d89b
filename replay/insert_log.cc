#include "replay/insert_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "replay/crc32.h"

namespace softq {
namespace {

constexpr char kMagic[8] = {'S', 'O', 'F', 'T', 'Q', 'W', 'A', 'L'};
constexpr uint32_t kVersion = 1;
constexpr uint64_t kFileHeaderBytes = sizeof(kMagic) + 4;
static_assert(kFileHeaderBytes == kEmptyInsertLogBytes);
constexpr uint64_t kRecordHeaderBytes = 4 + 4 + 8 + 4 + 4 + 4;
// A gRPC message is at most INT32_MAX bytes; a larger length is garbage.
constexpr uint64_t kMaxBatchBytes = INT32_MAX;

absl::Status Errno(const std::string& what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

struct RecordHeader {
  uint32_t batch_bytes = 0;
  uint32_t priority_count = 0;
  uint64_t first_key = 0;
  float default_priority = 0;
  uint32_t payload_crc = 0;
};

void EncodeHeader(const RecordHeader& h, char* out) {
  std::memcpy(out, &h.batch_bytes, 4);
  std::memcpy(out + 4, &h.priority_count, 4);
  std::memcpy(out + 8, &h.first_key, 8);
  std::memcpy(out + 16, &h.default_priority, 4);
  std::memcpy(out + 20, &h.payload_crc, 4);
  const uint32_t crc = Crc32c(0, out, 24);
  std::memcpy(out + 24, &crc, 4);
}

// False when the header's own checksum fails.
bool DecodeHeader(const char* in, RecordHeader* h) {
  uint32_t crc;
  std::memcpy(&crc, in + 24, 4);
  if (Crc32c(0, in, 24) != crc) return false;
  std::memcpy(&h->batch_bytes, in, 4);
  std::memcpy(&h->priority_count, in + 4, 4);
  std::memcpy(&h->first_key, in + 8, 8);
  std::memcpy(&h->default_priority, in + 16, 4);
  std::memcpy(&h->payload_crc, in + 20, 4);
  return true;
}

// Reads exactly n bytes at `offset`; false on a short read or an error (errno
// set then).
bool ReadAt(int fd, uint64_t offset, void* out, size_t n) {
  char* p = static_cast<char*>(out);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

// True when every byte from `offset` to `size` is zero (a tail the file
// system allocated but a machine crash never filled).
bool AllZero(int fd, uint64_t offset, uint64_t size) {
  char buffer[1 << 16];
  while (offset < size) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(sizeof(buffer), size - offset));
    if (!ReadAt(fd, offset, buffer, n)) return false;
    for (size_t i = 0; i < n; ++i) {
      if (buffer[i] != 0) return false;
    }
    offset += n;
  }
  return true;
}

absl::Status WriteAll(int fd, const void* data, size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno("write");
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

absl::Status SyncDirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir =
      slash == std::string::npos ? "." : path.substr(0, slash);
  const int fd = ::open(dir.empty() ? "/" : dir.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat("open ", dir));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno(absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

// Reads the records of the open log `fd` (size `size`, header checked), calls
// `apply` on each and fills `recovery`. DataLoss on corruption.
absl::Status Recover(const std::string& path, int fd, uint64_t size,
                     const InsertLog::ApplyFn& apply,
                     InsertLogRecovery* recovery) {
  uint64_t offset = kFileHeaderBytes;
  std::string payload;
  auto torn = [&](uint64_t at) {
    recovery->torn_offset = at;
    recovery->torn_bytes = size - at;
    return absl::OkStatus();
  };
  auto bad = [&](uint64_t at, uint64_t record_end, const std::string& what) {
    // The last record, or garbage followed only by zeros: a torn tail.
    if (record_end == size || AllZero(fd, at, size)) return torn(at);
    return absl::DataLossError(absl::StrCat(
        "insert log ", path, ": ", what, " in the record at offset ", at,
        " of ", size,
        " bytes, with more data after it (move the file aside to start from "
        "the checkpoint alone)"));
  };
  while (offset < size) {
    char raw[kRecordHeaderBytes];
    if (size - offset < kRecordHeaderBytes) return torn(offset);
    if (!ReadAt(fd, offset, raw, sizeof(raw))) {
      return Errno(absl::StrCat("read ", path));
    }
    RecordHeader h;
    if (!DecodeHeader(raw, &h)) {
      return bad(offset, 0, "the header checksum does not match");
    }
    const uint64_t payload_bytes =
        uint64_t{h.priority_count} * sizeof(float) + h.batch_bytes;
    if (h.batch_bytes > kMaxBatchBytes) {
      return bad(offset, 0, absl::StrCat("batch length ", h.batch_bytes));
    }
    const uint64_t end = offset + kRecordHeaderBytes + payload_bytes;
    if (end > size) return torn(offset);  // the write was cut short
    payload.resize(payload_bytes);
    if (!ReadAt(fd, offset + kRecordHeaderBytes, payload.data(),
                payload.size())) {
      return Errno(absl::StrCat("read ", path));
    }
    if (Crc32c(0, payload.data(), payload.size()) != h.payload_crc) {
      return bad(offset, end, "the payload checksum does not match");
    }
    InsertLogRecord record;
    record.first_key = h.first_key;
    record.default_priority = h.default_priority;
    record.priorities.resize(h.priority_count);
    std::memcpy(record.priorities.data(), payload.data(),
                record.priorities.size() * sizeof(float));
    const char* batch =
        payload.data() + record.priorities.size() * sizeof(float);
    if (!record.batch.ParseFromArray(batch, static_cast<int>(h.batch_bytes))) {
      return bad(offset, end, "the batch does not parse");
    }
    const uint64_t transitions =
        static_cast<uint64_t>(record.batch.rewards_size());
    if (absl::Status s = apply(std::move(record)); !s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("insert log ", path, ": record at offset ",
                                 offset, ": ", s.message()));
    }
    ++recovery->records;
    recovery->transitions += transitions;
    offset = end;
  }
  return absl::OkStatus();
}

}  // namespace

std::string InsertLogPath(const std::string& dir, const std::string& shard_id) {
  return absl::StrCat(dir, "/replay-", shard_id, ".wal");
}

uint32_t InsertLogPayloadCrc(absl::Span<const float> priorities,
                             absl::string_view batch_bytes) {
  const uint32_t crc =
      Crc32c(0, priorities.data(), priorities.size() * sizeof(float));
  return Crc32c(crc, batch_bytes.data(), batch_bytes.size());
}

absl::StatusOr<std::unique_ptr<InsertLog>> InsertLog::Open(
    const std::string& path, const InsertLogOptions& options,
    const ApplyFn& apply, InsertLogRecovery* recovery) {
  InsertLogRecovery ignored;
  if (recovery == nullptr) recovery = &ignored;
  *recovery = InsertLogRecovery();
  // Opened without O_CREAT first, to tell a new log from one cut short.
  bool existed = true;
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    existed = false;
    fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  if (fd < 0) return Errno(absl::StrCat("open ", path));
  auto fail = [fd](absl::Status s) {
    ::close(fd);
    return s;
  };
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail(Errno(absl::StrCat("stat ", path)));
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < kFileHeaderBytes) {
    // New, or shorter than its header: a creation cut short before the header
    // was whole, or a file cut by something else (reported).
    if (existed) {
      recovery->short_file = true;
      recovery->short_file_bytes = size;
    }
    char header[kFileHeaderBytes];
    std::memcpy(header, kMagic, sizeof(kMagic));
    std::memcpy(header + sizeof(kMagic), &kVersion, 4);
    if (::ftruncate(fd, 0) != 0) {
      return fail(Errno(absl::StrCat("truncate ", path)));
    }
    if (absl::Status s = WriteAll(fd, header, sizeof(header)); !s.ok()) {
      return fail(
          absl::Status(s.code(), absl::StrCat(path, ": ", s.message())));
    }
    if (::fsync(fd) != 0) return fail(Errno(absl::StrCat("fsync ", path)));
    if (absl::Status s = SyncDirectoryOf(path); !s.ok()) return fail(s);
    recovery->valid_bytes = kFileHeaderBytes;
    return std::unique_ptr<InsertLog>(
        new InsertLog(path, options, fd, kFileHeaderBytes));
  }
  char header[kFileHeaderBytes];
  if (!ReadAt(fd, 0, header, sizeof(header))) {
    return fail(Errno(absl::StrCat("read ", path)));
  }
  uint32_t version;
  std::memcpy(&version, header + sizeof(kMagic), 4);
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0 || version != kVersion) {
    return fail(absl::DataLossError(absl::StrCat(
        "insert log ", path, ": not a version ", kVersion, " insert log")));
  }
  if (absl::Status s = Recover(path, fd, size, apply, recovery); !s.ok()) {
    return fail(s);
  }
  recovery->valid_bytes = size - recovery->torn_bytes;
  if (recovery->torn_bytes > 0) {
    if (::ftruncate(fd, static_cast<off_t>(recovery->valid_bytes)) != 0) {
      return fail(Errno(absl::StrCat("truncate ", path)));
    }
    if (options.fsync && ::fdatasync(fd) != 0) {
      return fail(Errno(absl::StrCat("fdatasync ", path)));
    }
  }
  return std::unique_ptr<InsertLog>(
      new InsertLog(path, options, fd, recovery->valid_bytes));
}

InsertLog::InsertLog(std::string path, const InsertLogOptions& options, int fd,
                     uint64_t bytes)
    : path_(std::move(path)), options_(options), fd_(fd), bytes_(bytes) {}

InsertLog::~InsertLog() {
  absl::MutexLock lock(&mu_);
  ::close(fd_);
}

absl::Status InsertLog::Append(uint64_t first_key, float default_priority,
                               absl::Span<const float> priorities,
                               absl::string_view batch_bytes,
                               uint32_t payload_crc) {
  if (batch_bytes.size() > kMaxBatchBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("insert log ", path_, ": a batch of ", batch_bytes.size(),
                     " bytes is too large to log"));
  }
  RecordHeader h;
  h.batch_bytes = static_cast<uint32_t>(batch_bytes.size());
  h.priority_count = static_cast<uint32_t>(priorities.size());
  h.first_key = first_key;
  h.default_priority = default_priority;
  h.payload_crc = payload_crc;
  char header[kRecordHeaderBytes];
  EncodeHeader(h, header);
  iovec iov[3];
  iov[0] = {header, sizeof(header)};
  iov[1] = {const_cast<float*>(priorities.data()),
            priorities.size() * sizeof(float)};
  iov[2] = {const_cast<char*>(batch_bytes.data()), batch_bytes.size()};
  const uint64_t total = sizeof(header) + iov[1].iov_len + iov[2].iov_len;

  absl::MutexLock lock(&mu_);
  if (!broken_.ok()) return broken_;
  absl::Status status;
  int first = 0;
  while (first < 3) {
    const ssize_t w = ::writev(fd_, iov + first, 3 - first);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      status = Errno(absl::StrCat("write ", path_));
      break;
    }
    // A short write (rare: a signal, a full disk): go on after what was taken.
    size_t done = static_cast<size_t>(w);
    while (first < 3 && done >= iov[first].iov_len) {
      done -= iov[first].iov_len;
      ++first;
    }
    if (first < 3) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + done;
      iov[first].iov_len -= done;
    }
  }
  if (status.ok() && options_.fsync && ::fdatasync(fd_) != 0) {
    status = Errno(absl::StrCat("fdatasync ", path_));
  }
  if (!status.ok()) {
    // Take the partial record back so that later records follow good ones.
    if (::ftruncate(fd_, static_cast<off_t>(bytes_)) != 0) {
      broken_ = absl::InternalError(absl::StrCat(
          "insert log ", path_, " could not be cut back after a failed write (",
          status.message(), "): refusing inserts until a checkpoint"));
    }
    return status;
  }
  bytes_ += total;
  return absl::OkStatus();
}

absl::Status InsertLog::CutBack(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (bytes < kFileHeaderBytes || bytes > bytes_) {
    return absl::InvalidArgumentError(
        absl::StrCat("insert log ", path_, ": cannot cut back to ", bytes,
                     " bytes from ", bytes_));
  }
  absl::Status status;
  if (::ftruncate(fd_, static_cast<off_t>(bytes)) != 0) {
    status = Errno(absl::StrCat("truncate ", path_));
  } else if (options_.fsync && ::fdatasync(fd_) != 0) {
    status = Errno(absl::StrCat("fdatasync ", path_));
  }
  if (!status.ok()) {
    broken_ = absl::InternalError(absl::StrCat(
        "insert log ", path_, " could not be cut back (", status.message(),
        "): refusing inserts until a checkpoint"));
    return status;
  }
  bytes_ = bytes;
  return absl::OkStatus();
}

absl::Status InsertLog::Reset() {
  absl::MutexLock lock(&mu_);
  if (::ftruncate(fd_, static_cast<off_t>(kFileHeaderBytes)) != 0) {
    return Errno(absl::StrCat("truncate ", path_));
  }
  bytes_ = kFileHeaderBytes;
  if (options_.fsync && ::fdatasync(fd_) != 0) {
    return Errno(absl::StrCat("fdatasync ", path_));
  }
  broken_ = absl::OkStatus();
  return absl::OkStatus();
}

namespace {

// Appends bytes [from, to) of `src` to `dst`.
absl::Status CopyRange(int src, uint64_t from, uint64_t to, int dst,
                       const std::string& what) {
  std::vector<char> buffer(std::min<uint64_t>(to - from, 1 << 20));
  while (from < to) {
    const size_t n = std::min<uint64_t>(to - from, buffer.size());
    if (!ReadAt(src, from, buffer.data(), n)) {
      return Errno(absl::StrCat("read ", what));
    }
    if (absl::Status s = WriteAll(dst, buffer.data(), n); !s.ok()) return s;
    from += n;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InsertLog::DropBefore(uint64_t offset) {
  uint64_t copied = 0;
  int fd = -1;
  {
    absl::MutexLock lock(&mu_);
    if (offset < kFileHeaderBytes || offset > bytes_) {
      return absl::InvalidArgumentError(
          absl::StrCat("insert log ", path_, ": cannot drop the bytes before ",
                       offset, " of ", bytes_));
    }
    copied = bytes_;
    fd = fd_;  // only this method replaces it
  }
  const std::string tmp = path_ + ".tmp";
  const int out = ::open(
      tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) return Errno(absl::StrCat("open ", tmp));
  auto fail = [&](absl::Status s) {
    ::close(out);
    ::unlink(tmp.c_str());
    return s;
  };
  char header[kFileHeaderBytes];
  std::memcpy(header, kMagic, sizeof(kMagic));
  std::memcpy(header + sizeof(kMagic), &kVersion, 4);
  if (absl::Status s = WriteAll(out, header, sizeof(header)); !s.ok()) {
    return fail(s);
  }
  // Records up to `copied` no longer change (CutBack only takes back the last
  // record before the caller's next Append): copied without the lock.
  if (absl::Status s = CopyRange(fd, offset, copied, out, path_); !s.ok()) {
    return fail(s);
  }
  absl::MutexLock lock(&mu_);
  if (bytes_ < copied) {  // the last record copied was cut back meanwhile
    if (bytes_ < offset ||
        ::ftruncate(
            out, static_cast<off_t>(kFileHeaderBytes + bytes_ - offset)) != 0) {
      return fail(Errno(absl::StrCat("truncate ", tmp)));
    }
  } else if (absl::Status s = CopyRange(fd_, copied, bytes_, out, path_);
             !s.ok()) {
    return fail(s);
  }
  if (options_.fsync && ::fdatasync(out) != 0) {
    return fail(Errno(absl::StrCat("fdatasync ", tmp)));
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return fail(Errno(absl::StrCat("rename ", tmp, " to ", path_)));
  }
  ::close(fd_);
  fd_ = out;
  bytes_ = kFileHeaderBytes + bytes_ - offset;
  if (bytes_ == kFileHeaderBytes) broken_ = absl::OkStatus();
  if (options_.fsync) return SyncDirectoryOf(path_);
  return absl::OkStatus();
}

uint64_t InsertLog::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

}  // namespace softq
