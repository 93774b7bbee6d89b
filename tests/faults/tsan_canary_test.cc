// Negative control for `bazel test --config=tsan` (tests/faults/README.md): a
// deliberate data race in the project's code, one side of it on a thread gRPC
// created (an alarm callback), must still be reported with Debian's Abseil
// replaced by the TSan build and with tests/faults/tsan.supp loaded. Expected
// result: FAILED, with a "data race" report naming softq::(anonymous
// namespace)::racy_counter. Tagged manual: never part of //... .
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace softq {
namespace {

int racy_counter = 0;  // deliberately unsynchronized

TEST(TsanCanary, UnsynchronizedWriteOnAGrpcThreadIsReported) {
  std::atomic<bool> done{false};
  grpc::Alarm alarm;
  alarm.Set(std::chrono::system_clock::now() + std::chrono::milliseconds(100),
            [&](bool) {
              ++racy_counter;  // on a gRPC thread
              done.store(true);
            });
  ++racy_counter;  // on the test thread, after Set: nothing orders it with the
                   // callback
  while (!done.load())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GE(racy_counter, 1);
}

}  // namespace
}  // namespace softq
