// Specification of the wire codec: every message round-trips, every bad input
// is refused with InvalidArgument naming the field.
#include "common/tensor_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>
#include <limits>

#include "common/transition_check.h"
#include "proto/parameters.pb.h"
#include "proto/replay.pb.h"

namespace softq {
namespace {

using ::testing::HasSubstr;

TransitionTensors MakeTransitions(int64_t n, int64_t obs_dim, int64_t act_dim) {
  TransitionTensors t;
  t.observations = torch::randn({n, obs_dim});
  t.actions = torch::rand({n, act_dim}) * 2 - 1;
  t.rewards = torch::randn({n});
  t.next_observations = torch::randn({n, obs_dim});
  t.dones = (torch::rand({n}) > 0.5).to(torch::kFloat32);
  return t;
}

proto::TransitionBatch EncodeOrDie(const TransitionTensors& t) {
  proto::TransitionBatch batch;
  EXPECT_TRUE(EncodeTransitions(t, 7, &batch).ok());
  return batch;
}

void ExpectInvalid(const absl::Status& status, const std::string& field) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(field));
}

TEST(TensorCodec, TensorRoundTripsShapeAndValues) {
  torch::manual_seed(0);
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{}, {0}, {5}, {3, 4}, {2, 3, 4}}) {
    const torch::Tensor original = torch::randn(shape);
    proto::Tensor wire;
    EncodeTensor(original, &wire);
    absl::StatusOr<torch::Tensor> decoded = DecodeTensor(wire);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(decoded->sizes(), original.sizes());
    EXPECT_TRUE(torch::equal(*decoded, original));
  }
}

TEST(TensorCodec, TensorEncodesNonContiguousAndDoubleInput) {
  const torch::Tensor original =
      torch::arange(12, torch::kFloat64).reshape({3, 4}).t();
  proto::Tensor wire;
  EncodeTensor(original, &wire);
  absl::StatusOr<torch::Tensor> decoded = DecodeTensor(wire);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(torch::equal(*decoded, original.to(torch::kFloat32)));
}

TEST(TensorCodec, RejectsTensorWhoseValuesDoNotMatchShape) {
  proto::Tensor wire;
  wire.add_shape(2);
  wire.add_shape(3);
  for (int i = 0; i < 5; ++i) wire.add_values(1.0f);
  ExpectInvalid(DecodeTensor(wire, "fc0.weight").status(), "fc0.weight.values");
}

TEST(TensorCodec, RejectsNegativeDimension) {
  proto::Tensor wire;
  wire.add_shape(-1);
  ExpectInvalid(DecodeTensor(wire).status(), "shape[0]");
}

TEST(TensorCodec, RejectsAbsurdDimensionsWithoutAllocating) {
  proto::Tensor wire;
  wire.add_shape(1 << 30);
  wire.add_shape(1 << 30);
  ExpectInvalid(DecodeTensor(wire).status(), "elements");
  proto::Tensor deep;
  for (int i = 0; i < 9; ++i) deep.add_shape(1);
  ExpectInvalid(DecodeTensor(deep).status(), "dimensions");
}

TEST(TensorCodec, RejectsNanAndInfinity) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    proto::Tensor wire;
    wire.add_shape(3);
    wire.add_values(0.0f);
    wire.add_values(bad);
    wire.add_values(1.0f);
    ExpectInvalid(DecodeTensor(wire).status(), "values[1]");
  }
}

TEST(TensorCodec, NamedTensorsRoundTripInOrder) {
  NamedTensors params = {{"fc0.weight", torch::randn({4, 3})},
                         {"fc0.bias", torch::randn({4})},
                         {"out.weight", torch::randn({2, 4})}};
  proto::NetworkParameters wire;
  wire.set_version(3);
  EncodeNamedTensors(params, wire.mutable_tensors());
  proto::NetworkParameters parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire.SerializeAsString()));
  absl::StatusOr<NamedTensors> decoded = DecodeNamedTensors(parsed.tensors());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_EQ((*decoded)[i].first, params[i].first);
    EXPECT_TRUE(torch::equal((*decoded)[i].second, params[i].second));
  }
}

TEST(TensorCodec, RejectsDuplicateAndEmptyNames) {
  proto::NetworkParameters wire;
  EncodeNamedTensors({{"w", torch::ones({1})}, {"w", torch::ones({1})}},
                     wire.mutable_tensors());
  ExpectInvalid(DecodeNamedTensors(wire.tensors()).status(), "duplicate");
  EncodeNamedTensors({{"", torch::ones({1})}}, wire.mutable_tensors());
  ExpectInvalid(DecodeNamedTensors(wire.tensors()).status(), "name");
}

TEST(TensorCodec, NamedTensorErrorNamesTheParameter) {
  proto::NetworkParameters wire;
  EncodeNamedTensors({{"fc1.bias", torch::ones({2})}}, wire.mutable_tensors());
  wire.mutable_tensors(0)->mutable_tensor()->set_values(1, NAN);
  ExpectInvalid(DecodeNamedTensors(wire.tensors()).status(), "fc1.bias");
}

TEST(TensorCodec, TransitionsRoundTripThroughSerializedBytes) {
  torch::manual_seed(1);
  const TransitionTensors original = MakeTransitions(16, 2, 2);
  proto::InsertRequest request;
  request.set_sequence(42);
  *request.mutable_batch() = EncodeOrDie(original);
  request.mutable_batch()->add_episode_ids(1);
  request.mutable_batch()->mutable_episode_ids()->Resize(16, 1);
  request.mutable_batch()->mutable_step_ids()->Resize(16, 0);
  proto::InsertRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(request.SerializeAsString()));
  EXPECT_EQ(parsed.sequence(), 42u);
  EXPECT_EQ(parsed.batch().actor_id(), 7u);
  absl::StatusOr<TransitionTensors> decoded = DecodeTransitions(parsed.batch());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(torch::equal(decoded->observations, original.observations));
  EXPECT_TRUE(torch::equal(decoded->actions, original.actions));
  EXPECT_TRUE(torch::equal(decoded->rewards, original.rewards));
  EXPECT_TRUE(
      torch::equal(decoded->next_observations, original.next_observations));
  EXPECT_TRUE(torch::equal(decoded->dones, original.dones));
}

TEST(TensorCodec, PackedDecodingHoldsTheSameTransitionsInOneTensor) {
  torch::manual_seed(2);
  TransitionTensors original = MakeTransitions(9, 3, 2);
  original.dones = (torch::rand({9}) < 0.5).to(torch::kFloat32);
  const proto::TransitionBatch batch = EncodeOrDie(original);
  absl::StatusOr<TransitionTensors> packed = DecodeTransitions(
      batch, DecodeOptions{/*packed=*/true, /*pinned=*/false});
  ASSERT_TRUE(packed.ok()) << packed.status();
  ASSERT_TRUE(packed->packed.defined());
  EXPECT_EQ(packed->packed.sizes(),
            (std::vector<int64_t>{9, RowLayout(3, 2).width()}));
  EXPECT_TRUE(packed->packed.is_contiguous());
  EXPECT_TRUE(torch::equal(packed->observations, original.observations));
  EXPECT_TRUE(torch::equal(packed->actions, original.actions));
  EXPECT_TRUE(torch::equal(packed->rewards, original.rewards));
  EXPECT_TRUE(
      torch::equal(packed->next_observations, original.next_observations));
  EXPECT_TRUE(torch::equal(packed->dones, original.dones));
  // The fields are views of the one tensor, in its documented column order.
  const torch::Tensor columns = torch::cat(
      {original.observations, original.actions, original.rewards.unsqueeze(1),
       original.next_observations, original.dones.unsqueeze(1)},
      1);
  EXPECT_TRUE(torch::equal(packed->packed, columns));
  for (const torch::Tensor& field :
       {packed->observations, packed->actions, packed->rewards,
        packed->next_observations, packed->dones}) {
    EXPECT_TRUE(field.is_alias_of(packed->packed));
  }
}

TEST(TensorCodec, SampleResponseRoundTrips) {
  proto::SampleResponse response;
  *response.mutable_batch() = EncodeOrDie(MakeTransitions(4, 3, 1));
  for (uint64_t k : {5, 9, 9, 12}) {
    response.add_keys(k);
    response.add_probabilities(0.25);
  }
  response.set_table_size(100);
  proto::SampleResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(response.SerializeAsString()));
  EXPECT_EQ(parsed.keys_size(), 4);
  EXPECT_EQ(parsed.table_size(), 100u);
  absl::StatusOr<TransitionTensors> decoded = DecodeTransitions(parsed.batch());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->observations.sizes(), (std::vector<int64_t>{4, 3}));
}

TEST(TensorCodec, EncodeRejectsMismatchedShapes) {
  TransitionTensors t = MakeTransitions(4, 2, 2);
  t.rewards = torch::zeros({3});
  proto::TransitionBatch batch;
  ExpectInvalid(EncodeTransitions(t, 0, &batch), "rewards");
}

TEST(TransitionCheck, RejectsEachMalformedField) {
  const proto::TransitionBatch good = EncodeOrDie(MakeTransitions(3, 2, 2));
  ASSERT_TRUE(ValidateTransitionBatch(good).ok());

  struct Case {
    const char* field;
    std::function<void(proto::TransitionBatch*)> corrupt;
  };
  const std::vector<Case> cases = {
      {"observation_dim", [](auto* b) { b->set_observation_dim(0); }},
      {"observation_dim", [](auto* b) { b->set_observation_dim(1 << 20); }},
      {"action_dim", [](auto* b) { b->set_action_dim(0); }},
      {"action_dim", [](auto* b) { b->set_action_dim(1000); }},
      {"rewards", [](auto* b) { b->clear_rewards(); }},
      {"observations", [](auto* b) { b->add_observations(1.0f); }},
      {"actions", [](auto* b) { b->mutable_actions()->RemoveLast(); }},
      {"next_observations", [](auto* b) { b->clear_next_observations(); }},
      {"dones", [](auto* b) { b->add_dones(true); }},
      {"episode_ids", [](auto* b) { b->add_episode_ids(1); }},
      {"actor_id", [](auto* b) { b->set_actor_id(0x80000000u); }},
      {"observations[1]", [](auto* b) { b->set_observations(1, NAN); }},
      {"actions[0]", [](auto* b) { b->set_actions(0, INFINITY); }},
      {"rewards[2]", [](auto* b) { b->set_rewards(2, -INFINITY); }},
      {"next_observations[5]",
       [](auto* b) { b->set_next_observations(5, NAN); }},
  };
  for (const Case& c : cases) {
    proto::TransitionBatch bad = good;
    c.corrupt(&bad);
    SCOPED_TRACE(c.field);
    ExpectInvalid(ValidateTransitionBatch(bad), c.field);
    ExpectInvalid(DecodeTransitions(bad).status(), c.field);
    ExpectInvalid(
        DecodeTransitions(bad, DecodeOptions{/*packed=*/true}).status(),
        c.field);
  }
}

TEST(TransitionCheck, RejectsEmptyBatch) {
  proto::TransitionBatch empty;
  empty.set_observation_dim(2);
  empty.set_action_dim(2);
  ExpectInvalid(ValidateTransitionBatch(empty), "rewards");
}

}  // namespace
}  // namespace softq
