#include "policy/networks.h"

#include <torch/autograd.h>
#include <torch/nn/init.h>
#include <torch/nn/modules/linear.h>

namespace softq {
namespace {

// relu(x W^T + b) as one operation, recorded or not: on a GPU cuBLASLt's fused
// epilogue (one kernel where addmm and relu are two; addmm then an in-place
// relu on a CPU). Autograd has no derivative for _addmm_activation, so this
// function gives it ReLU's and addmm's: the mask of the output, then the
// products and the bias's sum, each only where an input wants it.
struct LinearReluFunction : torch::autograd::Function<LinearReluFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& x,
                               const torch::Tensor& weight,
                               const torch::Tensor& bias) {
    torch::Tensor out = at::_addmm_activation(bias, x, weight.t());
    ctx->save_for_backward({x, weight, out});
    return out;
  }

  static torch::autograd::variable_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const torch::Tensor g = torch::threshold_backward(grads[0], saved[2], 0);
    return {ctx->needs_input_grad(0) ? g.mm(saved[1]) : torch::Tensor(),
            ctx->needs_input_grad(1) ? g.t().mm(saved[0]) : torch::Tensor(),
            ctx->needs_input_grad(2) ? g.sum(0) : torch::Tensor()};
  }
};

torch::Tensor LinearRelu(torch::nn::LinearImpl& layer, const torch::Tensor& x) {
  if (!torch::GradMode::is_enabled()) {
    return at::_addmm_activation(layer.bias, x, layer.weight.t());
  }
  return LinearReluFunction::apply(x, layer.weight, layer.bias);
}

}  // namespace

MlpImpl::MlpImpl(int64_t input_dim, const std::vector<int64_t>& hidden,
                 int64_t output_dim) {
  int64_t in = input_dim;
  for (int64_t width : hidden) {
    layers_->push_back(torch::nn::Linear(in, width));
    in = width;
  }
  layers_->push_back(torch::nn::Linear(in, output_dim));
  register_module("layers", layers_);
  torch::NoGradGuard no_grad;
  for (auto& layer : *layers_) {
    auto* linear = layer->as<torch::nn::Linear>();
    torch::nn::init::xavier_uniform_(linear->weight);
    torch::nn::init::zeros_(linear->bias);
  }
}

torch::Tensor MlpImpl::HiddenLayers(torch::Tensor x,
                                    std::vector<torch::Tensor>* outputs) {
  for (size_t i = 0; i + 1 < layers_->size(); ++i) {
    x = LinearRelu(*layers_[i]->as<torch::nn::Linear>(), x);
    if (outputs != nullptr) outputs->push_back(x);
  }
  return x;
}

torch::Tensor MlpImpl::Pass(torch::Tensor x, MlpActivations* saved) {
  // Linear on a matrix is one fused addmm; on [B, K, D] it is a matmul and a
  // separate bias add. Particles come as [B, K, D]: fold them into rows (one
  // kernel per layer, which is what an update on a GPU costs) and unfold the
  // result.
  std::vector<int64_t> shape = x.sizes().vec();
  x = x.reshape({-1, x.size(-1)});
  if (saved != nullptr) {
    saved->input = x;
    saved->hidden.clear();
  }
  x = layers_[layers_->size() - 1]->as<torch::nn::Linear>()->forward(
      HiddenLayers(x, saved != nullptr ? &saved->hidden : nullptr));
  shape.back() = x.size(-1);
  return x.view(shape);
}

torch::Tensor MlpImpl::forward(torch::Tensor x) { return Pass(x, nullptr); }

torch::Tensor MlpImpl::ForwardKeeping(torch::Tensor x, MlpActivations* saved) {
  torch::NoGradGuard no_grad;
  return Pass(x, saved);
}

void MlpImpl::ParameterGradients(const MlpActivations& saved,
                                 torch::Tensor grad_output,
                                 const std::vector<torch::Tensor>& out,
                                 SideWork& aside) {
  torch::NoGradGuard no_grad;
  const size_t n = layers_->size();
  TORCH_CHECK(out.size() == 2 * n, "ParameterGradients: ", out.size(),
              " outputs for ", n, " layers");
  // Layer i back from g = d loss / d (its pre-activation): its weight's
  // gradient g^T input, its bias's the column sums of g; then through its
  // weights and the previous ReLU.
  torch::Tensor g = grad_output.reshape({-1, grad_output.size(-1)});
  for (size_t i = n; i-- > 0;) {
    const torch::Tensor input = i == 0 ? saved.input : saved.hidden[i - 1];
    torch::Tensor weight_grad = out[2 * i], bias_grad = out[2 * i + 1];
    auto layer_gradients = [g, input, weight_grad, bias_grad]() mutable {
      at::mm_out(weight_grad, g.t(), input);
      at::sum_out(bias_grad, g, {0});
    };
    if (i == 0) {
      layer_gradients();
      break;
    }
    aside.Run(layer_gradients);
    g = torch::threshold_backward(
        g.mm(layers_[i]->as<torch::nn::Linear>()->weight), saved.hidden[i - 1],
        0);
  }
}

torch::Tensor MlpImpl::InputGradient(torch::Tensor x, int64_t first_column) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> shape = x.sizes().vec();
  x = x.reshape({-1, x.size(-1)});
  const int64_t rows = x.size(0);
  const size_t n = layers_->size();
  const auto weight = [&](size_t i) {
    return layers_[i]->as<torch::nn::Linear>()->weight;
  };
  std::vector<torch::Tensor> hidden;  // each hidden layer's output
  HiddenLayers(x, &hidden);
  // d output / d (last hidden layer) is the output layer's weight row for every
  // input; then each layer back: through the ReLU (its mask), then through the
  // weights.
  torch::Tensor grad = weight(n - 1);  // [1, H]
  for (size_t i = n - 1; i-- > 0;) {
    grad = torch::threshold_backward(grad.expand({rows, grad.size(1)}),
                                     hidden[i], 0);
    const torch::Tensor w = weight(i);
    grad = grad.mm(i == 0 ? w.narrow(1, first_column, w.size(1) - first_column)
                          : w);
  }
  if (n == 1) {  // no hidden layer: the weights alone
    grad = grad.narrow(1, first_column, grad.size(1) - first_column)
               .expand({rows, -1})
               .clone();
  }
  shape.back() = grad.size(1);
  return grad.view(shape);
}

QNetworkImpl::QNetworkImpl(int64_t observation_dim, int64_t action_dim,
                           const std::vector<int64_t>& hidden)
    : mlp_(observation_dim + action_dim, hidden, 1) {
  register_module("mlp", mlp_);
}

torch::Tensor QNetworkImpl::forward(const torch::Tensor& observations,
                                    const torch::Tensor& actions) {
  return mlp_->forward(torch::cat({observations, actions}, -1)).squeeze(-1);
}

torch::Tensor QNetworkImpl::ActionGradient(const torch::Tensor& observations,
                                           const torch::Tensor& actions) {
  return mlp_->InputGradient(torch::cat({observations, actions}, -1),
                             observations.size(-1));
}

torch::Tensor QNetworkImpl::ForwardKeeping(const torch::Tensor& observations,
                                           const torch::Tensor& actions,
                                           MlpActivations* saved) {
  return mlp_->ForwardKeeping(torch::cat({observations, actions}, -1), saved)
      .squeeze(-1);
}

void QNetworkImpl::ParameterGradients(const MlpActivations& saved,
                                      const torch::Tensor& grad_q,
                                      const std::vector<torch::Tensor>& out,
                                      SideWork& aside) {
  mlp_->ParameterGradients(saved, grad_q.unsqueeze(-1), out, aside);
}

SamplingNetworkImpl::SamplingNetworkImpl(int64_t observation_dim,
                                         int64_t action_dim,
                                         const std::vector<int64_t>& hidden)
    : action_dim_(action_dim),
      mlp_(observation_dim + action_dim, hidden, action_dim) {
  register_module("mlp", mlp_);
}

torch::Tensor SamplingNetworkImpl::forward(const torch::Tensor& observations,
                                           const torch::Tensor& noise) {
  return torch::tanh(mlp_->forward(torch::cat({observations, noise}, -1)));
}

torch::Tensor SamplingNetworkImpl::ForwardKeeping(
    const torch::Tensor& observations, const torch::Tensor& noise,
    MlpActivations* saved) {
  torch::NoGradGuard no_grad;
  return torch::tanh(
      mlp_->ForwardKeeping(torch::cat({observations, noise}, -1), saved));
}

void SamplingNetworkImpl::ParameterGradients(
    const MlpActivations& saved, const torch::Tensor& actions,
    const torch::Tensor& grad_actions, const std::vector<torch::Tensor>& out,
    SideWork& aside) {
  torch::NoGradGuard no_grad;
  mlp_->ParameterGradients(saved, at::tanh_backward(grad_actions, actions), out,
                           aside);
}

torch::Tensor SamplingNetworkImpl::Sample(const torch::Tensor& observations,
                                          int64_t particles) {
  if (particles == 0) {
    return forward(observations,
                   torch::randn({observations.size(0), action_dim_},
                                observations.options()));
  }
  const torch::Tensor obs = observations.unsqueeze(1).expand(
      {observations.size(0), particles, observations.size(1)});
  return forward(obs,
                 torch::randn({observations.size(0), particles, action_dim_},
                              observations.options()));
}

void CopyParameters(const torch::nn::Module& from, torch::nn::Module& to,
                    double tau) {
  torch::NoGradGuard no_grad;
  const auto src = from.parameters();
  auto dst = to.parameters();
  for (size_t i = 0; i < src.size(); ++i) {
    if (tau >= 1.0) {
      dst[i].copy_(src[i]);
    } else {
      dst[i].mul_(1.0 - tau).add_(src[i], tau);
    }
  }
}

torch::Tensor DeterministicAction(SamplingNetwork& policy,
                                  const torch::Tensor& observations) {
  std::vector<int64_t> shape = observations.sizes().vec();
  shape.back() = policy->action_dim();
  return policy->forward(observations,
                         torch::zeros(shape, observations.options()));
}

}  // namespace softq
