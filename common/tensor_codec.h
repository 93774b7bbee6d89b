// Conversion between LibTorch tensors and the wire format (proto/). Decoding
// validates: malformed input yields InvalidArgument naming the field, never a
// crash or a bad tensor. All functions are pure and thread-safe.
#ifndef SOFTQ_COMMON_TENSOR_CODEC_H_
#define SOFTQ_COMMON_TENSOR_CODEC_H_

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/row_layout.h"
#include "proto/tensor.pb.h"
#include "proto/transition.pb.h"

namespace softq {

inline constexpr int kMaxTensorRank = 8;
inline constexpr int64_t kMaxTensorElements = int64_t{1} << 28;

// A batch of N transitions as float32 tensors. `packed`, when defined, is one
// tensor [N, 2 O + D + 2] of rows in common/row_layout.h's layout, of which the
// five fields are column views (PackedTransitions): a batch that one copy moves
// to a device. Code that replaces a field must reset `packed`.
struct TransitionTensors {
  torch::Tensor observations;       // [N, observation_dim]
  torch::Tensor actions;            // [N, action_dim]
  torch::Tensor rewards;            // [N]
  torch::Tensor next_observations;  // [N, observation_dim]
  torch::Tensor dones;        // [N], 1.0 for terminal transitions, else 0.0
  torch::Tensor packed = {};  // optional, see above
};

// The five fields as column views of `packed` [N, RowLayout(O, D).width()]
// (common/row_layout.h), with `packed` set.
TransitionTensors PackedTransitions(const torch::Tensor& packed,
                                    int64_t observation_dim,
                                    int64_t action_dim);

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Writes `tensor` (any dtype convertible to float, any device) into `out`.
void EncodeTensor(const torch::Tensor& tensor, proto::Tensor* out);

// Reads a finite float32 CPU tensor. `field` names the message in errors.
absl::StatusOr<torch::Tensor> DecodeTensor(const proto::Tensor& in,
                                           const std::string& field = "Tensor");

// Named tensors, as in a module's named_parameters(). Decoding rejects empty,
// over-long or duplicate names.
void EncodeNamedTensors(
    const NamedTensors& tensors,
    google::protobuf::RepeatedPtrField<proto::NamedTensor>* out);
absl::StatusOr<NamedTensors> DecodeNamedTensors(
    const google::protobuf::RepeatedPtrField<proto::NamedTensor>& in);

// OK when the five tensors are [N, observation_dim], [N, action_dim], [N],
// [N, observation_dim] and [N] (N: the observations' rows), else
// InvalidArgument naming the first that is not, or is missing.
absl::Status CheckTransitionShapes(const TransitionTensors& batch,
                                   int64_t observation_dim, int64_t action_dim);

// Encodes transitions; `actor_id` and the optional ids go in unchanged. Shapes
// must be as documented on TransitionTensors, else InvalidArgument naming the
// tensor.
absl::Status EncodeTransitions(const TransitionTensors& batch,
                               uint32_t actor_id, proto::TransitionBatch* out);
// How DecodeTransitions lays out its tensors (CPU tensors either way).
struct DecodeOptions {
  bool packed = false;  // one tensor, the fields its column views
                        // (TransitionTensors::packed)
  bool pinned = false;  // with packed: page-locked, so a copy to a GPU is
                        // asynchronous (needs a CUDA build)
};
// Validates (common/transition_check.h) and decodes.
absl::StatusOr<TransitionTensors> DecodeTransitions(
    const proto::TransitionBatch& in, DecodeOptions options = {});

}  // namespace softq

#endif  // SOFTQ_COMMON_TENSOR_CODEC_H_
