// FlatAdam (learner/flat_adam.h): the same steps as torch::optim::Adam, over
// parameters that alias one flat buffer; re-pointed parameters and dropped
// gradients are taken back; its state round-trips through an archive, and a
// foreign state is refused.
#include "learner/flat_adam.h"

#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/optim/adam.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <functional>
#include <sstream>

namespace softq {
namespace {

torch::nn::Sequential Net() {
  return torch::nn::Sequential(torch::nn::Linear(3, 16), torch::nn::Tanh(),
                               torch::nn::Linear(16, 16), torch::nn::Tanh(),
                               torch::nn::Linear(16, 2));
}

void CopyInto(torch::nn::Sequential& from, torch::nn::Sequential& to) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < to->parameters().size(); ++i)
    to->parameters()[i].copy_(from->parameters()[i]);
}

// A loss whose gradients change from step to step.
torch::Tensor Loss(torch::nn::Sequential& net, int step) {
  torch::manual_seed(100 + step);
  const torch::Tensor x = torch::randn({32, 3});
  const torch::Tensor y = torch::randn({32, 2});
  return (net->forward(x) - y).pow(2).mean();
}

void ExpectSameParameters(torch::nn::Sequential& a, torch::nn::Sequential& b) {
  const auto pa = a->parameters(), pb = b->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::allclose(pa[i], pb[i], 1e-5, 1e-7))
        << "parameter " << i << " differs by "
        << (pa[i] - pb[i]).abs().max().item<float>();
  }
}

// Loads into `into` what `save` writes, through a serialized archive as a
// checkpoint would.
absl::Status LoadSaved(
    FlatAdam& into,
    const std::function<void(torch::serialize::OutputArchive&)>& save) {
  std::stringstream buffer;
  torch::serialize::OutputArchive out;
  save(out);
  out.save_to(buffer);
  torch::serialize::InputArchive in;
  in.load_from(buffer);
  return into.Load(in);
}

TEST(FlatAdam, TakesTheStepsOfTorchAdam) {
  torch::manual_seed(1);
  torch::nn::Sequential reference = Net();
  torch::nn::Sequential flat = Net();
  CopyInto(reference, flat);
  torch::optim::Adam adam(reference->parameters(),
                          torch::optim::AdamOptions(1e-2));
  FlatAdam flat_adam(flat->parameters(), 1e-2);
  for (int step = 0; step < 30; ++step) {
    adam.zero_grad();
    Loss(reference, step).backward();
    adam.step();
    flat_adam.ZeroGrad();
    Loss(flat, step).backward();
    flat_adam.Step();
  }
  EXPECT_EQ(flat_adam.steps(), 30);
  ExpectSameParameters(reference, flat);
}

TEST(FlatAdam, ParametersLiveInTheFlatBufferAndStepGathersTheGradients) {
  torch::manual_seed(2);
  torch::nn::Sequential net = Net();
  const std::vector<torch::Tensor> before = [&] {
    std::vector<torch::Tensor> copies;
    for (const auto& p : net->parameters())
      copies.push_back(p.detach().clone());
    return copies;
  }();
  FlatAdam adam(net->parameters(), 1e-3);
  int64_t total = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    const torch::Tensor p = net->parameters()[i];
    EXPECT_TRUE(p.is_leaf() && p.requires_grad());
    EXPECT_TRUE(torch::equal(p, before[i])) << "values kept";
    EXPECT_EQ(
        p.data_ptr(),
        static_cast<void*>(adam.flat_parameters().data_ptr<float>() + total));
    total += p.numel();
  }
  EXPECT_EQ(adam.flat_parameters().numel(), total);

  adam.ZeroGrad();
  for (const auto& p : net->parameters()) {
    EXPECT_FALSE(p.grad().defined()) << "ZeroGrad drops the gradients";
  }
  Loss(net, 0).backward();
  const std::vector<torch::Tensor> grads = [&] {
    std::vector<torch::Tensor> g;
    for (const auto& p : net->parameters()) g.push_back(p.grad().reshape({-1}));
    return g;
  }();
  adam.Step();
  EXPECT_TRUE(torch::equal(adam.flat_gradients(), torch::cat(grads)))
      << "Step gathered the gradients, in parameter order";
  EXPECT_GT(adam.flat_gradients().abs().sum().item<float>(), 0);
}

TEST(FlatAdam, StepsFromGradientsWrittenIntoItsSlots) {
  // The same gradients, handed over by autograd or written into the slots (by a
  // written-out backward pass), give the same step; a slot among handed-over
  // gradients is taken too.
  torch::manual_seed(4);
  torch::nn::Sequential handed = Net();
  torch::manual_seed(4);
  torch::nn::Sequential written = Net();
  torch::manual_seed(4);
  torch::nn::Sequential mixed = Net();
  FlatAdam adam_handed(handed->parameters(), 1e-2);
  FlatAdam adam_written(written->parameters(), 1e-2);
  FlatAdam adam_mixed(mixed->parameters(), 1e-2);
  for (int step = 0; step < 3; ++step) {
    adam_handed.ZeroGrad();
    Loss(handed, step).backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : handed->parameters())
      grads.push_back(p.grad().clone());

    adam_written.ZeroGrad();
    const std::vector<torch::Tensor> slots = adam_written.GradientSlots();
    ASSERT_EQ(slots.size(), grads.size());
    for (size_t i = 0; i < slots.size(); ++i) {
      EXPECT_TRUE(written->parameters()[i].grad().is_same(slots[i]));
      slots[i].copy_(grads[i]);
    }

    adam_mixed.ZeroGrad();
    const std::vector<torch::Tensor> mixed_slots = adam_mixed.GradientSlots();
    mixed_slots[0].copy_(grads[0]);
    for (size_t i = 1; i < grads.size(); ++i) {
      mixed->parameters()[i].mutable_grad() = grads[i].clone();
    }

    adam_handed.Step();
    adam_written.Step();
    adam_mixed.Step();
    EXPECT_TRUE(torch::equal(adam_written.flat_parameters(),
                             adam_handed.flat_parameters()));
    EXPECT_TRUE(torch::equal(adam_mixed.flat_parameters(),
                             adam_handed.flat_parameters()));
  }
  adam_written.ZeroGrad();
  EXPECT_FALSE(written->parameters()[0].grad().defined())
      << "ZeroGrad drops the slots too";
}

TEST(FlatAdam, AStepCountedAheadIsCountedOnce) {
  torch::manual_seed(5);
  torch::nn::Sequential plain = Net();
  torch::manual_seed(5);
  torch::nn::Sequential ahead = Net();
  FlatAdam adam_plain(plain->parameters(), 1e-2);
  FlatAdam adam_ahead(ahead->parameters(), 1e-2);
  for (int step = 0; step < 3; ++step) {
    adam_ahead.CountNextStep();
    adam_ahead.CountNextStep();  // once is enough
    adam_plain.ZeroGrad();
    adam_ahead.ZeroGrad();
    Loss(plain, step).backward();
    Loss(ahead, step).backward();
    adam_plain.Step();
    adam_ahead.Step();
    EXPECT_TRUE(torch::equal(adam_ahead.flat_parameters(),
                             adam_plain.flat_parameters()));
    EXPECT_EQ(adam_ahead.steps(), step + 1);
  }
}

TEST(FlatAdam, TakesBackARepointedParameterAndADroppedGradient) {
  torch::manual_seed(3);
  torch::nn::Sequential net = Net();
  FlatAdam adam(net->parameters(), 1e-3);
  torch::Tensor weight = net->parameters()[0];
  weight.set_data(
      torch::full(weight.sizes(), 0.25));  // as Module::load's set_ does
  adam.ZeroGrad();
  Loss(net, 0).backward();
  net->parameters()[1].mutable_grad() =
      torch::Tensor();  // a zero_grad(set_to_none)
  adam.Step();
  EXPECT_EQ(weight.data_ptr(), adam.flat_parameters().data_ptr())
      << "aliases its slice again";
  EXPECT_LT((weight - 0.25).abs().max().item<float>(), 2e-3)
      << "stepped from 0.25";
  EXPECT_NE((weight - 0.25).abs().max().item<float>(), 0);
  const int64_t weight_size = weight.numel();
  const int64_t bias_size = net->parameters()[1].numel();
  EXPECT_EQ(adam.flat_gradients()
                .narrow(0, weight_size, bias_size)
                .abs()
                .sum()
                .item<float>(),
            0)
      << "a dropped gradient counts as zero";
}

TEST(FlatAdam, StateRoundTripsAndForeignStateIsRefused) {
  torch::manual_seed(4);
  torch::nn::Sequential a = Net(), b = Net();
  CopyInto(a, b);
  FlatAdam adam_a(a->parameters(), 1e-2), adam_b(b->parameters(), 1e-2);
  for (int step = 0; step < 5; ++step) {
    adam_a.ZeroGrad();
    Loss(a, step).backward();
    adam_a.Step();
  }
  ASSERT_TRUE(LoadSaved(adam_b, [&](auto& out) { adam_a.Save(out); }).ok());
  EXPECT_EQ(adam_b.steps(), 5);
  CopyInto(a, b);
  for (int step = 5; step < 10; ++step) {
    for (auto [net, adam] : {std::pair{&a, &adam_a}, std::pair{&b, &adam_b}}) {
      adam->ZeroGrad();
      Loss(*net, step).backward();
      adam->Step();
    }
  }
  ExpectSameParameters(a, b);

  // torch::optim::Adam's state, and a FlatAdam state of another size.
  torch::optim::Adam torch_adam(a->parameters(),
                                torch::optim::AdamOptions(1e-2));
  const absl::Status refused =
      LoadSaved(adam_b, [&](auto& out) { torch_adam.save(out); });
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  torch::nn::Linear small(2, 2);
  FlatAdam other(small->parameters(), 1e-2);
  const absl::Status wrong_size =
      LoadSaved(adam_b, [&](auto& out) { other.Save(out); });
  EXPECT_EQ(wrong_size.code(), absl::StatusCode::kInvalidArgument)
      << wrong_size;
  EXPECT_EQ(adam_b.steps(), 10) << "a refused state changes nothing";
}

}  // namespace
}  // namespace softq
