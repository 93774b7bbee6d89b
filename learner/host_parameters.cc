#include "learner/host_parameters.h"

#include <vector>

#include "absl/strings/str_cat.h"

namespace softq {

NamedTensors ParametersOnHost(const torch::nn::Module& module) {
  // One copy to the host for all of them, then each a view of its stretch of
  // that copy.
  const auto named = module.named_parameters();
  std::vector<torch::Tensor> pieces;
  for (const auto& item : named)
    pieces.push_back(item.value().detach().reshape({-1}));
  const torch::Tensor host = torch::cat(pieces).to(torch::kCPU);
  NamedTensors params;
  int64_t offset = 0;
  for (const auto& item : named) {
    const int64_t n = item.value().numel();
    params.emplace_back(item.key(),
                        host.narrow(0, offset, n).view(item.value().sizes()));
    offset += n;
  }
  return params;
}

absl::Status CheckFinite(const NamedTensors& params) {
  for (const auto& [name, tensor] : params) {
    const torch::Tensor finite = torch::isfinite(tensor.detach()).reshape({-1});
    if (finite.all().item<bool>()) continue;
    const int64_t index = finite.logical_not().nonzero()[0][0].item<int64_t>();
    return absl::FailedPreconditionError(
        absl::StrCat("non-finite parameter ", name, "[", index,
                     "] = ", tensor.reshape({-1})[index].item<double>()));
  }
  return absl::OkStatus();
}

}  // namespace softq
