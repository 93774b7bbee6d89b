// Process-wide shutdown request, set by SIGTERM or SIGINT. Every binary
// installs it first thing in main, waits on it, then stops its servers and
// joins its threads. Thread-safe; the signal handler only posts a semaphore
// (async-signal-safe).
#ifndef SOFTQ_COMMON_SHUTDOWN_H_
#define SOFTQ_COMMON_SHUTDOWN_H_

#include "absl/time/time.h"

namespace softq {

// Installs handlers for SIGTERM and SIGINT. Idempotent.
void InstallShutdownHandlers();

// True once a signal arrived or RequestShutdown() was called.
bool ShutdownRequested();

// Blocks until shutdown is requested or `timeout` passes. Returns
// ShutdownRequested().
bool WaitForShutdown(absl::Duration timeout = absl::InfiniteDuration());

// Requests shutdown as if a signal had arrived (tests, or a binary that is
// done).
void RequestShutdown();

}  // namespace softq

#endif  // SOFTQ_COMMON_SHUTDOWN_H_
