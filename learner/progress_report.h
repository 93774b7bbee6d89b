// The learner's periodic report: a progress line on stdout, a --metrics_csv
// row and the Prometheus gauges, all from one snapshot. Thread-compatible.
#ifndef SOFTQ_LEARNER_PROGRESS_REPORT_H_
#define SOFTQ_LEARNER_PROGRESS_REPORT_H_

#include <cstdint>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/metrics.h"
#include "eval/evaluation.h"
#include "learner/replay_batch_source.h"
#include "learner/sql_agent.h"

namespace softq {

struct ProgressReportOptions {
  absl::Duration interval = absl::Seconds(5);
  std::string metrics_csv;             // appended to; "": none
  MetricsExporter* metrics = nullptr;  // outlives the report; null: none
  // The agent anneals (SqlConfig::anneal_updates > 0): the line shows the
  // current alpha and SVGD particle count K (SqlAgent::scheduled), the CSV has
  // two more columns, alpha and kernel_particles, and the exporter two more
  // gauges.
  bool annealing = false;
};

// The snapshot: updates and their rate, the share of the interval spent
// waiting for batches, the last update's scalars, the updates skipped for
// non-finite values, the parameter version and the last evaluation (and,
// annealing, the current alpha and K).
class ProgressReport {
 public:
  // The run's clock starts at `start` with the agent at update `start_step`.
  ProgressReport(const ProgressReportOptions& options, absl::Time start,
                 int64_t start_step);

  // Reports when `interval` has passed since the last report (or the start).
  // `evaluation`: the last one, null before the first; `waiting`: non-OK while
  // the last batch request timed out (its message is shown); `subscribers`:
  // actors on the parameter stream; `refused_publications`: versions the
  // parameter service refused as non-finite.
  void MaybeReport(const SqlAgent& agent, const ReplayBatchSource& source,
                   uint64_t version, const Evaluation* evaluation,
                   const absl::Status& waiting, int subscribers,
                   uint64_t refused_publications = 0);

 private:
  const ProgressReportOptions options_;
  const absl::Time start_;
  std::ofstream csv_;
  // At the last report.
  absl::Time last_time_ = absl::Now();
  int64_t last_step_ = 0;
  absl::Duration last_waited_;  // ReplayBatchSource::waited() then
};

}  // namespace softq

#endif  // SOFTQ_LEARNER_PROGRESS_REPORT_H_
