#include "learner/learner_checkpoint.h"

#include <torch/script.h>
#include <torch/serialize.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "learner/host_parameters.h"

namespace softq {
namespace {

void WriteSub(torch::serialize::OutputArchive& archive, const std::string& key,
              const torch::nn::Module& module) {
  torch::serialize::OutputArchive sub;
  module.save(sub);
  archive.write(key, sub);
}

void WriteSub(torch::serialize::OutputArchive& archive, const std::string& key,
              const FlatAdam& optimizer) {
  torch::serialize::OutputArchive sub;
  optimizer.Save(sub);
  archive.write(key, sub);
}

void ReadSub(torch::serialize::InputArchive& archive, const std::string& key,
             torch::nn::Module& module) {
  torch::serialize::InputArchive sub;
  archive.read(key, sub);
  module.load(sub);
}

absl::Status ReadSub(torch::serialize::InputArchive& archive,
                     const std::string& key, FlatAdam& optimizer) {
  torch::serialize::InputArchive sub;
  archive.read(key, sub);
  absl::Status s = optimizer.Load(sub);
  if (!s.ok())
    return absl::Status(s.code(), absl::StrCat(key, ": ", s.message()));
  return absl::OkStatus();
}

// LibTorch's module loading takes the saved tensors whatever their shapes: a
// checkpoint of another architecture is caught here. InvalidArgument naming the
// first differing tensor.
absl::Status CheckSameShapes(const std::string& what,
                             const torch::nn::Module& expected,
                             const torch::nn::Module& loaded) {
  const auto want = expected.named_parameters(),
             got = loaded.named_parameters();
  if (want.size() != got.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has ", got.size(), " tensors, this learner's has ",
                     want.size()));
  }
  for (const auto& item : want) {
    const torch::Tensor* other = got.find(item.key());
    if (other == nullptr || other->sizes() != item.value().sizes()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ".", item.key(), " has shape ",
                       other == nullptr ? std::string("(missing)")
                                        : c10::str(other->sizes()),
                       ", this learner's is ", c10::str(item.value().sizes())));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string LearnerCheckpointPath(const std::string& dir) {
  return (std::filesystem::path(dir) / "learner.ckpt").string();
}

absl::Status SaveLearnerCheckpoint(SqlAgent& agent, uint64_t version,
                                   const std::string& dir) {
  const std::string path = LearnerCheckpointPath(dir);
  const std::string tmp = path + ".tmp";
  // A diverged network is never written over the last good checkpoint.
  for (const auto& [name, module] :
       {std::pair<const char*, const torch::nn::Module*>{"q", &*agent.q()},
        {"q_target", &*agent.q_target()},
        {"policy", &*agent.policy()},
        {"policy_target", &*agent.policy_target()}}) {
    if (absl::Status s = CheckFinite(ParametersOnHost(*module)); !s.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("checkpoint not written (", path,
                       " keeps the last one): ", name, ": ", s.message()));
    }
  }
  try {  // LibTorch reports I/O errors by exception; none leaves this function.
    std::filesystem::create_directories(dir);
    torch::serialize::OutputArchive archive;
    WriteSub(archive, "q", *agent.q());
    WriteSub(archive, "q_target", *agent.q_target());
    WriteSub(archive, "policy", *agent.policy());
    WriteSub(archive, "policy_target", *agent.policy_target());
    WriteSub(archive, "q_optimizer", agent.q_optimizer());
    WriteSub(archive, "policy_optimizer", agent.policy_optimizer());
    archive.write("step", torch::tensor(agent.step(), torch::kInt64));
    archive.write("version",
                  torch::tensor(static_cast<int64_t>(version), torch::kInt64));
    archive.save_to(tmp);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot write checkpoint ", tmp, ": ", e.what()));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> RestoreLearnerCheckpoint(SqlAgent& agent,
                                                  const std::string& dir) {
  const std::string path = LearnerCheckpointPath(dir);
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("no checkpoint at ", path));
  }
  // Load into a scratch agent first, so a bad file leaves `agent` untouched.
  SqlAgent loaded(agent.config(), agent.device());
  int64_t step = 0, version = 0;
  torch::serialize::InputArchive archive;
  const auto optimizers = [](SqlAgent& a) {
    return std::array{std::pair{"q_optimizer", &a.q_optimizer()},
                      std::pair{"policy_optimizer", &a.policy_optimizer()}};
  };
  try {
    archive.load_from(path, agent.device());
    ReadSub(archive, "q", *loaded.q());
    ReadSub(archive, "q_target", *loaded.q_target());
    ReadSub(archive, "policy", *loaded.policy());
    // Checkpoints older than the DDPG baseline have no target sampling network.
    if (torch::serialize::InputArchive sub;
        archive.try_read("policy_target", sub)) {
      loaded.policy_target()->load(sub);
    } else {
      CopyParameters(*loaded.policy(), *loaded.policy_target());
    }
    for (auto [key, optimizer] : optimizers(loaded)) {
      if (absl::Status s = ReadSub(archive, key, *optimizer); !s.ok()) {
        return absl::DataLossError(absl::StrCat(
            "checkpoint ", path, " does not fit this learner: ", s.message()));
      }
    }
    torch::Tensor t;
    archive.read("step", t);
    step = t.item<int64_t>();
    archive.read("version", t);
    version = t.item<int64_t>();
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat("checkpoint ", path, " is unreadable: ", e.what()));
  }
  for (absl::Status s :
       {CheckSameShapes("q", *agent.q(), *loaded.q()),
        CheckSameShapes("q_target", *agent.q_target(), *loaded.q_target()),
        CheckSameShapes("policy", *agent.policy(), *loaded.policy()),
        CheckSameShapes("policy_target", *agent.policy_target(),
                        *loaded.policy_target())}) {
    if (!s.ok()) {
      return absl::DataLossError(absl::StrCat(
          "checkpoint ", path, " does not fit this learner: ", s.message()));
    }
  }
  CopyParameters(*loaded.q(), *agent.q());
  CopyParameters(*loaded.q_target(), *agent.q_target());
  CopyParameters(*loaded.policy(), *agent.policy());
  CopyParameters(*loaded.policy_target(), *agent.policy_target());
  // The optimizer states fitted the scratch agent's optimizers, of this agent's
  // sizes: read them again, into this agent's.
  try {
    for (auto [key, optimizer] : optimizers(agent)) {
      if (absl::Status s = ReadSub(archive, key, *optimizer); !s.ok()) return s;
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat("checkpoint ", path, " is unreadable: ", e.what()));
  }
  agent.set_step(step);
  return static_cast<uint64_t>(version);
}

absl::Status InitializeFromLearnerCheckpoint(SqlAgent& agent,
                                             const std::string& dir,
                                             bool with_q) {
  SqlAgent pretrained(agent.config(), agent.device());
  absl::StatusOr<uint64_t> restored = RestoreLearnerCheckpoint(pretrained, dir);
  if (!restored.ok()) return restored.status();
  if (with_q) {
    CopyParameters(*pretrained.q(), *agent.q());
    CopyParameters(*pretrained.q_target(), *agent.q_target());
  }
  CopyParameters(*pretrained.policy(), *agent.policy());
  CopyParameters(*pretrained.policy_target(), *agent.policy_target());
  return absl::OkStatus();
}

absl::Status ExportSamplingNetworkTorchScript(SamplingNetwork& policy,
                                              const std::string& path) {
  try {
    torch::jit::Module module("SamplingNetwork");
    std::string body = "  x = torch.cat([observations, noise], -1)\n";
    std::vector<torch::Tensor> weights, biases;
    for (const auto& p : policy->named_parameters()) {
      (p.key().find("weight") != std::string::npos ? weights : biases)
          .push_back(p.value().detach().to(torch::kCPU).clone());
    }
    for (size_t i = 0; i < weights.size(); ++i) {
      module.register_parameter(absl::StrCat("w", i), weights[i], false);
      module.register_parameter(absl::StrCat("b", i), biases[i], false);
      absl::StrAppend(&body, "  x = torch.matmul(x, self.w", i,
                      ".t()) + self.b", i, "\n");
      if (i + 1 < weights.size())
        absl::StrAppend(&body, "  x = torch.relu(x)\n");
    }
    module.define(absl::StrCat(
        "def forward(self, observations: Tensor, noise: Tensor) -> Tensor:\n",
        body, "  return torch.tanh(x)\n"));
    module.save(path);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot export TorchScript to ", path, ": ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace softq
