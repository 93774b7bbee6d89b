// Evaluation by return, for any environment: rolls out the sampling network in `rollouts`
// fresh environments (stepped together, one batched forward per step) from their start
// states to the end of one episode each. Thread-compatible.
#ifndef SOFTQ_ACTOR_RETURN_EVALUATION_H_
#define SOFTQ_ACTOR_RETURN_EVALUATION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "actor/acting_policy.h"

namespace softq {

struct ReturnEvaluation {
  std::vector<double> returns;  // one per rollout
  double mean = 0;
  double stddev = 0;
  std::string Summary() const;
};

// InvalidArgument for an unknown environment name; an environment's step error otherwise.
absl::StatusOr<ReturnEvaluation> EvaluateReturn(ActingPolicy& policy, const std::string& env,
                                                int rollouts, uint64_t seed);

}  // namespace softq

#endif  // SOFTQ_ACTOR_RETURN_EVALUATION_H_
