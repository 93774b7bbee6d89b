// fdatasync_spy: a test binary that lists fdatasync_spy.cc in its srcs gets an
// fdatasync(2) of its own, defined in the executable, which the dynamic linker
// searches before libc: the project's libraries (replay/insert_log.cc) reach
// it too. It records the file and that file's length at each call, then makes
// the real system call. Thread-safe.
#ifndef SOFTQ_TESTS_REPLAY_FDATASYNC_SPY_H_
#define SOFTQ_TESTS_REPLAY_FDATASYNC_SPY_H_

#include <cstdint>
#include <string>
#include <vector>

namespace softq {
namespace testing {

struct SyncCall {
  std::string path;    // of the descriptor synced (/proc/self/fd)
  uint64_t bytes = 0;  // the file's length when fdatasync was called
  int result = 0;      // what the system call returned
};

// The calls made so far on the file at `path` (an existing file, however
// named: compared by its canonical path), in order.
std::vector<SyncCall> FdatasyncCalls(const std::string& path);

}  // namespace testing
}  // namespace softq

#endif  // SOFTQ_TESTS_REPLAY_FDATASYNC_SPY_H_
