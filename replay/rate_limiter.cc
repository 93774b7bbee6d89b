#include "replay/rate_limiter.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace softq {
namespace {

// A waiting call wakes this often to poll its cancellation probe.
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

}  // namespace

absl::Status RateLimiter::Validate(const RateLimiterOptions& o,
                                   uint64_t capacity) {
  if (o.min_size_to_sample < 1 || o.min_size_to_sample > capacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("--min_size_to_sample=", o.min_size_to_sample,
                     ": must be in [1, capacity=", capacity, "]"));
  }
  if (!(o.samples_per_insert >= 0) || !std::isfinite(o.samples_per_insert)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--samples_per_insert=", o.samples_per_insert,
                     ": must be finite and >= 0"));
  }
  if (!(o.error_buffer >= 0) || !std::isfinite(o.error_buffer)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--error_buffer=", o.error_buffer, ": must be finite and >= 0"));
  }
  if (o.samples_per_insert > 0 && o.error_buffer < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--error_buffer=", o.error_buffer,
                     ": must be at least 1 when --samples_per_insert > 0"));
  }
  return absl::OkStatus();
}

RateLimiter::RateLimiter(RateLimiterOptions options) : options_(options) {}

double RateLimiter::Diff() const {
  return static_cast<double>(inserts_) * options_.samples_per_insert -
         static_cast<double>(samples_);
}

bool RateLimiter::CanInsert(absl::Mutex*) const { return CanInsertLocked(); }

bool RateLimiter::CanInsertLocked() const {
  if (options_.samples_per_insert <= 0) return true;
  const double offset =
      options_.min_size_to_sample * options_.samples_per_insert;
  return Diff() <= offset + options_.error_buffer;
}

bool RateLimiter::CanSample(absl::Mutex*) const { return CanSampleLocked(); }

bool RateLimiter::CanSampleLocked() const {
  if (size_ < std::max<uint64_t>(options_.min_size_to_sample, 1)) return false;
  if (options_.samples_per_insert <= 0) return true;
  const double offset =
      options_.min_size_to_sample * options_.samples_per_insert;
  return Diff() >= offset - options_.error_buffer;
}

absl::Status RateLimiter::AwaitCanInsert(absl::Mutex* mu, absl::Time deadline,
                                         const CancelledFn& cancelled) {
  return Await(mu, /*insert=*/true, deadline, cancelled);
}

absl::Status RateLimiter::AwaitCanSample(absl::Mutex* mu, absl::Time deadline,
                                         const CancelledFn& cancelled) {
  return Await(mu, /*insert=*/false, deadline, cancelled);
}

absl::Status RateLimiter::Await(absl::Mutex* mu, bool insert,
                                absl::Time deadline,
                                const CancelledFn& cancelled) {
  auto ready = [this, insert]() {
    return cancelled_ || (insert ? CanInsertLocked() : CanSampleLocked());
  };
  if (!ready()) {
    uint32_t& blocked = insert ? blocked_inserts_ : blocked_samples_;
    ++blocked;
    while (true) {
      const absl::Time step = std::min(deadline, absl::Now() + kPollInterval);
      const absl::Condition condition(&ready);
      if (mu->AwaitWithDeadline(condition, step)) break;
      if (cancelled && cancelled()) {
        --blocked;
        return absl::CancelledError(
            "the call was cancelled while waiting for the rate limiter");
      }
      if (absl::Now() >= deadline) {
        --blocked;
        return absl::DeadlineExceededError(absl::StrCat(
            "rate limiter did not allow the ", insert ? "insert" : "sample",
            " before the deadline (size ", size_, ", min_size_to_sample ",
            options_.min_size_to_sample, ", inserts ", inserts_, ", samples ",
            samples_, ", samples_per_insert ", options_.samples_per_insert,
            ", error_buffer ", options_.error_buffer, ")"));
      }
    }
    --blocked;
  }
  if (cancelled_) return absl::CancelledError("the shard is shutting down");
  return absl::OkStatus();
}

void RateLimiter::Inserted(absl::Mutex*, uint64_t n, uint64_t size) {
  inserts_ += n;
  size_ = size;
}

void RateLimiter::Sampled(absl::Mutex*, uint64_t n) { samples_ += n; }

void RateLimiter::Restore(absl::Mutex*, uint64_t size) {
  size_ = size;
  inserts_ = size;
  const double target =
      static_cast<double>(size) * options_.samples_per_insert -
      options_.min_size_to_sample * options_.samples_per_insert;
  samples_ = target > 0 ? static_cast<uint64_t>(target) : 0;
}

void RateLimiter::Cancel(absl::Mutex*) { cancelled_ = true; }

RateLimiterInfo RateLimiter::Info(absl::Mutex*) const {
  RateLimiterInfo info;
  info.options = options_;
  info.inserts = inserts_;
  info.samples = samples_;
  info.blocked_inserts = blocked_inserts_;
  info.blocked_samples = blocked_samples_;
  return info;
}

}  // namespace softq
