#include "learner/flat_adam.h"

#include <torch/serialize.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace softq {
namespace {

int64_t TotalSize(const std::vector<torch::Tensor>& tensors) {
  int64_t total = 0;
  for (const torch::Tensor& t : tensors) total += t.numel();
  return total;
}

}  // namespace

FlatAdam::FlatAdam(std::vector<torch::Tensor> parameters, double learning_rate,
                   double beta1, double beta2, double eps)
    : learning_rate_(learning_rate),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      parameters_(std::move(parameters)) {
  TORCH_CHECK(!parameters_.empty(), "FlatAdam needs parameters");
  const auto options = parameters_.front().options().requires_grad(false);
  const int64_t total = TotalSize(parameters_);
  params_ = torch::empty({total}, options);
  grads_ = torch::zeros({total}, options);
  exp_avg_ = torch::zeros({total}, options);
  exp_avg_sq_ = torch::zeros({total}, options);
  step_ = torch::zeros(
      {},
      torch::TensorOptions().dtype(torch::kFloat64).device(options.device()));
  if (options.device().is_cuda())
    fused_step_ = torch::zeros({}, options.dtype(torch::kFloat32));
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (torch::Tensor& p : parameters_) {
    TORCH_CHECK(p.options().dtype() == options.dtype() &&
                    p.device() == options.device(),
                "FlatAdam: parameters differ in dtype or device");
    const int64_t n = p.numel();
    param_slots_.push_back(params_.narrow(0, offset, n).view(p.sizes()));
    grad_slots_.push_back(grads_.narrow(0, offset, n).view(p.sizes()));
    param_slots_.back().copy_(p.detach());
    offset += n;
  }
  Reattach();
}

void FlatAdam::Reattach() {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    torch::Tensor& p = parameters_[i];
    if (p.data_ptr() != param_slots_[i].data_ptr()) {
      param_slots_[i].copy_(p.detach());
      p.set_data(param_slots_[i]);
    }
  }
}

void FlatAdam::ZeroGrad() {
  Reattach();
  for (torch::Tensor& p : parameters_) p.mutable_grad().reset();
}

std::vector<torch::Tensor> FlatAdam::GradientSlots() {
  for (size_t i = 0; i < parameters_.size(); ++i)
    parameters_[i].mutable_grad() = grad_slots_[i];
  return grad_slots_;
}

void FlatAdam::GatherGradients() {
  const auto in_slot = [this](size_t i) {
    return parameters_[i].grad().defined() &&
           parameters_[i].grad().is_same(grad_slots_[i]);
  };
  bool all_in_place = true;
  for (size_t i = 0; i < parameters_.size(); ++i)
    all_in_place = all_in_place && in_slot(i);
  if (all_in_place) return;
  std::vector<torch::Tensor> pieces;
  pieces.reserve(parameters_.size());
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const torch::Tensor& grad = parameters_[i].grad();
    // (A slot among copies is copied out first: the concatenation must not read
    // what it writes.)
    pieces.push_back(!grad.defined() ? torch::zeros({param_slots_[i].numel()},
                                                    grads_.options())
                     : in_slot(i)    ? grad.reshape({-1}).clone()
                                     : grad.reshape({-1}));
  }
  torch::cat_out(grads_, pieces, 0);
}

void FlatAdam::Count() {
  torch::NoGradGuard no_grad;
  step_.add_(1);
  if (fused_step_.defined()) fused_step_.copy_(step_);
}

void FlatAdam::CountNextStep() {
  if (counted_ahead_) return;
  Count();
  counted_ahead_ = true;
}

void FlatAdam::Step() { Step(torch::Tensor()); }

torch::Tensor FlatAdam::GradientsFinite() {
  Reattach();
  torch::NoGradGuard no_grad;
  GatherGradients();
  return torch::isfinite(grads_).all();
}

void FlatAdam::Step(const torch::Tensor& found_inf) {
  Reattach();
  torch::NoGradGuard no_grad;
  GatherGradients();
  if (!counted_ahead_) Count();
  counted_ahead_ = false;
  if (fused_step_.defined()) {
    // On a GPU, LibTorch's fused Adam: one kernel for the moments and the step,
    // which takes its bias corrections from the device step count (as float32,
    // which that kernel wants). With found_inf at 1 the kernel returns at once;
    // the count taken for it is taken back on the device.
    if (found_inf.defined()) {
      at::_fused_adam_({params_}, {grads_}, {exp_avg_}, {exp_avg_sq_},
                       /*max_exp_avg_sqs=*/{}, {fused_step_}, learning_rate_,
                       beta1_, beta2_, /*weight_decay=*/0.0, eps_,
                       /*amsgrad=*/false, /*maximize=*/false,
                       /*grad_scale=*/{}, found_inf);
    } else {
      at::_fused_adam_({params_}, {grads_}, {exp_avg_}, {exp_avg_sq_},
                       /*max_exp_avg_sqs=*/{}, {fused_step_}, learning_rate_,
                       beta1_, beta2_, /*weight_decay=*/0.0, eps_,
                       /*amsgrad=*/false, /*maximize=*/false);
    }
    if (found_inf.defined()) {
      step_.sub_(found_inf);
      fused_step_.copy_(step_);
    }
    return;
  }
  if (found_inf.defined() && found_inf.item<float>() != 0) {
    step_.sub_(1);  // skipped: nothing else was touched
    return;
  }
  exp_avg_.mul_(beta1_).add_(grads_, 1.0 - beta1_);
  exp_avg_sq_.mul_(beta2_).addcmul_(grads_, grads_, 1.0 - beta2_);
  // As torch::optim::Adam: p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 -
  // beta2^t) + eps), with the bias corrections as device scalars.
  const torch::Tensor denom =
      exp_avg_sq_.sqrt()
          .div_(torch::rsub(torch::pow(beta2_, step_), 1.0).sqrt_())
          .add_(eps_);
  const torch::Tensor step_size = torch::rsub(torch::pow(beta1_, step_), 1.0)
                                      .reciprocal_()
                                      .mul_(-learning_rate_);
  params_.addcdiv_(exp_avg_ * step_size, denom);
}

void FlatAdam::Save(torch::serialize::OutputArchive& archive) const {
  archive.write("flat_adam.exp_avg", exp_avg_, /*is_buffer=*/true);
  archive.write("flat_adam.exp_avg_sq", exp_avg_sq_, true);
  archive.write("flat_adam.step", step_, true);
}

absl::Status FlatAdam::Load(torch::serialize::InputArchive& archive) {
  // (States saved before the bias corrections were computed from the step count
  // also hold beta1^t and beta2^t; they are redundant and not read.)
  torch::Tensor m, v, step;
  const bool found = archive.try_read("flat_adam.exp_avg", m, true) &&
                     archive.try_read("flat_adam.exp_avg_sq", v, true) &&
                     archive.try_read("flat_adam.step", step, true);
  if (!found) {
    return absl::InvalidArgumentError(
        "no FlatAdam state (an optimizer state of another format, e.g. "
        "torch::optim::Adam's "
        "from before 2026-11-27)");
  }
  if (m.sizes() != exp_avg_.sizes() || v.sizes() != exp_avg_sq_.sizes() ||
      step.dim() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("optimizer state holds ", m.numel(),
                     " moments, these parameters have ", exp_avg_.numel()));
  }
  torch::NoGradGuard no_grad;
  exp_avg_.copy_(m);
  exp_avg_sq_.copy_(v);
  step_.copy_(step);
  return absl::OkStatus();
}

int64_t FlatAdam::steps() const {
  return static_cast<int64_t>(step_.item<double>());
}

}  // namespace softq
