// libfdatasync_count.so, for LD_PRELOAD: counts a process's fdatasync(2) calls,
// for the fault test of replay_server --wal_fsync (tests/faults/fault_test.py,
// wal_fsync_kill). Each call that succeeds appends one byte to the file named
// by $SOFTQ_FDATASYNC_COUNT_FILE, after the real system call has returned (so
// the file's length is the number of completed syncs, even after kill -9),
// then returns the system call's result. Without the variable it only
// forwards.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

extern "C" int fdatasync(int fd) {
  const int rc = static_cast<int>(::syscall(SYS_fdatasync, fd));
  const char* path = std::getenv("SOFTQ_FDATASYNC_COUNT_FILE");
  if (rc == 0 && path != nullptr) {
    const int out =
        ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out >= 0) {
      if (::write(out, ".", 1) != 1) {
        // Nothing to report to: the count comes out short and the test says so.
      }
      ::close(out);
    }
  }
  return rc;
}
