#include "learner/replay_sizes.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "replay/replay_stats.h"

namespace softq {

absl::StatusOr<ReplaySizes> WaitForReplaySizes(
    const std::vector<std::string>& shards, const SecurityConfig& security,
    const std::function<bool()>& stop, std::ostream& log, absl::Duration poll,
    absl::Duration report) {
  absl::Time next_report = absl::Now() + report;
  while (true) {
    if (stop()) {
      return absl::CancelledError(
          "stopped while waiting for the replay's first stored batch");
    }
    ReplaySizes found;
    std::string found_at;
    const std::vector<absl::StatusOr<proto::ShardStats>> stats =
        QueryStatsEach(shards, poll, security);
    for (size_t i = 0; i < stats.size(); ++i) {
      if (!stats[i].ok() || stats[i]->observation_dim() == 0) continue;
      const ReplaySizes here{static_cast<int>(stats[i]->observation_dim()),
                             static_cast<int>(stats[i]->action_dim())};
      const std::string at =
          absl::StrCat(shards[i], " holds observation_dim ",
                       here.observation_dim, ", action_dim ", here.action_dim);
      if (found.observation_dim == 0) {
        found = here;
        found_at = at;
      } else if (here.observation_dim != found.observation_dim ||
                 here.action_dim != found.action_dim) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the shards disagree on the task's sizes: ", found_at, ", ", at));
      }
    }
    if (found.observation_dim != 0) return found;
    if (absl::Now() >= next_report) {
      log << "learner: waiting for the first stored batch to learn the task's "
             "sizes (shards "
          << absl::StrJoin(shards, ",") << ")" << std::endl;
      next_report = absl::Now() + report;
    }
    absl::SleepFor(poll);
  }
}

}  // namespace softq
