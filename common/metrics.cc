#include "common/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace softq {

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const std::string& host, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics host \"", host, "\" is not an IPv4 address"));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 16) != 0) {
    const std::string error = std::strerror(errno);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat(
        "--metrics_port=", port, ": cannot listen on ", host, ": ", error));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::unique_ptr<MetricsExporter> exporter(
      new MetricsExporter(fd, ntohs(addr.sin_port)));
  exporter->thread_ = std::thread([e = exporter.get()] { e->Serve(); });
  return exporter;
}

MetricsExporter::~MetricsExporter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  close(listen_fd_);
}

void MetricsExporter::Set(const std::string& name, double value,
                          const std::string& help) {
  absl::MutexLock lock(&mu_);
  Gauge& g = gauges_[name];
  if (g.help.empty()) g.help = help.empty() ? name : help;
  g.value = value;
}

std::string MetricsExporter::Render() const {
  absl::MutexLock lock(&mu_);
  std::string page;
  for (const auto& [name, g] : gauges_) {
    absl::StrAppendFormat(&page, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n",
                          name, g.help, name, name, g.value);
  }
  return page;
}

void MetricsExporter::Serve() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0)
      continue;  // Wake every 100 ms to notice stopping_.
    const int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    timeval timeout{1, 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    // One deadline for the whole request (the socket timeouts bound each read
    // only, so a client trickling bytes could otherwise hold this thread, and
    // shutdown, forever).
    const absl::Time deadline = absl::Now() + absl::Seconds(1);
    std::string request;
    char buf[2048];
    while (!absl::StrContains(request, "\r\n\r\n") && request.size() < 16384 &&
           absl::Now() < deadline) {
      const ssize_t n = read(client, buf, sizeof(buf));
      if (n <= 0) break;
      request.append(buf, n);
    }
    std::string status = "200 OK", body;
    if (absl::StartsWith(request, "GET /metrics ") ||
        absl::StartsWith(request, "GET / ")) {
      body = Render();
    } else {
      status = "404 Not Found";
      body = "only GET /metrics is served\n";
    }
    const std::string response = absl::StrCat(
        "HTTP/1.0 ", status,
        "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: ",
        body.size(), "\r\nConnection: close\r\n\r\n", body);
    for (size_t sent = 0; sent < response.size();) {
      const ssize_t n =
          write(client, response.data() + sent, response.size() - sent);
      if (n <= 0) break;
      sent += n;
    }
    close(client);
  }
}

}  // namespace softq
