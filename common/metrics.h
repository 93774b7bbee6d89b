// MetricsExporter: serves a process's metrics in Prometheus text format on
// http://<host>:<port>/metrics (prometheus-cpp). Binaries set gauges by name; every value is
// a gauge (monotone counts carry a _total suffix). Thread-safe.
#ifndef SOFTQ_COMMON_METRICS_H_
#define SOFTQ_COMMON_METRICS_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace prometheus {
class Exposer;
class Gauge;
class Registry;
}  // namespace prometheus

namespace softq {

class MetricsExporter {
 public:
  // Listens on host:port (port 0: any free port). Unavailable if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(const std::string& host,
                                                                int port);
  ~MetricsExporter();

  // Sets gauge `name` ([a-zA-Z_:][a-zA-Z0-9_:]*), creating it with `help` on first use.
  void Set(const std::string& name, double value, const std::string& help = "")
      ABSL_LOCKS_EXCLUDED(mu_);
  int port() const { return port_; }

 private:
  MetricsExporter() = default;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  absl::Mutex mu_;
  std::map<std::string, prometheus::Gauge*> gauges_ ABSL_GUARDED_BY(mu_);
};

}  // namespace softq

#endif  // SOFTQ_COMMON_METRICS_H_
