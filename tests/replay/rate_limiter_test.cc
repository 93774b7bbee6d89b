#include "replay/rate_limiter.h"

#include <gtest/gtest.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace softq {
namespace {

TEST(RateLimiter, RefusesSamplesUntilTheTableHoldsMinSizeThenReleasesAWaiter) {
  absl::Mutex mu;
  RateLimiter limiter({/*min_size_to_sample=*/10, 0, 0});
  absl::Status waited;
  absl::Notification done;
  std::thread sampler([&] {
    absl::MutexLock lock(&mu);
    waited =
        limiter.AwaitCanSample(&mu, absl::Now() + absl::Seconds(20), nullptr);
    done.Notify();
  });
  {
    // Until the sampler waits (up to 10 s), then one insert short of the size.
    absl::MutexLock lock(&mu);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (limiter.Info(&mu).blocked_samples != 1 && absl::Now() < deadline) {
      mu.Unlock();
      absl::SleepFor(absl::Milliseconds(5));
      mu.Lock();
    }
    limiter.Inserted(&mu, 9, 9);
    EXPECT_EQ(limiter.Info(&mu).blocked_samples, 1u);
  }
  EXPECT_FALSE(done.WaitForNotificationWithTimeout(absl::Milliseconds(100)));
  {
    absl::MutexLock lock(&mu);
    limiter.Inserted(&mu, 1, 10);
  }
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  sampler.join();
  EXPECT_TRUE(waited.ok()) << waited;
}

TEST(RateLimiter, EndsABlockedWaitWithDeadlineExceededAtItsDeadline) {
  absl::Mutex mu;
  RateLimiter limiter({5, 0, 0});
  absl::MutexLock lock(&mu);
  const absl::Time start = absl::Now();
  const absl::Status s =
      limiter.AwaitCanSample(&mu, start + absl::Milliseconds(200), nullptr);
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  // At its deadline (a timed wait may wake a fraction of a millisecond early).
  EXPECT_GE(took, absl::Milliseconds(195));
  EXPECT_LT(took, absl::Milliseconds(1000));
  EXPECT_EQ(limiter.Info(&mu).blocked_samples, 0u);
}

TEST(RateLimiter, KeepsSamplesPerInsertWithinTheErrorBuffer) {
  absl::Mutex mu;
  // offset = 2 * 1 = 2, band [2 - 4, 2 + 4] = [-2, 6].
  RateLimiter limiter({2, 1.0, 4.0});
  absl::MutexLock lock(&mu);
  EXPECT_FALSE(limiter.CanSample(&mu));
  limiter.Inserted(&mu, 6, 6);  // diff 6: still allowed to insert (at the edge)
  EXPECT_TRUE(limiter.CanInsert(&mu));
  limiter.Inserted(&mu, 1, 7);  // diff 7: above the band
  EXPECT_FALSE(limiter.CanInsert(&mu));
  EXPECT_TRUE(limiter.CanSample(&mu));
  EXPECT_TRUE(absl::IsDeadlineExceeded(limiter.AwaitCanInsert(
      &mu, absl::Now() + absl::Milliseconds(50), nullptr)));
  limiter.Sampled(&mu, 9);  // diff -2: lower edge
  EXPECT_TRUE(limiter.CanSample(&mu));
  EXPECT_TRUE(limiter.CanInsert(&mu));
  limiter.Sampled(&mu, 1);  // diff -3: below the band
  EXPECT_FALSE(limiter.CanSample(&mu));
}

TEST(RateLimiter, CancelEndsEveryWaitWithCancelled) {
  absl::Mutex mu;
  RateLimiter limiter({5, 0, 0});
  absl::Status waited;
  std::thread sampler([&] {
    absl::MutexLock lock(&mu);
    waited = limiter.AwaitCanSample(&mu, absl::InfiniteFuture(), nullptr);
  });
  absl::SleepFor(absl::Milliseconds(50));
  {
    absl::MutexLock lock(&mu);
    limiter.Cancel(&mu);
  }
  sampler.join();
  EXPECT_TRUE(absl::IsCancelled(waited)) << waited;
}

TEST(RateLimiter, AWaitEndsWhenItsCallIsCancelled) {
  absl::Mutex mu;
  RateLimiter limiter({5, 0, 0});
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(50));
    cancelled = true;
  });
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(absl::IsCancelled(limiter.AwaitCanSample(
      &mu, absl::InfiniteFuture(), [&] { return cancelled.load(); })));
  canceller.join();
}

TEST(RateLimiter, RestoreCentresTheBandSoInsertsAreNotBlocked) {
  absl::Mutex mu;
  RateLimiter limiter({10, 2.0, 5.0});
  absl::MutexLock lock(&mu);
  limiter.Restore(&mu, 1000);
  EXPECT_TRUE(limiter.CanInsert(&mu));
  EXPECT_TRUE(limiter.CanSample(&mu));
}

TEST(RateLimiter, ValidateNamesTheBadFlag) {
  EXPECT_NE(RateLimiter::Validate({0, 0, 0}, 10)
                .message()
                .find("--min_size_to_sample"),
            std::string::npos);
  EXPECT_NE(RateLimiter::Validate({11, 0, 0}, 10)
                .message()
                .find("--min_size_to_sample"),
            std::string::npos);
  EXPECT_NE(RateLimiter::Validate({1, -1, 0}, 10)
                .message()
                .find("--samples_per_insert"),
            std::string::npos);
  EXPECT_NE(
      RateLimiter::Validate({1, 1, 0}, 10).message().find("--error_buffer"),
      std::string::npos);
  EXPECT_TRUE(RateLimiter::Validate({1, 1, 1}, 10).ok());
}

}  // namespace
}  // namespace softq
