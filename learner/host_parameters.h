// The parameters of a network copied to the host, for publication to actors
// and for checks: one device-to-host copy for all of them. Thread-compatible
// (reads the module; the caller keeps it from changing meanwhile).
#ifndef SOFTQ_LEARNER_HOST_PARAMETERS_H_
#define SOFTQ_LEARNER_HOST_PARAMETERS_H_

#include <torch/nn/module.h>
#include <torch/types.h>

#include "absl/status/status.h"
#include "common/tensor_codec.h"

namespace softq {

// `module`'s named parameters as CPU tensors, in its order: views of one host
// tensor made by one copy (on a GPU one wait for the device, not one per
// tensor).
NamedTensors ParametersOnHost(const torch::nn::Module& module);

// OK when every value of `params` is finite; else FailedPrecondition naming the
// first tensor and flat index holding a NaN or an infinity, and the value.
absl::Status CheckFinite(const NamedTensors& params);

}  // namespace softq

#endif  // SOFTQ_LEARNER_HOST_PARAMETERS_H_
