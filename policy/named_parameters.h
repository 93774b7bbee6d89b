// Loading a network's parameters by name, as the learner publishes them
// (SqlAgent::PolicyParameters) and an actor's policy copy takes them in.
#ifndef SOFTQ_POLICY_NAMED_PARAMETERS_H_
#define SOFTQ_POLICY_NAMED_PARAMETERS_H_

#include <torch/nn/module.h>
#include <torch/types.h>

#include "absl/status/status.h"
#include "common/tensor_codec.h"

namespace softq {

// Loads `params` (names and shapes as from PolicyParameters()) into `network`.
// InvalidArgument naming the parameter when a name is missing or a shape
// differs.
absl::Status LoadNamedParameters(const NamedTensors& params,
                                 torch::nn::Module& network);

}  // namespace softq

#endif  // SOFTQ_POLICY_NAMED_PARAMETERS_H_
