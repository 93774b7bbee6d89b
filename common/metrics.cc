#include "common/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/security.h"

namespace softq {

absl::StatusOr<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(
    const std::string& host, int port, const std::string& token) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics host \"", host, "\" is not an IPv4 address"));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, kMaxClients) != 0) {
    const std::string error = std::strerror(errno);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat(
        "--metrics_port=", port, ": cannot listen on ", host, ": ", error));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::unique_ptr<MetricsExporter> exporter(
      new MetricsExporter(fd, ntohs(addr.sin_port), token));
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
  Metric& m = metrics_[name];
  if (m.help.empty()) m.help = help;
  m.value = value;
}

std::string MetricsExporter::Render() const {
  absl::MutexLock lock(&mu_);
  std::string page;
  for (const auto& [name, m] : metrics_) {
    absl::StrAppendFormat(
        &page, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, m.help, name,
        absl::EndsWith(name, "_total") ? "counter" : "gauge", name, m.value);
  }
  return page;
}

namespace {

// One connection: its request as read so far, then the response being sent.
struct Client {
  int fd = -1;
  absl::Time deadline;
  std::string request;
  std::string response;  // set once the request is complete
  size_t sent = 0;
};

// Whether `request`'s headers hold "Authorization: Bearer <token>" (the
// header's name in any case).
bool Authorized(const std::string& request, const std::string& token) {
  bool first = true;
  for (absl::string_view line : absl::StrSplit(request, "\r\n")) {
    if (first) {  // the request line
      first = false;
      continue;
    }
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos ||
        !absl::EqualsIgnoreCase(line.substr(0, colon), "authorization")) {
      continue;
    }
    return BearerTokenMatches(
        absl::StripAsciiWhitespace(line.substr(colon + 1)), token);
  }
  return false;
}

}  // namespace

std::string MetricsExporter::Respond(const std::string& request) const {
  std::string status = "200 OK", body, extra;
  if (!token_.empty() && !Authorized(request, token_)) {
    status = "401 Unauthorized";
    body = "the job token is required: Authorization: Bearer <token>\n";
    extra = "WWW-Authenticate: Bearer\r\n";
  } else if (absl::StartsWith(request, "GET /metrics ") ||
             absl::StartsWith(request, "GET / ")) {
    body = Render();
  } else {
    status = "404 Not Found";
    body = "only GET /metrics is served\n";
  }
  return absl::StrCat(
      "HTTP/1.0 ", status,
      "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: ",
      body.size(), "\r\n", extra, "Connection: close\r\n\r\n", body);
}

void MetricsExporter::Serve() {
  std::vector<Client> clients;
  std::vector<pollfd> fds;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) break;
    }
    fds.clear();
    fds.push_back(
        {listen_fd_,
         static_cast<short>(
             clients.size() < static_cast<size_t>(kMaxClients) ? POLLIN : 0),
         0});
    for (const Client& c : clients) {
      fds.push_back(
          {c.fd, static_cast<short>(c.response.empty() ? POLLIN : POLLOUT), 0});
    }
    // Wakes at least every 100 ms to notice stopping_ and deadlines.
    if (poll(fds.data(), fds.size(), 100) < 0 && errno != EINTR) continue;
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < clients.size(); ++i) {
      Client& c = clients[i];
      const short events = fds[i + 1].revents;
      bool done = now >= c.deadline;
      if (!done && c.response.empty() && events != 0) {
        char buf[2048];
        const ssize_t n = read(c.fd, buf, sizeof(buf));
        if (n > 0) c.request.append(buf, n);
        const bool ended = n == 0 || absl::StrContains(c.request, "\r\n\r\n") ||
                           c.request.size() >= 16384;
        if (ended && !c.request.empty()) {
          c.response = Respond(c.request);
        } else if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          done = true;
        }
      } else if (!done && !c.response.empty() && events != 0) {
        const ssize_t n = send(c.fd, c.response.data() + c.sent,
                               c.response.size() - c.sent, MSG_NOSIGNAL);
        if (n > 0) c.sent += n;
        done = (n < 0 && errno != EAGAIN && errno != EINTR) ||
               c.sent == c.response.size();
      }
      if (done) {
        close(c.fd);
        c.fd = -1;
      }
    }
    clients.erase(std::remove_if(clients.begin(), clients.end(),
                                 [](const Client& c) { return c.fd < 0; }),
                  clients.end());
    while (clients.size() < static_cast<size_t>(kMaxClients)) {
      const int fd =
          accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) break;
      Client c;
      c.fd = fd;
      c.deadline = absl::Now() + absl::Seconds(1);
      clients.push_back(std::move(c));
    }
  }
  for (const Client& c : clients) close(c.fd);
}

}  // namespace softq
