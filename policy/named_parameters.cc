#include "policy/named_parameters.h"

#include "absl/strings/str_cat.h"

namespace softq {

absl::Status LoadNamedParameters(const NamedTensors& params,
                                 torch::nn::Module& network) {
  auto named = network.named_parameters();
  if (params.size() != named.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameters: got ", params.size(),
                     " tensors, network has ", named.size()));
  }
  for (const auto& [name, value] : params) {
    torch::Tensor* target = named.find(name);
    if (target == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("parameters: unknown tensor \"", name, "\""));
    }
    if (target->sizes() != value.sizes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameters: \"", name, "\" has shape ", c10::str(value.sizes()),
          ", network expects ", c10::str(target->sizes())));
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, value] : params) {
    named.find(name)->copy_(value);
  }
  return absl::OkStatus();
}

}  // namespace softq
