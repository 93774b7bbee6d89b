#include "learner/progress_report.h"

#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace softq {

ProgressReport::ProgressReport(const ProgressReportOptions& options,
                               absl::Time start, int64_t start_step)
    : options_(options), start_(start), last_step_(start_step) {
  if (!options_.metrics_csv.empty()) {
    csv_.open(options_.metrics_csv, std::ios::app);
    csv_ << "wall_s,updates,updates_per_s,transitions_sampled,critic_loss,"
            "mean_q,"
            "policy_surrogate,kernel_bandwidth,version,eval_goals,eval_reached,"
            "replay_wait"
         << (options_.annealing ? ",alpha,kernel_particles\n" : "\n");
  }
}

void ProgressReport::MaybeReport(const SqlAgent& agent,
                                 const ReplayBatchSource& source,
                                 uint64_t version, const Evaluation* evaluation,
                                 const absl::Status& waiting, int subscribers,
                                 uint64_t refused_publications) {
  const absl::Time now = absl::Now();
  if (now - last_time_ < options_.interval) return;
  const UpdateMetrics last = agent.LastMetrics();
  const SkippedUpdates skipped = agent.Skipped();
  const double rate =
      (agent.step() - last_step_) / absl::ToDoubleSeconds(now - last_time_);
  const double wall = absl::ToDoubleSeconds(now - start_);
  const double wait_share =
      absl::FDivDuration(source.waited() - last_waited_, now - last_time_);
  const int goals = evaluation != nullptr ? evaluation->GoalsCovered() : 0;
  const ScheduledValues& scheduled = agent.scheduled();
  std::cout
      << absl::StrFormat(
             "learner: %7.1fs  updates %7d  %6.1f upd/s  replay wait "
             "%3.0f%%  sampled %9d  "
             "critic %.4f  Q %.2f  skipped %d  version %d%s%s%s",
             wall, agent.step(), rate, 100 * wait_share, source.sampled(),
             last.critic_loss, last.mean_q, skipped.total, version,
             options_.annealing
                 ? absl::StrFormat("  alpha %.4g  K %d", scheduled.alpha(),
                                   scheduled.kernel_particles)
                 : "",
             evaluation != nullptr ? "  eval " + evaluation->Summary() : "",
             waiting.ok() ? "" : "  waiting: " + std::string(waiting.message()))
      << std::endl;
  if (csv_.is_open()) {
    csv_ << absl::StrFormat("%.2f,%d,%.2f,%d,%.6f,%.4f,%.4f,%.6f,%d,%d,%d,%.3f",
                            wall, agent.step(), rate, source.sampled(),
                            last.critic_loss, last.mean_q,
                            last.policy_surrogate, last.kernel_bandwidth,
                            version, goals,
                            evaluation != nullptr && evaluation->goals
                                ? evaluation->goals->reached_any
                                : 0,
                            wait_share)
         << (options_.annealing
                 ? absl::StrFormat(",%.6g,%d\n", scheduled.alpha(),
                                   scheduled.kernel_particles)
                 : "\n")
         << std::flush;
  }
  if (MetricsExporter* metrics = options_.metrics; metrics != nullptr) {
    metrics->Set("softq_learner_updates_total", agent.step(),
                 "gradient updates done");
    metrics->Set("softq_learner_updates_per_second", rate,
                 "gradient updates per second since the last report");
    metrics->Set("softq_learner_transitions_sampled_total", source.sampled(),
                 "transitions sampled from the replay");
    metrics->Set("softq_learner_replay_wait_seconds_total",
                 absl::ToDoubleSeconds(source.waited()),
                 "seconds spent waiting for batches from the replay");
    metrics->Set("softq_learner_critic_loss", last.critic_loss,
                 "soft Q loss of the last update");
    metrics->Set("softq_learner_skipped_updates_total", skipped.total,
                 "updates skipped because a loss or gradient was not finite "
                 "(networks and optimizer state left as they were)");
    metrics->Set("softq_learner_publications_refused_total",
                 refused_publications,
                 "parameter versions not published because a value was not "
                 "finite");
    metrics->Set("softq_learner_parameter_version", version,
                 "version of the last published parameters");
    metrics->Set("softq_learner_eval_goals_covered", goals,
                 "multigoal: goals reached in the last evaluation");
    metrics->Set("softq_learner_parameter_subscribers", subscribers,
                 "actors subscribed to the parameter stream");
    if (options_.annealing) {
      metrics->Set("softq_learner_alpha", scheduled.alpha(),
                   "temperature alpha = 1 / reward scale of the next update "
                   "(--anneal_updates)");
      metrics->Set("softq_learner_kernel_particles", scheduled.kernel_particles,
                   "SVGD particles per state of the next update "
                   "(--anneal_updates)");
    }
  }
  last_time_ = now;
  last_step_ = agent.step();
  last_waited_ = source.waited();
}

}  // namespace softq
