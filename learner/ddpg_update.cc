// SqlAgent's update under Algorithm::kDdpg, the paper's baseline (the SQL
// update is in sql_agent.cc): the deterministic policy mu(s) = f_phi(0; s),
// the critic's target through the target networks, and the deterministic
// policy gradient of -Q(s, mu(s)).
#include "learner/sql_agent.h"
#include "learner/sql_math.h"

namespace softq {

torch::Tensor SqlAgent::DdpgNextValue(const TransitionTensors& batch) {
  torch::NoGradGuard no_grad;
  return q_target_->forward(
      batch.next_observations,
      DeterministicAction(policy_target_, batch.next_observations));
}

torch::Tensor SqlAgent::DdpgPolicyLoss(const torch::Tensor& observations) {
  return -q_->forward(observations, DeterministicAction(policy_, observations))
              .mean();
}

void SqlAgent::DdpgPolicyGradients(const TransitionTensors& batch) {
  const torch::Tensor loss = DdpgPolicyLoss(batch.observations);
  last_.policy_loss = loss.detach();
  loss.backward(one_);
}

void SqlAgent::DdpgCriticGradients(const TransitionTensors& batch,
                                   const UpdateNoise& noise) {
  const torch::Tensor q = q_->forward(batch.observations, batch.actions);
  const torch::Tensor target = CriticTarget(batch, noise.value_actions);
  last_.q = q.detach();
  last_.target = target;
  q.backward(critic_weights_.defined()
                 ? sql::WeightedCriticLossGradient(q, target, critic_weights_)
                 : sql::CriticLossGradient(q, target));
}

}  // namespace softq
