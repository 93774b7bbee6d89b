#include "tests/replay/fdatasync_spy.h"

#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace softq {
namespace testing {
namespace {

struct Calls {
  absl::Mutex mu;
  std::vector<SyncCall> calls ABSL_GUARDED_BY(mu);
};

Calls& AllCalls() {
  static Calls* const calls = new Calls;  // never destroyed: used at exit
  return *calls;
}

}  // namespace

std::vector<SyncCall> FdatasyncCalls(const std::string& path) {
  // The descriptor's name is the canonical one.
  char resolved[PATH_MAX];
  const std::string name =
      ::realpath(path.c_str(), resolved) != nullptr ? resolved : path;
  Calls& all = AllCalls();
  absl::MutexLock lock(&all.mu);
  std::vector<SyncCall> out;
  for (const SyncCall& c : all.calls) {
    if (c.path == name) out.push_back(c);
  }
  return out;
}

}  // namespace testing
}  // namespace softq

extern "C" int fdatasync(int fd) {
  softq::testing::SyncCall call;
  char target[PATH_MAX];
  const std::string link = absl::StrCat("/proc/self/fd/", fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
  if (n > 0) call.path.assign(target, static_cast<size_t>(n));
  struct stat st;
  if (::fstat(fd, &st) == 0) call.bytes = static_cast<uint64_t>(st.st_size);
  call.result = static_cast<int>(::syscall(SYS_fdatasync, fd));
  softq::testing::Calls& all = softq::testing::AllCalls();
  absl::MutexLock lock(&all.mu);
  all.calls.push_back(call);
  return call.result;
}
