// FlatAdam: Adam (Kingma & Ba) over one contiguous buffer. The update is
// torch::optim::Adam's without weight decay or AMSGrad, but the parameters it
// is given are re-pointed at slices of one flat tensor, and a step first
// gathers their gradients into another (one copy; none when they were written
// into its slots, GradientSlots), so a step is about fifteen tensor operations
// whatever the number of parameters (torch::optim::Adam: about ten per
// parameter). ZeroGrad drops the gradients (as zero_grad(set_to_none) does), so
// backward hands its gradients over instead of adding them into zeroed ones.
// The buffers are allocated once, and the step count is a 0-d tensor on the
// parameters' device from which each step computes its bias corrections (no
// host scalar changes from step to step, as CUDA graph capture of an update
// requires). On a CUDA device the step itself is LibTorch's fused Adam kernel.
//
// The parameters stay ordinary leaf tensors of their modules (forward,
// backward, copy_, named_parameters work as before). If something re-points one
// of them (Module::load's set_), the next ZeroGrad/Step notices by address,
// copies it into its slice and re-points it. A parameter without a gradient at
// Step counts as a zero gradient. A step may be skipped by a device-side flag
// (Step(found_inf)): parameters, moments and step count then stay as they were,
// decided on the device (no host branch, as a CUDA graph needs). Not
// thread-safe.
#ifndef SOFTQ_LEARNER_FLAT_ADAM_H_
#define SOFTQ_LEARNER_FLAT_ADAM_H_

#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace softq {

class FlatAdam {
 public:
  // `parameters` share one dtype and device. Their current values are kept.
  FlatAdam(std::vector<torch::Tensor> parameters, double learning_rate,
           double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  FlatAdam(const FlatAdam&) = delete;
  FlatAdam& operator=(const FlatAdam&) = delete;

  // Drops every gradient (no tensor operation).
  void ZeroGrad();
  // Sets each parameter's gradient to its slice of the flat gradient buffer and
  // returns them, for code that writes gradients in place (overwriting;
  // autograd would add into them): Step then copies none of them. ZeroGrad
  // drops them again.
  std::vector<torch::Tensor> GradientSlots();
  // One Adam step from the current gradients (gathered into flat_gradients()
  // first).
  void Step();
  // The same step, or none where `found_inf` (0-d float32 on the parameters'
  // device, 0 or 1) is 1: then parameters, moments and step count are left as
  // they were (a count taken ahead by CountNextStep is taken back). On a CUDA
  // device the fused kernel reads the flag itself (its found_inf, as AMP's
  // GradScaler uses it) and the step count is corrected on the device; on the
  // CPU the flag is read on the host, where that costs no synchronization.
  void Step(const torch::Tensor& found_inf);
  // Gathers the gradients into flat_gradients() (as Step does; none copied when
  // they are in their slots) and returns whether all of them are finite: a 0-d
  // bool tensor on the device (no synchronization).
  torch::Tensor GradientsFinite();
  // Counts the next Step now (the device's step count, and on a GPU its float32
  // copy), so that work queued elsewhere (another CUDA stream) does it while
  // the gradients are still being computed; that Step then does not count
  // again.
  void CountNextStep();

  // Optimizer state (moments and step count) into / from `archive`. Load takes
  // a state saved by a FlatAdam over parameters of the same total size;
  // InvalidArgument otherwise (e.g. a checkpoint holding torch::optim::Adam's
  // state), leaving this one as it was.
  void Save(torch::serialize::OutputArchive& archive) const;
  absl::Status Load(torch::serialize::InputArchive& archive);

  // Steps taken (reads the device counter: synchronizes).
  int64_t steps() const;
  // The flat buffers, in parameter order (for tests).
  const torch::Tensor& flat_parameters() const { return params_; }
  const torch::Tensor& flat_gradients() const { return grads_; }

 private:
  // Re-points any parameter that no longer aliases its slice.
  void Reattach();
  // Copies the parameters' gradients into grads_ (zeros for a missing one).
  void GatherGradients();
  // t += 1 on the device (and its float32 copy for the fused kernel).
  void Count();

  const double learning_rate_, beta1_, beta2_, eps_;
  std::vector<torch::Tensor> parameters_;
  std::vector<torch::Tensor> param_slots_;  // views of params_
  std::vector<torch::Tensor> grad_slots_;   // views of grads_
  torch::Tensor params_, grads_, exp_avg_, exp_avg_sq_;
  // t, 0-d float64 on the device (exact to 2^53 steps; pow(beta, t) takes it as
  // it is).
  torch::Tensor step_;
  // On a CUDA device only: t copied to float32 for at::_fused_adam_ (Step uses
  // it there).
  torch::Tensor fused_step_;
  bool counted_ahead_ = false;  // CountNextStep ran since the last Step
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_FLAT_ADAM_H_
