#include "replay/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "replay/prioritized_sampler.h"
#include "replay/shard.h"
#include "replay/uniform_sampler.h"
#include "tests/replay/server_fixture.h"

namespace softq {
namespace {

// Pearson's chi-square statistic of `observed` counts against `expected`
// probabilities.
double ChiSquare(const std::vector<int>& observed,
                 const std::vector<double>& expected, int n) {
  double chi = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    const double e = expected[i] * n;
    chi += (observed[i] - e) * (observed[i] - e) / e;
  }
  return chi;
}

TEST(UniformSampler, DrawsEveryHeldSlotWithProbabilityOneOverSize) {
  UniformSampler sampler;
  std::mt19937_64 gen(1);
  std::vector<int> counts(8, 0);
  const int n = 40000;
  for (int i = 0; i < n; ++i) {
    const SampledSlot s = sampler.Sample(gen, 8);
    ASSERT_LT(s.slot, 8u);
    EXPECT_DOUBLE_EQ(s.probability, 1.0 / 8);
    ++counts[s.slot];
  }
  // 7 degrees of freedom: P(chi2 > 24.3) = 0.001.
  EXPECT_LT(ChiSquare(counts, std::vector<double>(8, 1.0 / 8), n), 24.3);
}

TEST(PrioritizedSampler, DrawsSlotsInProportionToPriorityToTheAlpha) {
  const double alpha = 0.5;
  PrioritizedSampler sampler(6, alpha);
  const std::vector<float> priorities = {1, 4, 9, 16,
                                         25};  // slot 5 never written
  double total = 0;
  for (size_t i = 0; i < priorities.size(); ++i) {
    sampler.Set(i, priorities[i]);
    total += std::pow(priorities[i], alpha);
  }
  std::vector<double> expected;
  for (float p : priorities) expected.push_back(std::pow(p, alpha) / total);
  std::mt19937_64 gen(2);
  std::vector<int> counts(5, 0);
  const int n = 60000;
  for (int i = 0; i < n; ++i) {
    const SampledSlot s = sampler.Sample(gen, 5);
    ASSERT_LT(s.slot, 5u);
    EXPECT_NEAR(s.probability, expected[s.slot], 1e-12);
    ++counts[s.slot];
  }
  // 4 degrees of freedom: P(chi2 > 18.47) = 0.001.
  EXPECT_LT(ChiSquare(counts, expected, n), 18.47);
}

TEST(PrioritizedSampler, AnUpdateMovesTheMassAndTheTreeStaysExact) {
  PrioritizedSampler sampler(3, 1.0);
  for (int i = 0; i < 3; ++i) sampler.Set(i, 1.0f);
  for (int k = 0; k < 100000; ++k) sampler.Set(k % 3, 1.0f + (k % 7));
  sampler.Set(0, 1e-3f);
  sampler.Set(1, 1e-3f);
  sampler.Set(2, 10.0f);
  EXPECT_DOUBLE_EQ(sampler.total(), 10.0 + 2e-3 * 1.0000000474974513);
  std::mt19937_64 gen(3);
  int slot2 = 0;
  for (int i = 0; i < 1000; ++i) slot2 += sampler.Sample(gen, 3).slot == 2;
  EXPECT_GT(slot2, 990);
  EXPECT_FLOAT_EQ(sampler.max_priority(), 10.0f);
}

TEST(MakeSampler, RejectsAnUnknownNameOrExponentNamingTheFlag) {
  EXPECT_EQ(MakeSampler("fifo", 10, 0.6).status().message().find("--sampler"),
            0u);
  EXPECT_EQ(MakeSampler("prioritized", 10, 1.5)
                .status()
                .message()
                .find("--priority_exponent"),
            0u);
  EXPECT_EQ((*MakeSampler("prioritized", 10, 0.6))->name(), "prioritized");
}

TEST(MakeSampler, RefusesAPrioritizedSamplerBeyondTheProcessMemory) {
  // The sum tree of 2^64 - 1 slots: refused up front (its size doubling would
  // have overflowed, or the allocation thrown).
  const absl::StatusOr<std::unique_ptr<Sampler>> huge =
      MakeSampler("prioritized", UINT64_MAX, 0.6);
  EXPECT_TRUE(absl::IsResourceExhausted(huge.status())) << huge.status();
  EXPECT_EQ(huge.status().message().find("--capacity"), 0u) << huge.status();
  EXPECT_TRUE(MakeSampler("uniform", UINT64_MAX, 0.6).ok());
}

// The keys of 4 samples of 16 from a shard of keys [0, 64) built with `seed`
// and `shard_id`.
std::vector<uint64_t> SampledKeys(uint64_t seed, const std::string& shard_id) {
  ShardOptions options;
  options.capacity = 64;
  options.seed = seed;
  options.shard_id = shard_id;
  std::unique_ptr<Shard> shard = *Shard::Create(options);
  EXPECT_TRUE(
      shard->Insert(testing::MakeBatch(64, 0), {}, absl::InfiniteFuture())
          .ok());
  std::vector<uint64_t> keys;
  for (int i = 0; i < 4; ++i) {
    proto::SampleResponse response;
    EXPECT_TRUE(
        shard->Sample(16, absl::InfiniteFuture(), nullptr, &response).ok());
    keys.insert(keys.end(), response.keys().begin(), response.keys().end());
  }
  return keys;
}

TEST(ShardSampling, ASeedRepeatsTheDrawsAndTheShardIdSetsShardsApart) {
  EXPECT_EQ(SampledKeys(7, "0"), SampledKeys(7, "0"));
  EXPECT_NE(SampledKeys(7, "0"), SampledKeys(7, "1"));
  EXPECT_NE(SampledKeys(7, "0"), SampledKeys(8, "0"));
  // Seed 0 draws from std::random_device: two shards agreeing on 64 draws of
  // 64 keys would be a 64^-64 chance.
  EXPECT_NE(SampledKeys(0, "0"), SampledKeys(0, "0"));
}

}  // namespace
}  // namespace softq
