#include "learner/fused_ops.h"

#include <cmath>

#include "learner/kernel_launch.h"
#include "learner/soft_td_block.h"
#include "learner/stein_block.h"

#if SOFTQ_CUDA_KERNELS
#include <ATen/record_function.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace softq::sql {
namespace {

// Rows of `t` [B, K, D] are contiguous: a state's particles are K rows D floats
// apart.
bool RowsContiguous(const torch::Tensor& t) {
  return t.dim() == 3 && t.stride(2) == 1 &&
         (t.size(1) <= 1 || t.stride(1) == t.size(2));
}

// The Stein kernel's layout rules, for tensors on `device_type`.
bool SteinLayoutOk(const torch::Tensor& fixed, const torch::Tensor& updated,
                   const torch::Tensor& grad_log_p,
                   c10::DeviceType device_type) {
  for (const torch::Tensor* t : {&fixed, &updated, &grad_log_p}) {
    if (t->device().type() != device_type ||
        t->scalar_type() != torch::kFloat32 || !RowsContiguous(*t) ||
        t->device() != fixed.device()) {
      return false;
    }
  }
  const int64_t b = fixed.size(0), kx = fixed.size(1), ky = updated.size(1),
                d = fixed.size(2);
  return b >= 1 && b <= (1 << 30) && kx >= 2 && ky >= 1 && d >= 1 &&
         updated.size(0) == b && updated.size(2) == d &&
         grad_log_p.sizes() == fixed.sizes();
}

// The outputs, allocated beside the inputs, and the kernel's arguments for
// them: the one packing that the device launch and the host twin share.
struct SteinCall {
  FusedStein out;
  stein::LaunchArgs args;
};
SteinCall PrepareStein(const torch::Tensor& fixed, const torch::Tensor& updated,
                       const torch::Tensor& grad_log_p, double scale,
                       bool squashed, bool pad_fixed) {
  const int64_t b = fixed.size(0), kx = fixed.size(1), ky = updated.size(1),
                d = fixed.size(2);
  const int64_t pad_rows = pad_fixed ? kx : 0;
  SteinCall call{{torch::empty({b, pad_rows + ky, d}, fixed.options()),
                  torch::empty({b}, fixed.options())},
                 {}};
  stein::LaunchArgs& args = call.args;
  args.batch = static_cast<int>(b);
  args.kx = static_cast<int>(kx);
  args.ky = static_cast<int>(ky);
  args.d = static_cast<int>(d);
  args.fixed = fixed.data_ptr<float>();
  args.fixed_batch_stride = fixed.stride(0);
  args.updated = updated.data_ptr<float>();
  args.updated_batch_stride = updated.stride(0);
  args.grad_log_p = grad_log_p.data_ptr<float>();
  args.grad_batch_stride = grad_log_p.stride(0);
  args.direction = call.out.direction.data_ptr<float>();
  args.bandwidth = call.out.bandwidth.data_ptr<float>();
  args.scale = static_cast<float>(scale);
  args.negative_inverse_log_kx =
      static_cast<float>(-1.0 / std::log(static_cast<double>(kx)));
  args.squashed = squashed;
  args.pad_rows = static_cast<int>(pad_rows);
  return call;
}

// The soft TD kernel's layout rules, for tensors on `device_type`.
bool SoftTdLayoutOk(const torch::Tensor& q, const torch::Tensor& next_q,
                    const torch::Tensor& rewards, const torch::Tensor& dones,
                    c10::DeviceType device_type) {
  for (const torch::Tensor* t : {&q, &next_q, &rewards, &dones}) {
    if (t->device().type() != device_type ||
        t->scalar_type() != torch::kFloat32 || t->device() != q.device()) {
      return false;
    }
  }
  const int64_t b = q.dim() == 1 ? q.size(0) : -1;
  return b >= 0 && b <= (1 << 30) && next_q.dim() == 2 && next_q.size(0) == b &&
         next_q.size(1) >= 1 &&
         (next_q.size(1) == 1 || next_q.stride(1) == 1) && rewards.dim() == 1 &&
         rewards.size(0) == b && dones.dim() == 1 && dones.size(0) == b;
}

struct SoftTdCall {
  FusedTd out;
  soft_td::Args args;
};
SoftTdCall PrepareSoftTd(const torch::Tensor& q, const torch::Tensor& next_q,
                         const torch::Tensor& rewards,
                         const torch::Tensor& dones, double value_offset,
                         double reward_scale, double discount) {
  const int64_t b = q.size(0);
  SoftTdCall call{
      {torch::empty({b}, q.options()), torch::empty({b}, q.options())}, {}};
  soft_td::Args& args = call.args;
  args.batch = static_cast<int>(b);
  args.particles = static_cast<int>(next_q.size(1));
  args.next_q = next_q.data_ptr<float>();
  args.next_q_stride = next_q.stride(0);
  args.q = q.data_ptr<float>();
  args.q_stride = q.stride(0);
  args.rewards = rewards.data_ptr<float>();
  args.rewards_stride = rewards.stride(0);
  args.dones = dones.data_ptr<float>();
  args.dones_stride = dones.stride(0);
  args.reward_scale = static_cast<float>(reward_scale);
  args.discount = static_cast<float>(discount);
  args.value_offset = static_cast<float>(value_offset);
  args.loss_scale = static_cast<float>(1.0 / static_cast<double>(b));
  args.target = call.out.target.data_ptr<float>();
  args.q_gradient = call.out.q_gradient.data_ptr<float>();
  return call;
}

}  // namespace

FusedStein FusedSteinDirectionOnHost(const torch::Tensor& fixed,
                                     const torch::Tensor& updated,
                                     const torch::Tensor& grad_log_p,
                                     double scale, bool squashed,
                                     bool pad_fixed) {
  TORCH_CHECK(SteinLayoutOk(fixed, updated, grad_log_p, c10::DeviceType::CPU),
              "FusedSteinDirectionOnHost: tensors the kernel does not take");
  SteinCall call =
      PrepareStein(fixed, updated, grad_log_p, scale, squashed, pad_fixed);
  stein::RunSteinBlocksOnHost(call.args);
  return std::move(call.out);
}

FusedTd FusedSoftTdOnHost(const torch::Tensor& q, const torch::Tensor& next_q,
                          const torch::Tensor& rewards,
                          const torch::Tensor& dones, double value_offset,
                          double reward_scale, double discount) {
  TORCH_CHECK(SoftTdLayoutOk(q, next_q, rewards, dones, c10::DeviceType::CPU),
              "FusedSoftTdOnHost: tensors the kernel does not take");
  SoftTdCall call = PrepareSoftTd(q, next_q, rewards, dones, value_offset,
                                  reward_scale, discount);
  soft_td::RunSoftTdOnHost(call.args);
  return std::move(call.out);
}

#if SOFTQ_CUDA_KERNELS

bool FusedSteinSupports(const torch::Tensor& fixed,
                        const torch::Tensor& updated,
                        const torch::Tensor& grad_log_p) {
  if (!SteinLayoutOk(fixed, updated, grad_log_p, c10::DeviceType::CUDA))
    return false;
  const int64_t kx = fixed.size(1), ky = updated.size(1), d = fixed.size(2);
  return static_cast<int64_t>(sizeof(float)) * (kx * ky + kx * d + 1) <=
         stein::kMaxScratchBytes;
}

FusedStein FusedSteinDirection(const torch::Tensor& fixed,
                               const torch::Tensor& updated,
                               const torch::Tensor& grad_log_p, double scale,
                               bool squashed, bool pad_fixed) {
  TORCH_CHECK(
      FusedSteinSupports(fixed, updated, grad_log_p),
      "FusedSteinDirection: tensors it does not take (FusedSteinSupports)");
  // Seen by profilers and OpCensus as one operation, as ATen's own are.
  RECORD_FUNCTION("softq::fused_stein_direction", std::vector<c10::IValue>());
  SteinCall call =
      PrepareStein(fixed, updated, grad_log_p, scale, squashed, pad_fixed);
  const char* error = stein::LaunchSteinDirection(
      call.args,
      c10::cuda::getCurrentCUDAStream(fixed.device().index()).stream());
  TORCH_CHECK(error == nullptr,
              "FusedSteinDirection: kernel launch failed: ", error);
  return std::move(call.out);
}

bool FusedSoftTdSupports(const torch::Tensor& q, const torch::Tensor& next_q,
                         const torch::Tensor& rewards,
                         const torch::Tensor& dones) {
  return SoftTdLayoutOk(q, next_q, rewards, dones, c10::DeviceType::CUDA);
}

FusedTd FusedSoftTd(const torch::Tensor& q, const torch::Tensor& next_q,
                    const torch::Tensor& rewards, const torch::Tensor& dones,
                    double value_offset, double reward_scale, double discount) {
  TORCH_CHECK(FusedSoftTdSupports(q, next_q, rewards, dones),
              "FusedSoftTd: tensors it does not take (FusedSoftTdSupports)");
  RECORD_FUNCTION("softq::fused_soft_td", std::vector<c10::IValue>());
  SoftTdCall call = PrepareSoftTd(q, next_q, rewards, dones, value_offset,
                                  reward_scale, discount);
  if (call.args.batch > 0) {
    const char* error = soft_td::LaunchSoftTd(
        call.args,
        c10::cuda::getCurrentCUDAStream(q.device().index()).stream());
    TORCH_CHECK(error == nullptr, "FusedSoftTd: kernel launch failed: ", error);
  }
  return std::move(call.out);
}

#else  // !SOFTQ_CUDA_KERNELS

bool FusedSteinSupports(const torch::Tensor&, const torch::Tensor&,
                        const torch::Tensor&) {
  return false;
}

FusedStein FusedSteinDirection(const torch::Tensor&, const torch::Tensor&,
                               const torch::Tensor&, double, bool, bool) {
  TORCH_CHECK(false,
              "FusedSteinDirection: this build has no CUDA kernels "
              "(SOFTQ_CUDA_KERNELS)");
  return {};
}

bool FusedSoftTdSupports(const torch::Tensor&, const torch::Tensor&,
                         const torch::Tensor&, const torch::Tensor&) {
  return false;
}

FusedTd FusedSoftTd(const torch::Tensor&, const torch::Tensor&,
                    const torch::Tensor&, const torch::Tensor&, double, double,
                    double) {
  TORCH_CHECK(
      false,
      "FusedSoftTd: this build has no CUDA kernels (SOFTQ_CUDA_KERNELS)");
  return {};
}

#endif  // SOFTQ_CUDA_KERNELS

}  // namespace softq::sql
