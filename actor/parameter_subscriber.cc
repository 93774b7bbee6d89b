#include "actor/parameter_subscriber.h"

#include <iostream>

#include "common/grpc_security.h"
#include "common/tensor_codec.h"

namespace softq {

ParameterSubscriber::ParameterSubscriber(const std::string& learner_address,
                                         ActingPolicy* policy,
                                         const SecurityConfig& security)
    : policy_(policy),
      stub_(proto::ParameterService::NewStub(
          MakeChannel(learner_address, security))) {
  thread_ = std::thread([this] { Run(); });
}

ParameterSubscriber::~ParameterSubscriber() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  thread_.join();
}

void ParameterSubscriber::Run() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    grpc::ClientContext context;
    proto::SubscribeRequest request;
    request.set_min_version(policy_->version());
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      context_ = &context;
      request.set_incarnation(incarnation_);
    }
    std::unique_ptr<grpc::ClientReader<proto::NetworkParameters>> reader =
        stub_->Subscribe(&context, request);
    proto::NetworkParameters message;
    while (reader->Read(&message)) {
      backoff = absl::Milliseconds(100);
      // A restarted learner's versions start over: its first message replaces
      // whatever version the policy holds.
      const bool restarted = [&] {
        absl::MutexLock lock(&mu_);
        return incarnation_ != 0 && message.incarnation() != incarnation_;
      }();
      absl::Status applied = absl::OkStatus();
      bool mismatch = false;
      absl::StatusOr<NamedTensors> params =
          DecodeNamedTensors(message.tensors());
      if (!params.ok()) {
        applied = params.status();
      } else {
        applied = restarted
                      ? policy_->ReplaceParameters(*params, message.version())
                      : policy_->SetParameters(*params, message.version());
        mismatch = !applied.ok();
      }
      absl::MutexLock lock(&mu_);
      if (mismatch && network_mismatch_.ok()) network_mismatch_ = applied;
      if (applied.ok()) {
        ++applied_;
        latest_learner_step_ = message.learner_step();
        incarnation_ = message.incarnation();
      } else {
        ++rejected_;
        std::cerr << "parameter version " << message.version()
                  << " rejected: " << applied << std::endl;
      }
    }
    reader->Finish()
        .IgnoreError();  // The learner went away or we are stopping.
    {
      absl::MutexLock lock(&mu_);
      context_ = nullptr;
      auto stopping = [this]()
                          ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff)) return;
    }
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

bool ParameterSubscriber::WaitForParameters(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (policy_->version() == 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

uint64_t ParameterSubscriber::latest_learner_step() const {
  absl::MutexLock lock(&mu_);
  return latest_learner_step_;
}

uint64_t ParameterSubscriber::applied() const {
  absl::MutexLock lock(&mu_);
  return applied_;
}

uint64_t ParameterSubscriber::rejected() const {
  absl::MutexLock lock(&mu_);
  return rejected_;
}

absl::Status ParameterSubscriber::network_mismatch() const {
  absl::MutexLock lock(&mu_);
  return network_mismatch_;
}

}  // namespace softq
