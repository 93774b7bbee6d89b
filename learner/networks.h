// The two networks of Soft Q-Learning, as LibTorch modules:
//   QNetwork        Q_theta(s, a): ReLU MLP on [s, a] -> scalar.
//   SamplingNetwork f_phi(xi; s) = tanh(MLP([s, xi])), xi ~ N(0, I) of the action's size.
// Weights are Xavier-uniform, biases zero. Modules are not thread-safe: one user at a time.
#ifndef SOFTQ_LEARNER_NETWORKS_H_
#define SOFTQ_LEARNER_NETWORKS_H_

#include <vector>

#include <torch/torch.h>

namespace softq {

// An MLP with ReLU hidden layers and a linear output. Parameters are named
// "layers.<i>.weight" / "layers.<i>.bias".
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t input_dim, const std::vector<int64_t>& hidden, int64_t output_dim);
  torch::Tensor forward(torch::Tensor x);
  // For an MLP with one output: d output / d x[..., first_column:] at inputs x [..., In],
  // [..., In - first_column], by the backward pass written out (ReLU masks and weights, no
  // autograd graph and no output layer forward): autograd's numbers in fewer operations.
  torch::Tensor InputGradient(torch::Tensor x, int64_t first_column);

 private:
  torch::nn::ModuleList layers_;
};
TORCH_MODULE(Mlp);

class QNetworkImpl : public torch::nn::Module {
 public:
  QNetworkImpl(int64_t observation_dim, int64_t action_dim, const std::vector<int64_t>& hidden);
  // observations [..., O], actions [..., D] -> Q [...].
  torch::Tensor forward(const torch::Tensor& observations, const torch::Tensor& actions);
  // dQ/da at (observations, actions): [..., D], without an autograd graph.
  torch::Tensor ActionGradient(const torch::Tensor& observations, const torch::Tensor& actions);

 private:
  Mlp mlp_;
};
TORCH_MODULE(QNetwork);

class SamplingNetworkImpl : public torch::nn::Module {
 public:
  SamplingNetworkImpl(int64_t observation_dim, int64_t action_dim,
                      const std::vector<int64_t>& hidden);
  // observations [..., O], noise [..., D] -> actions in (-1, 1), [..., D].
  torch::Tensor forward(const torch::Tensor& observations, const torch::Tensor& noise);
  // Draws `particles` actions per observation: [N, O] -> [N, particles, D] (particles > 0),
  // or [N, D] when particles == 0.
  torch::Tensor Sample(const torch::Tensor& observations, int64_t particles = 0);
  int64_t action_dim() const { return action_dim_; }

 private:
  int64_t action_dim_;
  Mlp mlp_;
};
TORCH_MODULE(SamplingNetwork);

// Copies every parameter and buffer of `from` into `to` (same architecture): the hard
// target update. With tau in (0, 1): to = tau * from + (1 - tau) * to (Polyak).
void CopyParameters(const torch::nn::Module& from, torch::nn::Module& to, double tau = 1.0);

}  // namespace softq

#endif  // SOFTQ_LEARNER_NETWORKS_H_
