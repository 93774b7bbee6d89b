#include "learner/learner_evaluations.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "replay/replay_stats.h"

namespace softq {
namespace {

// Transitions inserted into the shards so far: the actors' env steps.
int64_t EnvStepsSoFar(
    const absl::StatusOr<std::vector<proto::ShardStats>>& stats) {
  if (!stats.ok()) return -1;
  int64_t total = 0;
  for (const proto::ShardStats& s : *stats) total += s.inserts_total();
  return total;
}

}  // namespace

std::vector<double> ActorEpisodeReturns(
    const std::vector<proto::ShardStats>& stats,
    absl::flat_hash_map<std::string, uint64_t>* seen) {
  std::vector<double> returns;
  for (const proto::ShardStats& s : stats) {
    uint64_t& before = (*seen)[s.shard_id()];
    // A restarted shard counts from 0 again: all it holds is new.
    const uint64_t fresh = s.episodes_total() >= before
                               ? s.episodes_total() - before
                               : s.episodes_total();
    before = s.episodes_total();
    const int held = s.recent_returns_size();
    const int take = static_cast<int>(std::min<uint64_t>(fresh, held));
    returns.insert(returns.end(), s.recent_returns().end() - take,
                   s.recent_returns().end());
  }
  return returns;
}

LearnerEvaluations::LearnerEvaluations(const SqlConfig& sql,
                                       LearnerEvaluationOptions options)
    : options_(std::move(options)),
      multigoal_(options_.env == "multigoal"),
      external_(options_.env == "external"),
      policy_(sql.observation_dim, sql.action_dim, sql.hidden,
              options_.seed + 17,
              {/*deterministic=*/sql.algorithm == Algorithm::kDdpg}),
      streak_(options_.solved_evaluations) {
  if (!options_.eval_csv.empty()) {
    csv_.open(options_.eval_csv, std::ios::app);
    csv_ << "updates,env_steps,wall_s,mean_return,return_stddev,goals_"
            "covered\n";
  }
  if (!options_.episodes_csv.empty()) {
    episodes_csv_.open(options_.episodes_csv, std::ios::app);
    episodes_csv_
        << "updates,env_steps,rollout,return,steps,terminal,last_reward";
    for (int i = 0; i < sql.observation_dim; ++i) {
      episodes_csv_ << ",obs_" << i;
    }
    episodes_csv_ << "\n";
  }
}

const Evaluation& LearnerEvaluations::Evaluate(const SqlAgent& agent,
                                               uint64_t version) {
  const absl::StatusOr<std::vector<proto::ShardStats>> stats =
      QueryStats(options_.shards, absl::Seconds(2), options_.security);
  last_env_steps_ = EnvStepsSoFar(stats);
  absl::StatusOr<Evaluation> e;
  if (external_) {
    // No environment here: the actors' episodes finished since the last
    // evaluation, with the parameters they had then.
    if (stats.ok()) {
      e = EvaluationOfReturns(ActorEpisodeReturns(*stats, &episodes_seen_),
                              EvaluationSource::kActorEpisodes);
    } else {
      e = stats.status();
    }
  } else {
    policy_.SetParameters(agent.PolicyParameters(), version).IgnoreError();
    e = softq::Evaluate(policy_,
                        {options_.env, options_.env_config, options_.rollouts,
                         EvaluationSeed(options_.seed, agent.step())});
  }
  if (!e.ok()) {
    std::cerr << "learner: evaluation failed: " << e.status() << std::endl;
    e = Evaluation();
  }
  streak_.Record(*e);
  last_ = *std::move(e);
  last_update_ = agent.step();
  return *last_;
}

void LearnerEvaluations::Report(int64_t update, double wall_s) {
  std::cout << absl::StrFormat("learner: eval at update %d: %s%s", update,
                               last_->Summary(), StreakSuffix())
            << std::endl;
  if (csv_.is_open()) {
    csv_ << absl::StrFormat("%d,%d,%.2f,%.4f,%.4f,%d\n", update,
                            last_env_steps_, wall_s, last_->mean_return,
                            last_->return_stddev, last_->GoalsCovered())
         << std::flush;
  }
  if (episodes_csv_.is_open()) {
    for (size_t i = 0; i < last_->ends.size(); ++i) {
      const RolloutEnd& end = last_->ends[i];
      episodes_csv_ << absl::StrFormat(
          "%d,%d,%d,%.4f,%d,%d,%.4f", update, last_env_steps_, i,
          last_->returns[i], end.steps, end.terminal ? 1 : 0, end.last_reward);
      for (float x : end.final_observation) {
        episodes_csv_ << absl::StrFormat(",%.4f", x);
      }
      episodes_csv_ << "\n";
    }
    episodes_csv_ << std::flush;
  }
}

std::string LearnerEvaluations::StreakSuffix() const {
  return multigoal_ ? ", " + streak_.Summary() : "";
}

}  // namespace softq
