// The packed_rows form of a shard's Sample answer (Shard::SamplePacked,
// replay/packed_sample.h): protobuf parses it as the SampleResponse the proto
// form describes, the same draws with every row and id as inserted, bit for
// bit.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "common/row_layout.h"
#include "proto/replay.pb.h"
#include "replay/shard.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

using testing::MakeBatch;

// Two shards of equal seed and contents: `ids` in every batch or in none.
std::vector<std::unique_ptr<Shard>> TwinShards(bool ids) {
  std::vector<std::unique_ptr<Shard>> shards;
  for (int k = 0; k < 2; ++k) {
    ShardOptions options;
    options.capacity = 50;  // wrapped: keys and slots differ
    options.seed = 5;
    absl::StatusOr<std::unique_ptr<Shard>> shard = Shard::Create(options);
    EXPECT_TRUE(shard.ok()) << shard.status();
    const google::protobuf::RepeatedField<float> none;
    for (int b = 0; b < 7; ++b) {
      proto::TransitionBatch batch = MakeBatch(10, 10 * b, 3, 2);
      for (int i = 0; ids && i < 10; ++i) {
        batch.add_episode_ids((uint64_t{1} << 40) + b);
        batch.add_step_ids(1000 * b + i);
      }
      EXPECT_TRUE((*shard)->Insert(batch, none, absl::InfiniteFuture()).ok());
    }
    shards.push_back(*std::move(shard));
  }
  return shards;
}

void ExpectSameDraws(bool ids) {
  std::vector<std::unique_ptr<Shard>> shards = TwinShards(ids);
  proto::SampleResponse expected;
  ASSERT_TRUE(
      shards[0]->Sample(40, absl::InfiniteFuture(), nullptr, &expected).ok());
  absl::StatusOr<PackedSample> packed =
      shards[1]->SamplePacked(40, absl::InfiniteFuture(), nullptr);
  ASSERT_TRUE(packed.ok()) << packed.status();
  proto::SampleResponse got;
  ASSERT_TRUE(
      got.ParseFromArray(packed->bytes.get(), static_cast<int>(packed->size)));
  EXPECT_FALSE(got.has_batch());
  EXPECT_EQ(got.table_size(), 50u);
  EXPECT_EQ(got.observation_dim(), 3u);
  EXPECT_EQ(got.action_dim(), 2u);
  ASSERT_EQ(got.keys_size(), 40);
  const RowLayout layout(3, 2);
  ASSERT_EQ(got.rows().size(), 40 * layout.width() * sizeof(float));
  std::vector<float> row(layout.width());
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(got.keys(i), expected.keys(i));
    EXPECT_GE(got.keys(i), 20u);  // held: the last 50 of 70
    EXPECT_EQ(got.probabilities(i), expected.probabilities(i));
    PackRow(expected.batch(), i, layout, row.data());
    EXPECT_EQ(std::memcmp(got.rows().data() + i * row.size() * sizeof(float),
                          row.data(), row.size() * sizeof(float)),
              0)
        << "row " << i;
  }
  if (ids) {
    ASSERT_EQ(got.episode_ids_size(), 40);
    ASSERT_EQ(got.step_ids_size(), 40);
    for (int i = 0; i < 40; ++i) {
      EXPECT_EQ(got.episode_ids(i), expected.batch().episode_ids(i));
      EXPECT_EQ(got.step_ids(i), expected.batch().step_ids(i));
    }
  } else {
    EXPECT_EQ(got.episode_ids_size(), 0);
    EXPECT_EQ(got.step_ids_size(), 0);
  }
}

TEST(SamplePacked, DrawsAsSampleWithTheRowsAsInserted) {
  ExpectSameDraws(false);
}

TEST(SamplePacked, CarriesEpisodeAndStepIdsWhenStored) {
  ExpectSameDraws(true);
}

TEST(SamplePacked, RefusesAnEmptyOrTooLargeBatchNamingTheField) {
  std::vector<std::unique_ptr<Shard>> shards = TwinShards(false);
  for (uint32_t n : {0u, 51u}) {
    absl::StatusOr<PackedSample> packed =
        shards[0]->SamplePacked(n, absl::InfiniteFuture(), nullptr);
    EXPECT_TRUE(absl::IsInvalidArgument(packed.status())) << packed.status();
    EXPECT_NE(packed.status().message().find("SampleRequest.batch_size"),
              absl::string_view::npos);
  }
}

}  // namespace
}  // namespace softq
