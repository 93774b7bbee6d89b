// The sample decoder (replay/sample_decoder.h) on packed_rows answers
// serialized by protobuf, cut into slices as gRPC may deliver them: every row
// lands whole in the row its run names, and answers of the wrong shape are
// refused with the field named.
#include "replay/sample_decoder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/row_layout.h"
#include "proto/replay.pb.h"

namespace softq {
namespace {

using ::testing::HasSubstr;

// A packed_rows answer of `n` rows with random values (done 0 or 1; ids when
// `ids`), keys 1000 + i and probabilities 1 / (i + 2).
proto::SampleResponse RandomAnswer(int n, uint32_t od, uint32_t ad, bool ids,
                                   uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1e6f, 1e6f);
  const RowLayout layout(od, ad);
  std::vector<float> rows(n * layout.width());
  proto::SampleResponse r;
  for (int i = 0; i < n; ++i) {
    float* row = rows.data() + i * layout.width();
    for (int64_t j = 0; j < layout.done(); ++j) row[j] = u(gen);
    row[layout.done()] = gen() % 2 == 0 ? 1.0f : 0.0f;
    if (ids) {
      r.add_episode_ids(uint64_t{1} << 40 | gen());
      r.add_step_ids(static_cast<uint32_t>(gen()));
    }
    r.add_keys(1000 + i);
    r.add_probabilities(1.0 / (i + 2));
  }
  r.set_observation_dim(od);
  r.set_action_dim(ad);
  r.set_rows(rows.data(), rows.size() * sizeof(float));
  r.set_table_size(777);
  return r;
}

// `bytes` as a ByteBuffer of slices of at most `slice` bytes.
grpc::ByteBuffer Slices(const std::string& bytes, size_t slice) {
  std::vector<grpc::Slice> slices;
  for (size_t at = 0; at < bytes.size(); at += slice) {
    slices.emplace_back(bytes.data() + at, std::min(slice, bytes.size() - at));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// Row `row` of `batch` holds row `i` of `answer`, bit for bit.
void ExpectRow(const SampledBatch& batch, int row,
               const proto::SampleResponse& answer, int i, int shard,
               double shard_probability) {
  const int64_t width =
      RowLayout(answer.observation_dim(), answer.action_dim()).width();
  EXPECT_EQ(std::memcmp(batch.observation(row),
                        answer.rows().data() + i * width * sizeof(float),
                        width * sizeof(float)),
            0)
      << "row " << row;
  EXPECT_EQ(batch.keys[row], answer.keys(i));
  EXPECT_EQ(batch.shard_index[row], shard);
  EXPECT_EQ(batch.probabilities[row],
            shard_probability * answer.probabilities(i));
}

TEST(SampleAssembler, DecodesTwoShardsAnswersIntoTheRowsTheirRunsName) {
  // Two batches of 5 rows: shard 0 gives batch 0 rows 0..2 and batch 1 rows
  // 0..1; shard 1 the rest. Its answer arrives in slices of 7 bytes, cutting
  // through floats and varints.
  const proto::SampleResponse a = RandomAnswer(5, 111, 8, true, 1);
  const proto::SampleResponse b = RandomAnswer(5, 111, 8, true, 2);
  SampleAssembler assembler(2, 5);
  const std::vector<RowRun> runs_a = {{0, 0, 3}, {1, 0, 2}};
  const std::vector<RowRun> runs_b = {{0, 3, 2}, {1, 2, 3}};
  grpc::ByteBuffer bytes_a = Slices(a.SerializeAsString(), 1 << 20);
  grpc::ByteBuffer bytes_b = Slices(b.SerializeAsString(), 7);
  uint64_t size_a = 0, size_b = 0;
  ASSERT_TRUE(assembler.Add(&bytes_b, runs_b, 1, 0.25, &size_b).ok());
  ASSERT_TRUE(assembler.Add(&bytes_a, runs_a, 0, 0.75, &size_a).ok());
  EXPECT_EQ(size_a, 777u);
  EXPECT_EQ(size_b, 777u);
  std::vector<SampledBatch> batches = std::move(assembler).Finish(1234);
  ASSERT_EQ(batches.size(), 2u);
  for (const SampledBatch& batch : batches) {
    EXPECT_EQ(batch.size(), 5);
    EXPECT_EQ(batch.observation_dim, 111u);
    EXPECT_EQ(batch.action_dim, 8u);
    EXPECT_EQ(batch.rows.size(), 5u * (2 * 111 + 8 + 2));
    EXPECT_EQ(batch.total_size, 1234u);
    EXPECT_EQ(batch.episode_ids.size(), 5u);
    EXPECT_EQ(batch.step_ids.size(), 5u);
  }
  // Answer rows in order: a's 0..2 -> batch 0 rows 0..2, a's 3..4 -> batch 1
  // rows 0..1; b's 0..1 -> batch 0 rows 3..4, b's 2..4 -> batch 1 rows 2..4.
  struct Where {
    int batch, row;
    const proto::SampleResponse* answer;
    int i, shard;
    double p;
  };
  for (const Where& w :
       {Where{0, 0, &a, 0, 0, 0.75}, Where{0, 2, &a, 2, 0, 0.75},
        Where{1, 0, &a, 3, 0, 0.75}, Where{1, 1, &a, 4, 0, 0.75},
        Where{0, 3, &b, 0, 1, 0.25}, Where{0, 4, &b, 1, 1, 0.25},
        Where{1, 2, &b, 2, 1, 0.25}, Where{1, 4, &b, 4, 1, 0.25}}) {
    ExpectRow(batches[w.batch], w.row, *w.answer, w.i, w.shard, w.p);
    EXPECT_EQ(batches[w.batch].episode_ids[w.row], w.answer->episode_ids(w.i));
    EXPECT_EQ(batches[w.batch].step_ids[w.row], w.answer->step_ids(w.i));
  }
}

TEST(SampleAssembler, KeepsIdsOnlyWhereEveryRowHasThem) {
  const proto::SampleResponse with = RandomAnswer(2, 2, 2, true, 3);
  const proto::SampleResponse without = RandomAnswer(4, 2, 2, false, 4);
  SampleAssembler assembler(2, 3);
  grpc::ByteBuffer w = Slices(with.SerializeAsString(), 64);
  grpc::ByteBuffer wo = Slices(without.SerializeAsString(), 64);
  uint64_t size = 0;
  ASSERT_TRUE(assembler.Add(&w, {{0, 0, 2}}, 0, 0.5, &size).ok());
  ASSERT_TRUE(assembler.Add(&wo, {{0, 2, 1}, {1, 0, 3}}, 1, 0.5, &size).ok());
  std::vector<SampledBatch> batches = std::move(assembler).Finish(10);
  EXPECT_TRUE(batches[0].episode_ids.empty());
  EXPECT_TRUE(batches[1].step_ids.empty());
  ExpectRow(batches[0], 1, with, 1, 0, 0.5);
  ExpectRow(batches[1], 2, without, 3, 1, 0.5);
}

// The error of decoding `answer` as `rows` rows of one batch.
absl::Status DecodeError(const proto::SampleResponse& answer, int rows) {
  SampleAssembler assembler(1, rows);
  grpc::ByteBuffer bytes = Slices(answer.SerializeAsString(), 1 << 20);
  uint64_t size = 0;
  return assembler.Add(&bytes, {{0, 0, rows}}, 0, 1.0, &size);
}

TEST(SampleAssembler, RefusesAnswersOfTheWrongShapeNamingTheField) {
  const proto::SampleResponse good = RandomAnswer(4, 3, 2, false, 5);
  ASSERT_TRUE(DecodeError(good, 4).ok());
  struct Case {
    std::string name;
    std::function<void(proto::SampleResponse*)> spoil;
    std::string field;
  };
  // 4 rows of 2 * 3 + 2 + 2 = 10 floats.
  const std::vector<Case> cases = {
      {"a row short",
       [](proto::SampleResponse* r) { r->mutable_rows()->resize(3 * 40); },
       "rows holds 120 bytes, expected 4 rows x 40"},
      {"a byte extra",
       [](proto::SampleResponse* r) { r->mutable_rows()->push_back('x'); },
       "rows holds 161 bytes, expected 4 rows x 40"},
      {"no observation_dim",
       [](proto::SampleResponse* r) { r->set_observation_dim(0); },
       "observation_dim is 0"},
      {"action_dim too large",
       [](proto::SampleResponse* r) { r->set_action_dim(300); },
       "action_dim is 300"},
      {"a key short",
       [](proto::SampleResponse* r) { r->mutable_keys()->RemoveLast(); },
       "keys holds fewer than 4 values"},
      {"a key extra", [](proto::SampleResponse* r) { r->add_keys(9); },
       "keys holds more than 4 values"},
      {"a probability short",
       [](proto::SampleResponse* r) {
         r->mutable_probabilities()->RemoveLast();
       },
       "probabilities holds 3 values, expected 4"},
      {"no probabilities",
       [](proto::SampleResponse* r) { r->clear_probabilities(); },
       "probabilities is missing"},
      {"no rows", [](proto::SampleResponse* r) { r->clear_rows(); },
       "rows is missing"},
      {"episode ids without step ids",
       [](proto::SampleResponse* r) {
         for (int i = 0; i < 4; ++i) r->add_episode_ids(i);
       },
       "episode_ids and step_ids: one without the other"},
      {"a step id short",
       [](proto::SampleResponse* r) {
         for (int i = 0; i < 4; ++i) r->add_episode_ids(i);
         for (int i = 0; i < 3; ++i) r->add_step_ids(i);
       },
       "step_ids holds 3 values, expected 4"},
  };
  for (const Case& c : cases) {
    proto::SampleResponse bad = good;
    c.spoil(&bad);
    const absl::Status s = DecodeError(bad, 4);
    EXPECT_TRUE(absl::IsInternal(s)) << c.name << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.field)) << c.name;
  }
  // Fewer rows than asked for.
  const absl::Status s = DecodeError(good, 5);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("keys holds fewer than 5 values"));
}

TEST(SampleAssembler, RefusesShardsOfDifferentDimensions) {
  SampleAssembler assembler(1, 4);
  grpc::ByteBuffer a =
      Slices(RandomAnswer(2, 3, 2, false, 6).SerializeAsString(), 99);
  grpc::ByteBuffer b =
      Slices(RandomAnswer(2, 4, 2, false, 7).SerializeAsString(), 99);
  uint64_t size = 0;
  ASSERT_TRUE(assembler.Add(&a, {{0, 0, 2}}, 0, 0.5, &size).ok());
  const absl::Status s = assembler.Add(&b, {{0, 2, 2}}, 1, 0.5, &size);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("shards hold different dimensions: observation_dim 4"));
}

}  // namespace
}  // namespace softq
