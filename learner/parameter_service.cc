#include "learner/parameter_service.h"

#include <random>

#include "absl/time/clock.h"
#include "learner/host_parameters.h"

namespace softq {
namespace {

uint64_t RandomIncarnation() {
  std::random_device device;
  const uint64_t drawn = (static_cast<uint64_t>(device()) << 32) ^ device() ^
                         static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  return drawn == 0 ? 1 : drawn;
}

}  // namespace

ParameterService::ParameterService(uint64_t incarnation)
    : incarnation_(incarnation != 0 ? incarnation : RandomIncarnation()) {}

void ParameterService::Publish(const NamedTensors& params, uint64_t version,
                               int64_t learner_step) {
  if (!CheckFinite(params).ok()) {
    absl::MutexLock lock(&mu_);
    ++refused_;
    return;
  }
  auto message = std::make_shared<proto::NetworkParameters>();
  message->set_version(version);
  message->set_learner_step(static_cast<uint64_t>(learner_step));
  message->set_incarnation(incarnation_);
  EncodeNamedTensors(params, message->mutable_tensors());
  absl::MutexLock lock(&mu_);
  latest_ = std::move(message);
}

void ParameterService::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

grpc::Status ParameterService::Subscribe(
    grpc::ServerContext* context, const proto::SubscribeRequest* request,
    grpc::ServerWriter<proto::NetworkParameters>* writer) {
  // Versions of another incarnation say nothing about this one's.
  const bool same_learner =
      request->incarnation() == 0 || request->incarnation() == incarnation_;
  uint64_t sent = same_learner ? request->min_version() : 0;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_)
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "learner shutting down");
    ++subscribers_;
  }
  grpc::Status status = grpc::Status::OK;
  while (true) {
    std::shared_ptr<const proto::NetworkParameters> next;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return shutdown_ || (latest_ != nullptr && latest_->version() > sent);
      };
      // Wake at least every 200 ms to notice a cancelled stream.
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(200));
      if (shutdown_) break;
      if (latest_ != nullptr && latest_->version() > sent) next = latest_;
    }
    if (context->IsCancelled()) {
      status =
          grpc::Status(grpc::StatusCode::CANCELLED, "subscriber went away");
      break;
    }
    if (next == nullptr) continue;
    if (!writer->Write(*next)) {
      status =
          grpc::Status(grpc::StatusCode::CANCELLED, "subscriber went away");
      break;
    }
    sent = next->version();
  }
  absl::MutexLock lock(&mu_);
  --subscribers_;
  return status;
}

grpc::Status ParameterService::GetLatest(grpc::ServerContext*,
                                         const proto::GetLatestRequest*,
                                         proto::NetworkParameters* response) {
  absl::MutexLock lock(&mu_);
  if (latest_ == nullptr) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        "no parameters published yet");
  }
  *response = *latest_;
  return grpc::Status::OK;
}

uint64_t ParameterService::latest_version() const {
  absl::MutexLock lock(&mu_);
  return latest_ == nullptr ? 0 : latest_->version();
}

uint64_t ParameterService::refused_publications() const {
  absl::MutexLock lock(&mu_);
  return refused_;
}

int ParameterService::subscribers() const {
  absl::MutexLock lock(&mu_);
  return subscribers_;
}

}  // namespace softq
