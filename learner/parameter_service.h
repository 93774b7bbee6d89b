// ParameterService: the learner's side of the parameter broadcast. Publish()
// stores the newest sampling-network parameters (encoded once); Subscribe
// streams each newer version to every actor as it is published; GetLatest
// answers one. It is the learner's ParameterPublisher in a cluster. Every
// message carries this learner process's incarnation (random), so that
// subscribers tell a restarted learner's versions from old ones. Parameters
// holding a NaN or an infinity are refused (counted, never stored or sent: the
// learner's second line of defence after SqlAgent's skipped updates).
// Thread-safe; Shutdown() ends every stream so the gRPC server can stop.
#ifndef SOFTQ_LEARNER_PARAMETER_SERVICE_H_
#define SOFTQ_LEARNER_PARAMETER_SERVICE_H_

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "learner/learner.h"
#include "proto/parameters.grpc.pb.h"

namespace softq {

class ParameterService final : public proto::ParameterService::Service,
                               public ParameterPublisher {
 public:
  // A random non-zero incarnation, or the given one (0 is replaced by a random
  // one).
  explicit ParameterService(uint64_t incarnation = 0);

  // Stores `params` as the newest version for every subscriber; non-finite
  // ones are counted in refused_publications() and dropped (subscribers keep
  // the version before).
  void Publish(const NamedTensors& params, uint64_t version,
               int64_t learner_step) override ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every Subscribe stream (status OK) and refuses new ones (UNAVAILABLE).
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  grpc::Status Subscribe(
      grpc::ServerContext* context, const proto::SubscribeRequest* request,
      grpc::ServerWriter<proto::NetworkParameters>* writer) override
      ABSL_LOCKS_EXCLUDED(mu_);
  grpc::Status GetLatest(grpc::ServerContext* context,
                         const proto::GetLatestRequest* request,
                         proto::NetworkParameters* response) override
      ABSL_LOCKS_EXCLUDED(mu_);

  uint64_t incarnation() const { return incarnation_; }
  uint64_t latest_version() const ABSL_LOCKS_EXCLUDED(mu_);
  int subscribers() const ABSL_LOCKS_EXCLUDED(mu_);
  // Publications refused for non-finite values.
  uint64_t refused_publications() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const uint64_t incarnation_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const proto::NetworkParameters> latest_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int subscribers_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_PARAMETER_SERVICE_H_
