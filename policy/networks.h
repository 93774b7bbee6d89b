// The two networks of Soft Q-Learning, as LibTorch modules:
//   QNetwork        Q_theta(s, a): ReLU MLP on [s, a] -> scalar.
//   SamplingNetwork f_phi(xi; s) = tanh(MLP([s, xi])), xi ~ N(0, I) of the
//   action's size.
// Weights are Xavier-uniform, biases zero. Modules are not thread-safe: one
// user at a time.
#ifndef SOFTQ_POLICY_NETWORKS_H_
#define SOFTQ_POLICY_NETWORKS_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/types.h>

#include <functional>
#include <vector>

namespace softq {

// Work that nothing queued after it reads until its owner joins it: run at once
// by default; CudaGraphUpdate runs it on a side CUDA stream, forked from the
// current one.
class SideWork {
 public:
  virtual ~SideWork() = default;
  virtual void Run(std::function<void()> work) { work(); }
};

// What a forward pass without a graph keeps for a written-out backward pass:
// the input and each hidden layer's output, as row matrices.
struct MlpActivations {
  torch::Tensor input;
  std::vector<torch::Tensor> hidden;
};

// An MLP with ReLU hidden layers and a linear output. Parameters are named
// "layers.<i>.weight" / "layers.<i>.bias".
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t input_dim, const std::vector<int64_t>& hidden,
          int64_t output_dim);
  torch::Tensor forward(torch::Tensor x);
  // forward without a graph, keeping in `saved` what ParameterGradients needs.
  torch::Tensor ForwardKeeping(torch::Tensor x, MlpActivations* saved);
  // The gradients of a loss with d loss / d output = grad_output [..., Out] at
  // the pass that `saved` kept, by the backward pass written out: written (not
  // added) into `out`, one tensor per parameter in parameters() order, each of
  // its parameter's shape. Each layer's weight and bias gradients go to `aside`
  // when a layer still has to be passed back through: the chain to the first
  // layer does not wait for them.
  void ParameterGradients(const MlpActivations& saved,
                          torch::Tensor grad_output,
                          const std::vector<torch::Tensor>& out,
                          SideWork& aside);
  // For an MLP with one output: d output / d x[..., first_column:] at inputs x
  // [..., In],
  // [..., In - first_column], by the backward pass written out (ReLU masks and
  // weights, no autograd graph and no output layer forward): autograd's numbers
  // in fewer operations.
  torch::Tensor InputGradient(torch::Tensor x, int64_t first_column);

 private:
  // x [..., In] folded into rows [N, In] and through every layer: [..., Out];
  // with `saved`, the rows and each hidden layer's output kept there (forward
  // and ForwardKeeping).
  torch::Tensor Pass(torch::Tensor x, MlpActivations* saved);
  // The hidden layers on rows x [N, In]: the last one's output (x itself with
  // none), each layer's output also appended to `outputs` when given.
  torch::Tensor HiddenLayers(torch::Tensor x,
                             std::vector<torch::Tensor>* outputs);

  torch::nn::ModuleList layers_;
};
TORCH_MODULE(Mlp);

class QNetworkImpl : public torch::nn::Module {
 public:
  QNetworkImpl(int64_t observation_dim, int64_t action_dim,
               const std::vector<int64_t>& hidden);
  // observations [..., O], actions [..., D] -> Q [...].
  torch::Tensor forward(const torch::Tensor& observations,
                        const torch::Tensor& actions);
  // dQ/da at (observations, actions): [..., D], without an autograd graph.
  torch::Tensor ActionGradient(const torch::Tensor& observations,
                               const torch::Tensor& actions);
  // forward without a graph, keeping what ParameterGradients needs.
  torch::Tensor ForwardKeeping(const torch::Tensor& observations,
                               const torch::Tensor& actions,
                               MlpActivations* saved);
  // Gradients of a loss with d loss / d Q = grad_q [...] at the pass that
  // ForwardKeeping kept in `saved`: as MlpImpl::ParameterGradients.
  void ParameterGradients(const MlpActivations& saved,
                          const torch::Tensor& grad_q,
                          const std::vector<torch::Tensor>& out,
                          SideWork& aside);

 private:
  Mlp mlp_;
};
TORCH_MODULE(QNetwork);

class SamplingNetworkImpl : public torch::nn::Module {
 public:
  SamplingNetworkImpl(int64_t observation_dim, int64_t action_dim,
                      const std::vector<int64_t>& hidden);
  // observations [..., O], noise [..., D] -> actions in (-1, 1), [..., D].
  torch::Tensor forward(const torch::Tensor& observations,
                        const torch::Tensor& noise);
  // forward without a graph, keeping what ParameterGradients needs.
  torch::Tensor ForwardKeeping(const torch::Tensor& observations,
                               const torch::Tensor& noise,
                               MlpActivations* saved);
  // Gradients of a loss with d loss / d actions = grad_actions at the `actions`
  // that ForwardKeeping returned (it kept `saved`): as
  // MlpImpl::ParameterGradients.
  void ParameterGradients(const MlpActivations& saved,
                          const torch::Tensor& actions,
                          const torch::Tensor& grad_actions,
                          const std::vector<torch::Tensor>& out,
                          SideWork& aside);
  // Draws `particles` actions per observation: [N, O] -> [N, particles, D]
  // (particles > 0), or [N, D] when particles == 0.
  torch::Tensor Sample(const torch::Tensor& observations,
                       int64_t particles = 0);
  int64_t action_dim() const { return action_dim_; }

 private:
  int64_t action_dim_;
  Mlp mlp_;
};
TORCH_MODULE(SamplingNetwork);

// Copies every parameter of `from` into `to`, in order (same architecture;
// these networks have no buffers): the hard target update. With tau in (0, 1),
// Polyak averaging: to = tau * from + (1 - tau) * to.
void CopyParameters(const torch::nn::Module& from, torch::nn::Module& to,
                    double tau = 1.0);

// The deterministic action f_phi(0; s) for `observations` [..., O]: [..., D].
torch::Tensor DeterministicAction(SamplingNetwork& policy,
                                  const torch::Tensor& observations);

}  // namespace softq

#endif  // SOFTQ_POLICY_NETWORKS_H_
