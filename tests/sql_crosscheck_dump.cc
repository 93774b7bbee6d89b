// Writes an SqlAgent's weights, a batch, the noise of one update and the C++
// critic loss, policy surrogate and their gradients to a text file (argv[1])
// for tests/sql_reference.py to recompute independently. The agent first takes
// a few updates so that Q, its target and the optimizers are not at their
// initial values.
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fstream>
#include <iostream>

#include "learner/sql_agent.h"

namespace {

void Write(std::ofstream& out, const std::string& name,
           const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
  out << name << " ";
  for (int64_t i = 0; i < c.dim(); ++i) out << (i ? "," : "") << c.size(i);
  out << "\n";
  const float* v = c.data_ptr<float>();
  char buf[32];
  for (int64_t i = 0; i < c.numel(); ++i) {
    std::snprintf(buf, sizeof(buf), "%.9g ", v[i]);
    out << buf;
  }
  out << "\n";
}

void WriteModule(std::ofstream& out, const std::string& prefix,
                 torch::nn::Module& m, bool grads) {
  for (const auto& p : m.named_parameters()) {
    Write(out, (grads ? "grad." : "") + prefix + "." + p.key(),
          grads ? p.value().grad() : p.value());
  }
}

softq::TransitionTensors RandomBatch(int64_t b) {
  softq::TransitionTensors t;
  t.observations = torch::randn({b, 2}) * 3;
  t.actions = torch::rand({b, 2}) * 2 - 1;
  t.rewards = torch::randn({b}) * 50;
  t.next_observations = torch::randn({b, 2}) * 3;
  t.dones = (torch::rand({b}) < 0.2).to(torch::kFloat32);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: sql_crosscheck_dump OUT.txt\n";
    return 2;
  }
  torch::manual_seed(7);
  softq::SqlConfig config;
  config.target_update_interval = 3;
  softq::SqlAgent agent(config);
  for (int i = 0; i < 4; ++i)
    agent.Update(RandomBatch(64));  // target copied at step 3

  const softq::TransitionTensors batch = RandomBatch(64);
  const softq::UpdateNoise noise = agent.DrawNoise(64);
  // The update's own path to its gradients (what Update runs before the
  // optimizer steps), and the losses as its metrics report them.
  agent.PolicyGradients(batch, noise);
  agent.CriticGradients(batch, noise);
  const softq::UpdateMetrics metrics = agent.LastMetrics();

  std::ofstream out(argv[1]);
  Write(out, "cfg.reward_scale", torch::tensor({config.reward_scale}));
  Write(out, "cfg.discount", torch::tensor({config.discount}));
  Write(out, "cfg.kernel_update_ratio",
        torch::tensor({config.kernel_update_ratio}));
  Write(out, "cfg.hidden",
        torch::tensor(
            std::vector<float>(config.hidden.begin(), config.hidden.end())));
  WriteModule(out, "q", *agent.q(), false);
  WriteModule(out, "q_target", *agent.q_target(), false);
  WriteModule(out, "policy", *agent.policy(), false);
  Write(out, "batch.observations", batch.observations);
  Write(out, "batch.actions", batch.actions);
  Write(out, "batch.rewards", batch.rewards);
  Write(out, "batch.next_observations", batch.next_observations);
  Write(out, "batch.dones", batch.dones);
  Write(out, "noise.value_actions", noise.value_actions);
  Write(out, "noise.policy_noise", noise.policy_noise);
  Write(out, "out.critic_loss", torch::tensor(metrics.critic_loss));
  Write(out, "out.policy_surrogate", torch::tensor(metrics.policy_surrogate));
  WriteModule(out, "q", *agent.q(), true);
  WriteModule(out, "policy", *agent.policy(), true);
  out.close();
  return out ? 0 : 1;
}
