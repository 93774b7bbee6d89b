#include "replay/memory_limit.h"

#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"

namespace softq {

std::optional<uint64_t> ReadCgroupMemoryLimit(const std::string& path) {
  std::ifstream file(path);
  uint64_t bytes = 0;
  if (!(file >> bytes)) return std::nullopt;  // missing, or "max"
  if (bytes >= (uint64_t{1} << 62)) return std::nullopt;
  return bytes;
}

MemoryLimit ProcessMemoryLimit() {
  MemoryLimit limit{UINT64_MAX, "physical memory"};
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) {
    limit.bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  }
  // The process's own cgroup, as a container sees it (its cgroup namespace's
  // root).
  for (const char* path : {"/sys/fs/cgroup/memory.max",
                           "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    const std::optional<uint64_t> cgroup = ReadCgroupMemoryLimit(path);
    if (cgroup.has_value() && *cgroup < limit.bytes) {
      limit = {*cgroup, std::string("the cgroup memory limit in ") + path};
    }
  }
  return limit;
}

absl::Status CheckFitsInMemory(uint64_t items, uint64_t bytes_per_item,
                               absl::string_view what) {
  const MemoryLimit limit = ProcessMemoryLimit();
  if (bytes_per_item == 0 || items <= limit.bytes / bytes_per_item)
    return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      what, " needs ",
      static_cast<double>(items) * static_cast<double>(bytes_per_item),
      " bytes (", bytes_per_item, " per item), more than the ", limit.bytes,
      " bytes of ", limit.source));
}

}  // namespace softq
