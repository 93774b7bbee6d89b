#include "learner/priority_updater.h"

#include <algorithm>
#include <utility>

namespace softq {

PriorityUpdater::PriorityUpdater(Send send, int max_queued)
    : send_(std::move(send)),
      max_queued_(static_cast<size_t>(std::max(1, max_queued))) {
  thread_ = std::thread([this] { Run(); });
}

PriorityUpdater::~PriorityUpdater() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void PriorityUpdater::Push(PriorityUpdate update) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  while (queue_.size() >= max_queued_) {
    queue_.pop_front();
    ++dropped_;
  }
  queue_.push_back(std::move(update));
}

absl::Status PriorityUpdater::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && !sending_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&idle), timeout)) {
    return absl::DeadlineExceededError(
        "PriorityUpdater::Flush: priorities still queued");
  }
  return absl::OkStatus();
}

void PriorityUpdater::Run() {
  while (true) {
    PriorityUpdate update;
    {
      absl::MutexLock lock(&mu_);
      const auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      update = std::move(queue_.front());
      queue_.pop_front();
      sending_ = true;
    }
    const absl::Status s = send_(update);
    absl::MutexLock lock(&mu_);
    sending_ = false;
    if (s.ok()) {
      ++sent_;
    } else {
      ++failed_;
      last_error_ = s;
    }
  }
}

uint64_t PriorityUpdater::sent() const {
  absl::MutexLock lock(&mu_);
  return sent_;
}

uint64_t PriorityUpdater::dropped() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

uint64_t PriorityUpdater::failed() const {
  absl::MutexLock lock(&mu_);
  return failed_;
}

absl::Status PriorityUpdater::last_error() const {
  absl::MutexLock lock(&mu_);
  return last_error_;
}

}  // namespace softq
