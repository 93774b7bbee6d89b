// MetricsExporter: serves a process's metrics in Prometheus text format
// (version 0.0.4) on http://<host>:<port>/metrics. Binaries set values by name:
// a name ending in _total is a counter (a monotone count), any other a gauge.
//
// A small HTTP/1.0 server of its own (one thread, poll-based, joined by the
// destructor): prometheus-cpp's civetweb server starts its threads with a fixed
// small stack, which glibc refuses in processes with LibTorch's large static
// TLS ("Cannot create threads"). Up to kMaxClients connections are served at
// once, each within one second of its accept, so slow or idle clients delay
// no one else's scrape. Thread-safe.
#ifndef SOFTQ_COMMON_METRICS_H_
#define SOFTQ_COMMON_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace softq {

class MetricsExporter {
 public:
  // Listens on host:port (an IPv4 address; port 0: any free port). Unavailable
  // if the port cannot be bound. A non-empty `token` (the job's, secure mode)
  // is required of every request as "Authorization: Bearer <token>": 401
  // without it.
  static absl::StatusOr<std::unique_ptr<MetricsExporter>> Start(
      const std::string& host, int port, const std::string& token = "");
  ~MetricsExporter();

  // Connections served at once; more wait in the listen queue.
  static constexpr int kMaxClients = 64;

  // Sets metric `name` ([a-zA-Z_:][a-zA-Z0-9_:]*; a counter if it ends in
  // _total, else a gauge) with `help`, what it measures (the first one given
  // stays).
  void Set(const std::string& name, double value, const std::string& help)
      ABSL_LOCKS_EXCLUDED(mu_);
  int port() const { return port_; }

  // The page served at /metrics.
  std::string Render() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  MetricsExporter(int fd, int port, std::string token)
      : listen_fd_(fd), port_(port), token_(std::move(token)) {}
  void Serve() ABSL_LOCKS_EXCLUDED(mu_);
  // The HTTP response to `request`: 401 without the token (when one is
  // required), the page for GET /metrics (or /), else 404.
  std::string Respond(const std::string& request) const
      ABSL_LOCKS_EXCLUDED(mu_);

  struct Metric {
    std::string help;
    double value = 0;
  };
  const int listen_fd_;
  const int port_;
  const std::string token_;  // "": none required
  mutable absl::Mutex mu_;
  std::map<std::string, Metric> metrics_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace softq

#endif  // SOFTQ_COMMON_METRICS_H_
