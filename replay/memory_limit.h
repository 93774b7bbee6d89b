// How much memory this process may use: physical memory, or its cgroup's memory
// limit when that is lower (a container's, e.g. Kubernetes'
// resources.limits.memory). A table commits its storage as it fills, so it
// checks its size against this up front: an oversized table is refused with the
// sizes named instead of being OOM-killed later. Thread-safe.
#ifndef SOFTQ_REPLAY_MEMORY_LIMIT_H_
#define SOFTQ_REPLAY_MEMORY_LIMIT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace softq {

struct MemoryLimit {
  uint64_t bytes = 0;
  std::string
      source;  // "physical memory" or "the cgroup memory limit in <file>"
};

MemoryLimit ProcessMemoryLimit();

// OK when `items` x `bytes_per_item` fits ProcessMemoryLimit() (compared
// without overflow); else RESOURCE_EXHAUSTED: "<what> needs N bytes (B per
// item), more than the L bytes of <source>".
absl::Status CheckFitsInMemory(uint64_t items, uint64_t bytes_per_item,
                               absl::string_view what);

// A cgroup limit file's value (cgroup v2 memory.max, v1 memory.limit_in_bytes):
// nullopt when the file is missing or unreadable, or says "max" or a value no
// machine has (v1's "unlimited" is 2^63 rounded down to a page).
std::optional<uint64_t> ReadCgroupMemoryLimit(const std::string& path);

}  // namespace softq

#endif  // SOFTQ_REPLAY_MEMORY_LIMIT_H_
