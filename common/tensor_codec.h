// Conversion between LibTorch tensors and the wire format (proto/). Decoding validates:
// malformed input yields InvalidArgument naming the field, never a crash or a bad tensor.
// All functions are pure and thread-safe.
#ifndef SOFTQ_COMMON_TENSOR_CODEC_H_
#define SOFTQ_COMMON_TENSOR_CODEC_H_

#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "absl/status/statusor.h"
#include "proto/tensor.pb.h"
#include "proto/transition.pb.h"

namespace softq {

inline constexpr int kMaxTensorRank = 8;
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 28;

// A batch of N transitions as float32 CPU tensors.
struct TransitionTensors {
  torch::Tensor observations;       // [N, observation_dim]
  torch::Tensor actions;            // [N, action_dim]
  torch::Tensor rewards;            // [N]
  torch::Tensor next_observations;  // [N, observation_dim]
  torch::Tensor dones;              // [N], 1.0 for terminal transitions, else 0.0
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes `tensor` (any dtype convertible to float, any device) into `out`.
void EncodeTensor(const torch::Tensor& tensor, proto::Tensor* out);

// Reads a finite float32 CPU tensor. `field` names the message in errors.
absl::StatusOr<torch::Tensor> DecodeTensor(const proto::Tensor& in,
                                           const std::string& field = "Tensor");

// Named tensors, as in a module's named_parameters(). Decoding rejects empty, over-long or
// duplicate names.
void EncodeNamedTensors(const NamedTensors& tensors,
                        google::protobuf::RepeatedPtrField<proto::NamedTensor>* out);
absl::StatusOr<NamedTensors> DecodeNamedTensors(
    const google::protobuf::RepeatedPtrField<proto::NamedTensor>& in);

// Encodes transitions; `actor_id` and the optional ids go in unchanged. Shapes must be as
// documented on TransitionTensors, else InvalidArgument naming the tensor.
absl::Status EncodeTransitions(const TransitionTensors& batch, uint32_t actor_id,
                               proto::TransitionBatch* out);
// Validates (common/transition_check.h) and decodes.
absl::StatusOr<TransitionTensors> DecodeTransitions(const proto::TransitionBatch& in);

}  // namespace softq

#endif  // SOFTQ_COMMON_TENSOR_CODEC_H_
