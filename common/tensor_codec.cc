#include "common/tensor_codec.h"

#include <cmath>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/transition_check.h"

namespace softq {
namespace {

torch::Tensor ContiguousFloatCpu(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

template <typename Repeated>
void AppendFloats(const torch::Tensor& t, Repeated* out) {
  const torch::Tensor c = ContiguousFloatCpu(t);
  const int64_t n = c.numel();
  const int old = out->size();
  out->Resize(old + static_cast<int>(n), 0.0f);
  if (n > 0)
    std::memcpy(out->mutable_data() + old, c.data_ptr<float>(),
                n * sizeof(float));
}

torch::Tensor FloatsToTensor(
    const google::protobuf::RepeatedField<float>& values,
    std::vector<int64_t> shape) {
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  if (values.size() > 0) {
    std::memcpy(t.data_ptr<float>(), values.data(),
                values.size() * sizeof(float));
  }
  return t;
}

absl::Status CheckShape(const char* name, const torch::Tensor& t,
                        std::vector<int64_t> expected) {
  if (!t.defined()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TransitionTensors.", name, " is missing"));
  }
  if (t.sizes().vec() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TransitionTensors.", name, " has shape ", c10::str(t.sizes()),
        ", expected ", c10::str(c10::IntArrayRef(expected))));
  }
  return absl::OkStatus();
}

}  // namespace

void EncodeTensor(const torch::Tensor& tensor, proto::Tensor* out) {
  out->Clear();
  for (int64_t d : tensor.sizes()) out->add_shape(d);
  AppendFloats(tensor, out->mutable_values());
}

absl::StatusOr<torch::Tensor> DecodeTensor(const proto::Tensor& in,
                                           const std::string& field) {
  if (in.shape_size() > kMaxTensorRank) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".shape has ", in.shape_size(),
                     " dimensions, at most ", kMaxTensorRank, " allowed"));
  }
  int64_t elements = 1;
  for (int i = 0; i < in.shape_size(); ++i) {
    const int64_t d = in.shape(i);
    if (d < 0 || d > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".shape[", i, "] is ", d, ", expected 0..2^31-1"));
    }
    elements *= d;
    if (elements > kMaxTensorElements) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".shape has more than ", kMaxTensorElements, " elements"));
    }
  }
  if (elements != in.values_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".values has ", in.values_size(),
                     " elements, shape implies ", elements));
  }
  for (int i = 0; i < in.values_size(); ++i) {
    if (!std::isfinite(in.values(i))) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".values[", i, "] is not finite (", in.values(i), ")"));
    }
  }
  return FloatsToTensor(in.values(), {in.shape().begin(), in.shape().end()});
}

void EncodeNamedTensors(
    const NamedTensors& tensors,
    google::protobuf::RepeatedPtrField<proto::NamedTensor>* out) {
  out->Clear();
  for (const auto& [name, tensor] : tensors) {
    proto::NamedTensor* named = out->Add();
    named->set_name(name);
    EncodeTensor(tensor, named->mutable_tensor());
  }
}

absl::StatusOr<NamedTensors> DecodeNamedTensors(
    const google::protobuf::RepeatedPtrField<proto::NamedTensor>& in) {
  NamedTensors result;
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < in.size(); ++i) {
    const std::string& name = in[i].name();
    if (name.empty() || name.size() > 256) {
      return absl::InvalidArgumentError(
          absl::StrCat("NamedTensor[", i, "].name has length ", name.size(),
                       ", expected 1..256"));
    }
    if (!seen.insert(name).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "NamedTensor[", i, "].name \"", name, "\" is a duplicate"));
    }
    absl::StatusOr<torch::Tensor> t = DecodeTensor(
        in[i].tensor(), absl::StrCat("NamedTensor[", i, "] (", name, ")"));
    if (!t.ok()) return t.status();
    result.emplace_back(name, *std::move(t));
  }
  return result;
}

absl::Status CheckTransitionShapes(const TransitionTensors& batch,
                                   int64_t observation_dim,
                                   int64_t action_dim) {
  const torch::Tensor& obs = batch.observations;
  const int64_t n = obs.defined() && obs.dim() >= 1 ? obs.size(0) : 0;
  for (const absl::Status& s :
       {CheckShape("observations", obs, {n, observation_dim}),
        CheckShape("actions", batch.actions, {n, action_dim}),
        CheckShape("rewards", batch.rewards, {n}),
        CheckShape("next_observations", batch.next_observations,
                   {n, observation_dim}),
        CheckShape("dones", batch.dones, {n})}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status EncodeTransitions(const TransitionTensors& batch,
                               uint32_t actor_id, proto::TransitionBatch* out) {
  if (batch.observations.dim() != 2 || batch.actions.dim() != 2) {
    return absl::InvalidArgumentError(
        "TransitionTensors.observations and .actions must be 2-D [N, dim]");
  }
  const int64_t n = batch.observations.size(0);
  const int64_t obs_dim = batch.observations.size(1);
  const int64_t act_dim = batch.actions.size(1);
  if (absl::Status s = CheckTransitionShapes(batch, obs_dim, act_dim); !s.ok())
    return s;
  out->Clear();
  out->set_observation_dim(static_cast<uint32_t>(obs_dim));
  out->set_action_dim(static_cast<uint32_t>(act_dim));
  out->set_actor_id(actor_id);
  AppendFloats(batch.observations, out->mutable_observations());
  AppendFloats(batch.actions, out->mutable_actions());
  AppendFloats(batch.rewards, out->mutable_rewards());
  AppendFloats(batch.next_observations, out->mutable_next_observations());
  const torch::Tensor dones = ContiguousFloatCpu(batch.dones);
  const float* d = dones.data_ptr<float>();
  out->mutable_dones()->Reserve(static_cast<int>(n));
  for (int64_t i = 0; i < n; ++i) out->add_dones(d[i] != 0.0f);
  return absl::OkStatus();
}

TransitionTensors PackedTransitions(const torch::Tensor& packed,
                                    int64_t observation_dim,
                                    int64_t action_dim) {
  const RowLayout layout(observation_dim, action_dim);
  TransitionTensors t;
  t.observations = packed.narrow(1, 0, observation_dim);
  t.actions = packed.narrow(1, layout.action(), action_dim);
  t.rewards = packed.select(1, layout.reward());
  t.next_observations =
      packed.narrow(1, layout.next_observation(), observation_dim);
  t.dones = packed.select(1, layout.done());
  t.packed = packed;
  return t;
}

absl::StatusOr<TransitionTensors> DecodeTransitions(
    const proto::TransitionBatch& in, DecodeOptions options) {
  if (absl::Status s = ValidateTransitionBatch(in); !s.ok()) return s;
  const int64_t n = TransitionCount(in);
  const int64_t obs_dim = in.observation_dim();
  const int64_t act_dim = in.action_dim();
  const auto tensor_options = torch::TensorOptions()
                                  .dtype(torch::kFloat32)
                                  .pinned_memory(options.pinned);
  if (options.packed) {
    const RowLayout layout(obs_dim, act_dim);
    torch::Tensor packed = torch::empty({n, layout.width()}, tensor_options);
    float* row = packed.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i, row += layout.width()) {
      PackRow(in, i, layout, row);
    }
    return PackedTransitions(packed, obs_dim, act_dim);
  }
  TransitionTensors out;
  out.observations = FloatsToTensor(in.observations(), {n, obs_dim});
  out.actions = FloatsToTensor(in.actions(), {n, act_dim});
  out.rewards = FloatsToTensor(in.rewards(), {n});
  out.next_observations = FloatsToTensor(in.next_observations(), {n, obs_dim});
  out.dones = torch::empty({n}, torch::kFloat32);
  float* d = out.dones.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) d[i] = in.dones(i) ? 1.0f : 0.0f;
  return out;
}

}  // namespace softq
