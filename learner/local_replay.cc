#include "learner/local_replay.h"

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"

namespace softq {

LocalReplay::LocalReplay(int64_t capacity, int64_t observation_dim,
                         int64_t action_dim, int64_t batch_size,
                         int64_t min_size, uint64_t seed)
    : capacity_(capacity),
      observation_dim_(observation_dim),
      action_dim_(action_dim),
      batch_size_(batch_size),
      min_size_(std::max<int64_t>(min_size, 1)),
      generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  storage_.observations = torch::zeros({capacity, observation_dim});
  storage_.actions = torch::zeros({capacity, action_dim});
  storage_.rewards = torch::zeros({capacity});
  storage_.next_observations = torch::zeros({capacity, observation_dim});
  storage_.dones = torch::zeros({capacity});
}

absl::Status LocalReplay::Write(proto::TransitionBatch batch) {
  absl::StatusOr<TransitionTensors> t = DecodeTransitions(batch);
  if (!t.ok()) return t.status();
  if (t->observations.size(1) != observation_dim_ ||
      t->actions.size(1) != action_dim_) {
    return absl::InvalidArgumentError(
        absl::StrCat("TransitionBatch dimensions ", t->observations.size(1),
                     "/", t->actions.size(1), " differ from the replay's ",
                     observation_dim_, "/", action_dim_));
  }
  absl::MutexLock lock(&mu_);
  const int64_t n = t->rewards.size(0);
  for (int64_t i = 0; i < n;) {
    const int64_t chunk = std::min(n - i, capacity_ - next_);
    const auto dst = torch::indexing::Slice(next_, next_ + chunk);
    const auto src = torch::indexing::Slice(i, i + chunk);
    storage_.observations.index_put_({dst}, t->observations.index({src}));
    storage_.actions.index_put_({dst}, t->actions.index({src}));
    storage_.rewards.index_put_({dst}, t->rewards.index({src}));
    storage_.next_observations.index_put_({dst},
                                          t->next_observations.index({src}));
    storage_.dones.index_put_({dst}, t->dones.index({src}));
    next_ = (next_ + chunk) % capacity_;
    i += chunk;
  }
  size_ = std::min(capacity_, size_ + n);
  inserted_ += n;
  return absl::OkStatus();
}

absl::StatusOr<TransitionTensors> LocalReplay::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return size_ >= min_size_;
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "replay holds ", size_, " transitions, sampling needs ", min_size_));
  }
  const torch::Tensor idx =
      torch::randint(size_, {batch_size_}, generator_, torch::kLong);
  TransitionTensors out;
  out.observations = storage_.observations.index_select(0, idx);
  out.actions = storage_.actions.index_select(0, idx);
  out.rewards = storage_.rewards.index_select(0, idx);
  out.next_observations = storage_.next_observations.index_select(0, idx);
  out.dones = storage_.dones.index_select(0, idx);
  return out;
}

int64_t LocalReplay::size() const {
  absl::MutexLock lock(&mu_);
  return size_;
}

int64_t LocalReplay::inserted() const {
  absl::MutexLock lock(&mu_);
  return inserted_;
}

}  // namespace softq
