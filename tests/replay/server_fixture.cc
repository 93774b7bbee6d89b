#include "tests/replay/server_fixture.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "replay/replay_channel.h"

namespace softq {
namespace testing {

std::string ServerBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".",
                      "/softq/replay/replay_server");
}

absl::StatusOr<ServerProcess> StartServer(
    const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {ServerBinary(), "--port=0"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  ServerProcess server;
  absl::StatusOr<std::unique_ptr<ChildProcess>> process = StartListening(
      argv, "replay_server listening on ", absl::Seconds(20), &server.address);
  if (!process.ok()) return process.status();
  server.process = *std::move(process);
  server.stub = proto::ReplayShard::NewStub(MakeReplayChannel(server.address));
  return server;
}

proto::TransitionBatch MakeBatch(int n, int first_id, uint32_t observation_dim,
                                 uint32_t action_dim, uint32_t actor_id) {
  proto::TransitionBatch b;
  b.set_observation_dim(observation_dim);
  b.set_action_dim(action_dim);
  b.set_actor_id(actor_id);
  for (int i = 0; i < n; ++i) {
    const int id = first_id + i;
    for (uint32_t j = 0; j < observation_dim; ++j)
      b.add_observations(id + j / 100.0f);
    for (uint32_t j = 0; j < action_dim; ++j)
      b.add_actions(-id / 1e6f - j / 1000.0f);
    b.add_rewards(static_cast<float>(id));
    for (uint32_t j = 0; j < observation_dim; ++j)
      b.add_next_observations(id + 0.5f + j / 100.0f);
    b.add_dones(id % 2 == 1);
  }
  return b;
}

int CheckedId(const proto::TransitionBatch& b, int i) {
  const int id = static_cast<int>(b.rewards(i));
  const uint32_t od = b.observation_dim(), ad = b.action_dim();
  for (uint32_t j = 0; j < od; ++j) {
    if (b.observations(i * od + j) != id + j / 100.0f) return -1;
    if (b.next_observations(i * od + j) != id + 0.5f + j / 100.0f) return -1;
  }
  for (uint32_t j = 0; j < ad; ++j) {
    if (b.actions(i * ad + j) != -id / 1e6f - j / 1000.0f) return -1;
  }
  if (b.dones(i) != (id % 2 == 1)) return -1;
  return id;
}

int CheckedId(const SampledBatch& b, int i) {
  const int id = static_cast<int>(b.reward(i));
  for (uint32_t j = 0; j < b.observation_dim; ++j) {
    if (b.observation(i)[j] != id + j / 100.0f) return -1;
    if (b.next_observation(i)[j] != id + 0.5f + j / 100.0f) return -1;
  }
  for (uint32_t j = 0; j < b.action_dim; ++j) {
    if (b.action(i)[j] != -id / 1e6f - j / 1000.0f) return -1;
  }
  if (b.done(i) != (id % 2 == 1)) return -1;
  return id;
}

std::string TempDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

absl::StatusOr<proto::InsertResponse> InsertOnce(
    proto::ReplayShard::Stub* stub, const proto::InsertRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  auto stream = stub->Insert(&context);
  proto::InsertResponse response;
  const bool wrote = stream->Write(request);
  const bool read = wrote && stream->Read(&response);
  stream->WritesDone();
  const grpc::Status status = stream->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  if (!read) return absl::UnavailableError("no response on the insert stream");
  return response;
}

absl::StatusOr<proto::ShardStats> Stats(proto::ReplayShard::Stub* stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  proto::ShardStats stats;
  const grpc::Status status =
      stub->GetStats(&context, proto::StatsRequest(), &stats);
  if (!status.ok()) return FromGrpcStatus(status);
  return stats;
}

}  // namespace testing
}  // namespace softq
