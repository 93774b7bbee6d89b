// A child process with its stdout on a pipe, for tests and benchmarks that
// start real servers (replay_server, redis-server) and read the port they
// print. The child gets SIGKILL if this process dies, so none outlives a
// crashed test.
//
// Not thread-safe: one owner thread.
#ifndef SOFTQ_TESTS_SUPPORT_CHILD_PROCESS_H_
#define SOFTQ_TESTS_SUPPORT_CHILD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace softq {

class ChildProcess {
 public:
  // Starts argv[0] (a path) with arguments argv[1..]. stderr is inherited.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(
      const std::vector<std::string>& argv);
  // Kills (SIGKILL) and reaps the child if it is still running.
  ~ChildProcess();

  // Reads stdout until a line starting with `prefix`; returns that line
  // (without newline). DEADLINE_EXCEEDED after `timeout`; UNAVAILABLE when
  // stdout closes first (the child exited), with the lines read so far.
  absl::StatusOr<std::string> WaitForLine(absl::string_view prefix,
                                          absl::Duration timeout);

  // Sends `signal`.
  absl::Status Signal(int signal);

  // Waits for the exit: the exit status, or 128 + signal number when killed by
  // a signal. DEADLINE_EXCEEDED when still running after `timeout`.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  pid_t pid() const { return pid_; }
  bool running() const { return !exited_; }

 private:
  ChildProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  pid_t pid_;
  int stdout_fd_;
  std::string buffer_;  // stdout read but not yet returned
  bool exited_ = false;
  int exit_code_ = 0;
};

// The port at the end of a "... listening on host:port" line, or
// InvalidArgument.
absl::StatusOr<int> PortFromLine(absl::string_view line);

// Starts a server (`argv`, with --port=0 among them) and waits up to `timeout`
// for its stdout line starting with `prefix` (e.g. "replay_server listening
// on "); sets `address` to "127.0.0.1:<the port it printed>".
absl::StatusOr<std::unique_ptr<ChildProcess>> StartListening(
    const std::vector<std::string>& argv, absl::string_view prefix,
    absl::Duration timeout, std::string* address);

// A loopback port that was free a moment ago (bound to 127.0.0.1, then closed):
// for a server that cannot be told --port=0, or for an address nobody listens
// on.
int UnusedLoopbackPort();

}  // namespace softq

#endif  // SOFTQ_TESTS_SUPPORT_CHILD_PROCESS_H_
