#include "common/metrics.h"

#include <exception>

#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"

namespace softq {

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(const std::string& host,
                                                                        int port) {
  std::unique_ptr<MetricsExporter> exporter(new MetricsExporter());
  exporter->registry_ = std::make_shared<prometheus::Registry>();
  try {  // prometheus-cpp (civetweb) reports bind failures by exception.
    exporter->exposer_ = std::make_unique<prometheus::Exposer>(absl::StrCat(host, ":", port));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("--metrics_port=", port, ": cannot listen on ", host, ": ", e.what()));
  }
  exporter->exposer_->RegisterCollectable(exporter->registry_);
  const std::vector<int> ports = exporter->exposer_->GetListeningPorts();
  exporter->port_ = ports.empty() ? port : ports.front();
  return exporter;
}

MetricsExporter::~MetricsExporter() = default;

void MetricsExporter::Set(const std::string& name, double value, const std::string& help) {
  absl::MutexLock lock(&mu_);
  auto it = gauges_.find(name);
  if (it == gauges_.end()) {
    auto& family = prometheus::BuildGauge().Name(name).Help(help.empty() ? name : help)
                       .Register(*registry_);
    it = gauges_.emplace(name, &family.Add({})).first;
  }
  it->second->Set(value);
}

}  // namespace softq
