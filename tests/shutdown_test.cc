#include "common/shutdown.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

namespace softq {
namespace {

TEST(Shutdown, SigtermWakesEveryWaiter) {
  InstallShutdownHandlers();
  EXPECT_FALSE(ShutdownRequested());
  EXPECT_FALSE(WaitForShutdown(absl::Milliseconds(20)));
  bool first = false, second = false;
  std::thread a([&] { first = WaitForShutdown(); });
  std::thread b([&] { second = WaitForShutdown(absl::Seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  a.join();
  b.join();
  EXPECT_TRUE(first);
  EXPECT_TRUE(second);
  EXPECT_TRUE(ShutdownRequested());
}

}  // namespace
}  // namespace softq
