// MetricsExporter serves Prometheus text format over HTTP, also in a process
// that links LibTorch (whose static TLS broke civetweb's small-stack threads).
#include "common/metrics.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace softq {
namespace {

// The response to GET `path`, with `headers` ("Name: value\r\n" each).
std::string HttpGet(int port, const std::string& path,
                    const std::string& headers = "") {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string request =
      "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n" + headers + "\r\n";
  if (write(fd, request.data(), request.size()) < 0) return "";
  std::string response;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;)
    response.append(buf, n);
  close(fd);
  return response;
}

TEST(MetricsExporter, ServesCountersAndGaugesInPrometheusTextFormat) {
  absl::StatusOr<std::unique_ptr<MetricsExporter>> exporter =
      MetricsExporter::Start("127.0.0.1", 0);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  ASSERT_GT((*exporter)->port(), 0);
  (*exporter)->Set("softq_test_updates_total", 42, "updates so far");
  (*exporter)->Set("softq_test_rate", 1.5, "updates per second");
  (*exporter)->Set("softq_test_updates_total", 43, "another text");
  const std::string page = HttpGet((*exporter)->port(), "/metrics");
  EXPECT_THAT(page, ::testing::StartsWith("HTTP/1.0 200 OK"));
  EXPECT_THAT(page, ::testing::HasSubstr(
                        "# HELP softq_test_updates_total updates so far\n"));
  // A _total is a counter (promtool check metrics refuses it as a gauge).
  EXPECT_THAT(
      page, ::testing::HasSubstr("# TYPE softq_test_updates_total counter\n"));
  EXPECT_THAT(page, ::testing::HasSubstr("softq_test_updates_total 43\n"));
  EXPECT_THAT(page, ::testing::HasSubstr(
                        "# HELP softq_test_rate updates per second\n"));
  EXPECT_THAT(page, ::testing::HasSubstr("# TYPE softq_test_rate gauge\n"));
  EXPECT_THAT(page, ::testing::HasSubstr("softq_test_rate 1.5\n"));
  EXPECT_THAT(HttpGet((*exporter)->port(), "/other"),
              ::testing::StartsWith("HTTP/1.0 404"));
}

TEST(MetricsExporter, AClientTricklingItsRequestDoesNotHoldOthersBack) {
  absl::StatusOr<std::unique_ptr<MetricsExporter>> exporter =
      MetricsExporter::Start("127.0.0.1", 0);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  const int port = (*exporter)->port();
  std::atomic<bool> trickling{true}, stop{false};
  std::thread trickler([&] {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      // A byte every 200 ms for 20 s: each read is quick, the request never
      // ends.
      for (int i = 0; i < 100 && !stop; ++i) {
        if (send(fd, "G", 1, MSG_NOSIGNAL) != 1) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    close(fd);
    trickling = false;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const std::string page = HttpGet(port, "/metrics");
  const bool answered_while_trickling = trickling;
  stop = true;
  trickler.join();
  EXPECT_THAT(page, ::testing::StartsWith("HTTP/1.0 200 OK"));
  EXPECT_TRUE(answered_while_trickling);
}

TEST(MetricsExporter, IdleConnectionsDoNotDelayAScrape) {
  absl::StatusOr<std::unique_ptr<MetricsExporter>> exporter =
      MetricsExporter::Start("127.0.0.1", 0);
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  (*exporter)->Set("softq_test_rate", 1.5, "updates per second");
  const int port = (*exporter)->port();
  // 50 connections that never send a byte: served one at a time, each would
  // hold the exporter for its whole one-second deadline.
  std::vector<int> idle;
  for (int i = 0; i < 50; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  const std::string page = HttpGet(port, "/metrics");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  for (int fd : idle) close(fd);
  EXPECT_THAT(page, ::testing::HasSubstr("softq_test_rate 1.5\n"));
  EXPECT_LT(seconds, 0.5);
}

TEST(MetricsExporter, APortInUseIsAnError) {
  absl::StatusOr<std::unique_ptr<MetricsExporter>> first =
      MetricsExporter::Start("127.0.0.1", 0);
  ASSERT_TRUE(first.ok());
  absl::StatusOr<std::unique_ptr<MetricsExporter>> second =
      MetricsExporter::Start("127.0.0.1", (*first)->port());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

// Secure mode (the job's token, common/security.h): 401 without it.
TEST(MetricsExporter, WithATokenServesOnlyRequestsThatCarryIt) {
  absl::StatusOr<std::unique_ptr<MetricsExporter>> exporter =
      MetricsExporter::Start("127.0.0.1", 0, "s3cret");
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  (*exporter)->Set("softq_test_value", 7, "a test value");
  const int port = (*exporter)->port();
  std::string page = HttpGet(port, "/metrics");
  EXPECT_THAT(page, ::testing::StartsWith("HTTP/1.0 401"));
  EXPECT_THAT(page, ::testing::Not(::testing::HasSubstr("softq_test_value")));
  EXPECT_THAT(HttpGet(port, "/metrics", "Authorization: Bearer wrong\r\n"),
              ::testing::StartsWith("HTTP/1.0 401"));
  page = HttpGet(port, "/metrics", "authorization:  Bearer s3cret\r\n");
  EXPECT_THAT(page, ::testing::StartsWith("HTTP/1.0 200"));
  EXPECT_THAT(page, ::testing::HasSubstr("softq_test_value 7"));
}

}  // namespace
}  // namespace softq
