// The fused CUDA Stein kernel's arithmetic (learner/stein_block.h) and argument
// packing (learner/fused_ops.cc), run on the CPU one logical thread at a time
// by its host twin, against the ATen operations it replaces
// (sql::AdaptiveRbfKernel, sql::SteinDirection).
#include "learner/stein_block.h"

#include <gtest/gtest.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <cmath>

#include "learner/fused_ops.h"
#include "learner/sql_math.h"

namespace softq {
namespace {

// The kernel's host twin: the device launch's argument packing, every state's
// block run on the CPU.
sql::FusedStein RunBlocks(const torch::Tensor& fixed,
                          const torch::Tensor& updated,
                          const torch::Tensor& grad_log_p, double scale,
                          bool squashed = false, bool pad_fixed = false) {
  return sql::FusedSteinDirectionOnHost(fixed, updated, grad_log_p, scale,
                                        squashed, pad_fixed);
}

void ExpectMatchesAten(const torch::Tensor& x, const torch::Tensor& y,
                       const torch::Tensor& g, double scale) {
  const sql::RbfKernel kernel = sql::AdaptiveRbfKernel(x, y);
  const torch::Tensor expected = sql::SteinDirection(kernel, x, y, g, scale);
  const sql::FusedStein block = RunBlocks(x, y, g, scale);
  // The bandwidth is the same element of the same distances (summed over D in
  // another order, so equal up to rounding).
  EXPECT_TRUE(torch::allclose(block.bandwidth, kernel.bandwidth, 1e-6, 0))
      << block.bandwidth << "\nvs\n"
      << kernel.bandwidth;
  EXPECT_TRUE(torch::allclose(block.direction, expected, 1e-4, 1e-5))
      << (block.direction - expected).abs().max();
}

TEST(SteinBlock, MatchesTheAtenOperationsAtTheUpdatesShapes) {
  torch::manual_seed(0);
  // The multi-goal update's shapes: K = 32 particles, half fixed, 2-D actions.
  const torch::Tensor x = torch::rand({8, 16, 2}) * 2 - 1;
  const torch::Tensor y = torch::rand({8, 16, 2}) * 2 - 1;
  const torch::Tensor g = torch::randn({8, 16, 2}) * 5;
  ExpectMatchesAten(x, y, g, 1.0);
  ExpectMatchesAten(x, y, g,
                    -1.0);  // the surrogate's gradient, as the update asks
}

TEST(SteinBlock, MatchesForUnevenParticleCountsAndDimensions) {
  torch::manual_seed(1);
  for (const auto& [kx, ky, d] :
       {std::tuple{2, 1, 1}, std::tuple{5, 7, 3}, std::tuple{17, 3, 6},
        std::tuple{64, 64, 2}}) {
    SCOPED_TRACE(testing::Message()
                 << "kx=" << kx << " ky=" << ky << " d=" << d);
    ExpectMatchesAten(torch::randn({3, kx, d}), torch::randn({3, ky, d}),
                      torch::randn({3, kx, d}), 1.0);
  }
}

TEST(SteinBlock, PicksTheLowerMedianAmongTiedDistances) {
  // Repeated particles make many equal distances; the median is the one a sort
  // puts in the middle, whichever copy it is.
  torch::manual_seed(2);
  const torch::Tensor base = torch::randn({2, 3, 2});
  const torch::Tensor x =
      torch::cat({base, base, base.narrow(1, 0, 2)}, 1);  // [2, 8, 2]
  const torch::Tensor y =
      torch::cat({base, base.narrow(1, 1, 1)}, 1);  // [2, 4, 2]
  ExpectMatchesAten(x, y, torch::randn({2, 8, 2}), 1.0);
}

TEST(SteinBlock, AddsTheSquashingTermAndPadsAsTheUpdateAsks) {
  // The update's call: Q's action gradient in, the squashing's term added, the
  // gradient for all K particles out (zeros for the fixed ones).
  torch::manual_seed(3);
  const torch::Tensor all =
      torch::tanh(torch::randn({4, 12, 2}) * 2);  // near +-1 too
  const torch::Tensor x = all.slice(1, 0, 5), y = all.slice(1, 5);
  const torch::Tensor q_gradient = torch::randn({4, 5, 2});
  sql::SvgdGradientOptions options;
  options.squashed = true;
  options.pad_fixed = true;
  options.fused = false;
  const sql::SvgdGradient expected =
      sql::SvgdLossGradient(x, y, q_gradient, options);
  const sql::FusedStein block =
      RunBlocks(x, y, q_gradient, -1.0, /*squashed=*/true, /*pad=*/true);
  ASSERT_EQ(block.direction.sizes(), expected.loss_gradient.sizes());
  EXPECT_TRUE(
      torch::equal(block.direction.slice(1, 0, 5), torch::zeros({4, 5, 2})));
  EXPECT_TRUE(
      torch::allclose(block.direction, expected.loss_gradient, 1e-4, 1e-5))
      << (block.direction - expected.loss_gradient).abs().max();
  EXPECT_TRUE(torch::allclose(block.bandwidth, expected.bandwidth, 1e-6, 0));
  // And the padded, squashed gradient is the plain one on the score with its
  // term.
  const torch::Tensor plain =
      sql::SvgdLossGradient(x, y, sql::SquashedScore(q_gradient, x),
                            {false, false, false})
          .loss_gradient;
  EXPECT_TRUE(torch::allclose(expected.loss_gradient.slice(1, 5), plain));
}

TEST(SteinBlock, ClampsTheBandwidthWhenParticlesCoincide) {
  const torch::Tensor same = torch::full({1, 4, 2}, 0.3);
  const sql::FusedStein block =
      RunBlocks(same, same, torch::ones({1, 4, 2}), 1.0);
  EXPECT_FLOAT_EQ(block.bandwidth.item<float>(), 1e-3f);
  // kappa = 1 everywhere and no repulsion: Delta is the mean score.
  EXPECT_TRUE(torch::allclose(block.direction, torch::ones({1, 4, 2})));
}

TEST(SteinBlock, NonFiniteInputsGiveANonFiniteDirection) {
  torch::Tensor x = torch::randn({1, 4, 2});
  x[0][1][0] = std::nanf("");
  const sql::FusedStein block =
      RunBlocks(x, torch::randn({1, 4, 2}), torch::randn({1, 4, 2}), 1.0);
  EXPECT_FALSE(torch::isfinite(block.direction).all().item<bool>());
}

TEST(SteinBlock, TheHostTwinRefusesTensorsTheKernelDoesNotTake) {
  const torch::Tensor x = torch::randn({2, 4, 2});
  EXPECT_THROW(RunBlocks(x.to(torch::kDouble), x, x, 1.0),
               c10::Error);  // not float32
  EXPECT_THROW(RunBlocks(x.transpose(1, 2), x, x, 1.0),
               c10::Error);  // rows strided
  EXPECT_THROW(RunBlocks(x, x, torch::randn({2, 3, 2}), 1.0),
               c10::Error);  // score's shape
}

TEST(SteinBlock, PhasesNeedAsManyThreadsAsTheirWidestStep) {
  EXPECT_EQ(stein::PhaseThreads(0, 16, 16, 2), 256);  // distances
  EXPECT_EQ(stein::PhaseThreads(1, 16, 16, 2), 256);  // median ranks
  EXPECT_EQ(stein::PhaseThreads(2, 4, 2, 6),
            24);  // kernel values or pulled scores
  EXPECT_EQ(stein::PhaseThreads(3, 16, 16, 2), 32);  // direction coordinates
  EXPECT_EQ(stein::PhaseThreads(3, 16, 16, 2, /*pad_rows=*/16),
            64);  // and the zeros
  EXPECT_EQ(stein::ScratchFloats(16, 16, 2), 256 + 32 + 1);
}

}  // namespace
}  // namespace softq
