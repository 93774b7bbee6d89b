#include "common/shutdown.h"

#include <semaphore.h>
#include <signal.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <mutex>

#include "absl/time/clock.h"

namespace softq {
namespace {

// Signal handlers cannot take locks: an atomic flag and a semaphore are the
// whole state.
std::atomic<bool> g_requested{false};
sem_t g_semaphore;
std::once_flag g_init;

void InitSemaphore() { sem_init(&g_semaphore, 0, 0); }

void OnSignal(int) {
  g_requested.store(true);
  sem_post(&g_semaphore);
}

}  // namespace

void InstallShutdownHandlers() {
  std::call_once(g_init, InitSemaphore);
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

bool ShutdownRequested() { return g_requested.load(); }

void RequestShutdown() {
  std::call_once(g_init, InitSemaphore);
  OnSignal(0);
}

bool WaitForShutdown(absl::Duration timeout) {
  std::call_once(g_init, InitSemaphore);
  const absl::Time deadline = absl::Now() + timeout;
  while (!ShutdownRequested()) {
    int rc;
    if (timeout == absl::InfiniteDuration()) {
      rc = sem_wait(&g_semaphore);
    } else {
      const timespec ts = absl::ToTimespec(deadline);
      rc = sem_timedwait(&g_semaphore, &ts);
    }
    if (rc == 0) {
      sem_post(&g_semaphore);  // Wake the next waiter too.
      break;
    }
    if (errno == ETIMEDOUT) break;
  }
  return ShutdownRequested();
}

}  // namespace softq
