// ParameterSubscriber: keeps an ActingPolicy up to date with the learner's
// published sampling network. A background thread holds a
// ParameterService.Subscribe stream, swaps each new version into the policy
// between the actor's steps (the policy's mutex), and reconnects with backoff
// (0.1 s doubling to 2 s) while the learner is away; the actor keeps stepping
// with the parameters it has. A restarted learner (another incarnation) is
// followed even though its versions start over. Thread-safe; the destructor
// cancels and joins.
#ifndef SOFTQ_ACTOR_PARAMETER_SUBSCRIBER_H_
#define SOFTQ_ACTOR_PARAMETER_SUBSCRIBER_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/security.h"
#include "policy/acting_policy.h"
#include "proto/parameters.grpc.pb.h"

namespace softq {

class ParameterSubscriber {
 public:
  // `policy` outlives the subscriber. Calls the learner with `security`'s
  // credentials (common/grpc_security.h). Starts the thread at once.
  ParameterSubscriber(const std::string& learner_address, ActingPolicy* policy,
                      const SecurityConfig& security = SecurityConfig());
  ~ParameterSubscriber();

  // Blocks until the policy holds some version, or `timeout`. Returns whether
  // it does.
  bool WaitForParameters(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  // The learner step of the newest parameters received (for the actor's lag
  // report).
  uint64_t latest_learner_step() const ABSL_LOCKS_EXCLUDED(mu_);
  // Versions received and applied; parameters rejected as malformed (never
  // applied).
  uint64_t applied() const ABSL_LOCKS_EXCLUDED(mu_);
  uint64_t rejected() const ABSL_LOCKS_EXCLUDED(mu_);
  // OK, or the first rejection of well-formed parameters whose names or shapes
  // are not the policy's: the learner trains another network (--env, --hidden),
  // which no later version fixes. (Malformed or non-finite parameters are only
  // counted in rejected().)
  absl::Status network_mismatch() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  ActingPolicy* const policy_;
  std::unique_ptr<proto::ParameterService::Stub> stub_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) =
      nullptr;  // the open stream's
  uint64_t latest_learner_step_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t incarnation_ ABSL_GUARDED_BY(mu_) =
      0;  // of the learner last applied from
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status network_mismatch_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace softq

#endif  // SOFTQ_ACTOR_PARAMETER_SUBSCRIBER_H_
