// The networks (policy/networks.h): the hand-written gradient of Q in its
// actions equals autograd's, whatever the depth and the leading dimensions.
#include "policy/networks.h"

#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <functional>
#include <vector>

namespace softq {
namespace {

torch::Tensor AutogradActionGradient(QNetwork& q,
                                     const torch::Tensor& observations,
                                     const torch::Tensor& actions) {
  const torch::Tensor a = actions.clone().requires_grad_(true);
  return torch::autograd::grad({q->forward(observations, a).sum()}, {a})[0];
}

TEST(QNetworkActionGradient, EqualsAutogradForAnyDepth) {
  for (const std::vector<int64_t>& hidden :
       {std::vector<int64_t>{}, std::vector<int64_t>{8},
        std::vector<int64_t>{16, 16}, std::vector<int64_t>{32, 16, 8}}) {
    torch::manual_seed(4);
    QNetwork q(3, 2, hidden);
    // Non-zero biases, so that some ReLUs are off and some on.
    for (auto& p : q->parameters()) p.data().normal_();
    const torch::Tensor obs = torch::randn({5, 7, 3});
    const torch::Tensor actions = torch::rand({5, 7, 2}) * 2 - 1;
    const torch::Tensor expected = AutogradActionGradient(q, obs, actions);
    const torch::Tensor got = q->ActionGradient(obs, actions);
    ASSERT_EQ(got.sizes(), expected.sizes())
        << hidden.size() << " hidden layers";
    EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6))
        << hidden.size() << " hidden layers";
    EXPECT_FALSE(got.requires_grad());
  }
}

TEST(QNetworkActionGradient, TakesAMatrixOfStates) {
  torch::manual_seed(5);
  QNetwork q(4, 3, std::vector<int64_t>{16, 16});
  const torch::Tensor obs = torch::randn({6, 4});
  const torch::Tensor actions = torch::rand({6, 3}) * 2 - 1;
  EXPECT_TRUE(torch::allclose(q->ActionGradient(obs, actions),
                              AutogradActionGradient(q, obs, actions), 1e-5,
                              1e-6));
}

TEST(Mlp, ForwardWithoutAGraphEqualsTheRecordedOne) {
  // Each hidden layer is one fused addmm-and-ReLU, with a graph (our
  // derivative) or without one. The numbers must not depend on which.
  torch::manual_seed(3);
  Mlp mlp(4, std::vector<int64_t>{32, 16}, 3);
  const torch::Tensor x = torch::randn({5, 7, 4}) * 3;
  const torch::Tensor recorded = mlp->forward(x);
  ASSERT_TRUE(recorded.requires_grad());
  torch::NoGradGuard no_grad;
  const torch::Tensor unrecorded = mlp->forward(x);
  EXPECT_FALSE(unrecorded.requires_grad());
  EXPECT_TRUE(torch::allclose(unrecorded, recorded.detach(), 1e-6, 1e-6));
}

// The MLP as LibTorch's own modules would compute it: Linear, then ReLU, then
// Linear.
torch::Tensor ComposedForward(Mlp& mlp, torch::Tensor x) {
  const auto layers = mlp->modules(/*include_self=*/false);
  std::vector<torch::nn::LinearImpl*> linear;
  for (const auto& m : layers) {
    if (auto* l = m->as<torch::nn::Linear>()) linear.push_back(l);
  }
  for (size_t i = 0; i < linear.size(); ++i) {
    x = linear[i]->forward(x);
    if (i + 1 < linear.size()) x = torch::relu(x);
  }
  return x;
}

TEST(Mlp, FusedHiddenLayersHaveAutogradsGradients) {
  // Inputs with and without gradients (a policy's noise needs none; DDPG's
  // policy loss runs back through Q's inputs), and a seed that reaches both
  // sides of every ReLU.
  torch::manual_seed(4);
  Mlp mlp(4, std::vector<int64_t>{32, 16}, 3);
  for (const bool input_grad : {false, true}) {
    SCOPED_TRACE(input_grad ? "input needs a gradient" : "input needs none");
    const torch::Tensor x =
        (torch::randn({9, 4}) * 3).requires_grad_(input_grad);
    const torch::Tensor seed = torch::randn({9, 3});
    const std::vector<torch::Tensor> params = mlp->parameters();
    std::vector<torch::Tensor> wrt = params;
    if (input_grad) wrt.push_back(x);
    const std::vector<torch::Tensor> fused =
        torch::autograd::grad({mlp->forward(x)}, wrt, {seed});
    const std::vector<torch::Tensor> composed =
        torch::autograd::grad({ComposedForward(mlp, x)}, wrt, {seed});
    ASSERT_EQ(fused.size(), composed.size());
    for (size_t i = 0; i < fused.size(); ++i) {
      EXPECT_TRUE(torch::allclose(fused[i], composed[i], 1e-5, 1e-6))
          << "gradient " << i;
      EXPECT_GT(composed[i].abs().sum().item<float>(), 0.0f)
          << "gradient " << i;
    }
  }
}

// Side work run only when asked, after everything else: a backward pass that
// waited on it would read gradients not yet written.
class DeferredSideWork : public SideWork {
 public:
  void Run(std::function<void()> work) override {
    deferred_.push_back(std::move(work));
  }
  void Join() {
    for (auto& work : deferred_) work();
    deferred_.clear();
  }
  size_t pending() const { return deferred_.size(); }

 private:
  std::vector<std::function<void()>> deferred_;
};

// What `write` writes out into tensors shaped as `params` (filled with 7s
// first, so that anything left unwritten shows), its side work deferred to the
// very end, against autograd's `expected`: every layer but the first
// (`hidden_layers` of them) goes aside.
void ExpectWrittenOutGradients(
    const std::vector<torch::Tensor>& params,
    const std::vector<torch::Tensor>& expected, size_t hidden_layers,
    const std::function<void(const std::vector<torch::Tensor>&, SideWork&)>&
        write) {
  std::vector<torch::Tensor> got;
  for (const torch::Tensor& p : params) got.push_back(torch::full_like(p, 7.0));
  DeferredSideWork aside;
  write(got, aside);
  EXPECT_EQ(aside.pending(), hidden_layers);
  aside.Join();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::allclose(got[i], expected[i], 1e-5, 1e-6))
        << "parameter " << i;
  }
}

TEST(SamplingNetwork, WrittenOutGradientsEqualAutogradsForAnyDepth) {
  for (const std::vector<int64_t>& hidden :
       {std::vector<int64_t>{}, {16}, {32, 16}, {8, 8, 8}}) {
    SCOPED_TRACE(hidden.size());
    torch::manual_seed(6);
    SamplingNetwork policy(3, 2, hidden);
    const torch::Tensor obs = torch::randn({5, 4, 3});
    const torch::Tensor noise = torch::randn({5, 4, 2});
    const torch::Tensor grad_actions = torch::randn({5, 4, 2});
    const std::vector<torch::Tensor> params = policy->parameters();
    const std::vector<torch::Tensor> expected = torch::autograd::grad(
        {policy->forward(obs, noise)}, params, {grad_actions});

    MlpActivations kept;
    const torch::Tensor actions = policy->ForwardKeeping(obs, noise, &kept);
    EXPECT_FALSE(actions.requires_grad());
    EXPECT_TRUE(torch::allclose(actions, policy->forward(obs, noise).detach(),
                                1e-6, 1e-6));
    ExpectWrittenOutGradients(
        params, expected, hidden.size(),
        [&](const std::vector<torch::Tensor>& got, SideWork& aside) {
          policy->ParameterGradients(kept, actions, grad_actions, got, aside);
        });
  }
}

TEST(QNetwork, WrittenOutGradientsEqualAutogradsForAnyDepth) {
  for (const std::vector<int64_t>& hidden :
       {std::vector<int64_t>{}, {16}, {32, 16}, {8, 8, 8}}) {
    SCOPED_TRACE(hidden.size());
    torch::manual_seed(7);
    QNetwork q(3, 2, hidden);
    const torch::Tensor obs = torch::randn({6, 3});
    const torch::Tensor actions = torch::rand({6, 2}) * 2 - 1;
    const torch::Tensor grad_q = torch::randn({6});
    const std::vector<torch::Tensor> params = q->parameters();
    const std::vector<torch::Tensor> expected =
        torch::autograd::grad({q->forward(obs, actions)}, params, {grad_q});

    MlpActivations kept;
    const torch::Tensor value = q->ForwardKeeping(obs, actions, &kept);
    EXPECT_FALSE(value.requires_grad());
    EXPECT_EQ(value.sizes(), torch::IntArrayRef({6}));
    EXPECT_TRUE(
        torch::allclose(value, q->forward(obs, actions).detach(), 1e-6, 1e-6));
    ExpectWrittenOutGradients(
        params, expected, hidden.size(),
        [&](const std::vector<torch::Tensor>& got, SideWork& aside) {
          q->ParameterGradients(kept, grad_q, got, aside);
        });
  }
}

}  // namespace
}  // namespace softq
