#include "bench/op_census.h"

#include <gtest/gtest.h>
#include <torch/types.h>

namespace softq {
namespace {

TEST(OpCensusTest, CountsOneOperationPerKernel) {
  const torch::Tensor a = torch::randn({4, 3});
  const torch::Tensor b = torch::randn({4, 3});
  OpCensus census;
  const torch::Tensor sum = a + b;
  const torch::Tensor product = sum * b;
  EXPECT_EQ(census.total(), 2);
  EXPECT_EQ(census.by_name().at("aten::add"), 1);
  EXPECT_EQ(census.by_name().at("aten::mul"), 1);
}

TEST(OpCensusTest, ViewsCountNothing) {
  const torch::Tensor a = torch::randn({4, 3});
  OpCensus census;
  const torch::Tensor v =
      a.view({3, 4}).unsqueeze(0).expand({2, 3, 4}).slice(1, 0, 2);
  EXPECT_EQ(census.total(), 0);
}

TEST(OpCensusTest, CountsACopyInsideAView) {
  const torch::Tensor a =
      torch::randn({4, 3}).t();  // not contiguous: reshape must copy
  OpCensus census;
  const torch::Tensor flat = a.reshape({-1});
  EXPECT_EQ(census.total(), 1);
}

TEST(OpCensusTest, CountsTheOutermostOperationOnly) {
  const torch::Tensor x = torch::randn({4, 3});
  const torch::Tensor w = torch::randn({5, 3});
  const torch::Tensor bias = torch::randn({5});
  OpCensus census;
  const torch::Tensor y = torch::linear(x, w, bias);  // calls t and addmm
  EXPECT_EQ(census.total(), 1);
  EXPECT_EQ(census.by_name().at("aten::linear"), 1);
}

TEST(OpCensusTest, CountsBackwardOperations) {
  const torch::Tensor x = torch::randn({4, 3}, torch::requires_grad());
  torch::Tensor loss;
  {
    OpCensus forward_only;
    loss = (x * x).sum();
    EXPECT_EQ(forward_only.total(), 2);
  }
  OpCensus census;
  loss.backward();
  EXPECT_GE(census.total(),
            2);  // at least the two products of x * x's backward
}

TEST(OpCensusTest, StopsCountingWhenDestroyed) {
  const torch::Tensor a = torch::randn({3});
  { OpCensus census; }
  OpCensus census;
  EXPECT_EQ(census.total(), 0);
  const torch::Tensor b = a + 1;
  EXPECT_EQ(census.total(), 1);
}

}  // namespace
}  // namespace softq
