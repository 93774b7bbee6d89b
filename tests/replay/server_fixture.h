// Helpers for tests that run real replay_server processes on loopback: start
// one with
// --port=0 and read the port it prints, and build transitions whose values
// encode an id so any sampled item can be checked against what was inserted.
#ifndef SOFTQ_TESTS_REPLAY_SERVER_FIXTURE_H_
#define SOFTQ_TESTS_REPLAY_SERVER_FIXTURE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/replay.grpc.pb.h"
#include "replay/sampled_batch.h"
#include "tests/support/child_process.h"

namespace softq {
namespace testing {

// $TEST_SRCDIR/softq/replay/replay_server.
std::string ServerBinary();

struct ServerProcess {
  std::unique_ptr<ChildProcess> process;
  std::string address;  // 127.0.0.1:<port>
  std::unique_ptr<proto::ReplayShard::Stub> stub;
};

// Starts replay_server with `flags` (plus --port=0) and waits for its listening
// line.
absl::StatusOr<ServerProcess> StartServer(
    const std::vector<std::string>& flags);

// Transitions with ids first_id .. first_id+n-1: reward = id, observation[j] =
// id + j/100, next_observation[j] = id + 0.5 + j/100, action[j] = -id/1e6 -
// j/1000, done = id odd.
proto::TransitionBatch MakeBatch(int n, int first_id,
                                 uint32_t observation_dim = 2,
                                 uint32_t action_dim = 2,
                                 uint32_t actor_id = 0);

// The id of item i of `batch` (its reward), after checking every field against
// MakeBatch's pattern; -1 when the item is inconsistent.
int CheckedId(const proto::TransitionBatch& batch, int i);
// The same for row i of a sampled batch.
int CheckedId(const SampledBatch& batch, int i);

// A fresh directory under $TEST_TMPDIR.
std::string TempDir(const std::string& name);

// A whole file's bytes ("" when unreadable), and replacing them (for corruption
// tests).
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);

// Insert over a one-shot stream: one request, one response.
absl::StatusOr<proto::InsertResponse> InsertOnce(
    proto::ReplayShard::Stub* stub, const proto::InsertRequest& request);

// GetStats with a 5 s deadline.
absl::StatusOr<proto::ShardStats> Stats(proto::ReplayShard::Stub* stub);

}  // namespace testing
}  // namespace softq

#endif  // SOFTQ_TESTS_REPLAY_SERVER_FIXTURE_H_
