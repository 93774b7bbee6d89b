// Poison from an authorized but buggy actor never reaches published parameters
// (issue 29), with real processes on 127.0.0.1: a replay_server whose magnitude
// bounds are opened to 3e38 (so the poison gets in, as the probe's did), a
// learner_main with its default --max_nonfinite_updates (100), a subscriber as
// an actor holds one (actor/parameter_subscriber) and a raw Subscribe stream
// that checks every version it receives. Good transitions first, the learner
// trains and checkpoints; then batches with reward 3e38 and observations 1e30.
// The learner skips those updates, says so in its progress line, and stops with
// one line naming the cause and the update, exit status 1; no version it sent
// holds a NaN or an infinity, and its checkpoint is the last good one.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <torch/nn/module.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "actor/parameter_subscriber.h"
#include "common/tensor_codec.h"
#include "learner/host_parameters.h"
#include "learner/learner_checkpoint.h"
#include "learner/sql_agent.h"
#include "policy/acting_policy.h"
#include "proto/parameters.grpc.pb.h"
#include "tests/replay/server_fixture.h"
#include "tests/support/child_process.h"

namespace softq {
namespace {

using testing::InsertOnce;
using testing::ServerProcess;
using testing::StartServer;
using testing::TempDir;

std::string LearnerBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".",
                      "/softq/learner/learner_main");
}

// `n` multi-goal-sized transitions (observations and actions 2), values as an
// actor's: observations in [-7, 7], actions in [-1, 1], rewards in [-10, 0];
// or, poisoned, reward 3e38 and observations 1e30.
proto::TransitionBatch Batch(int n, bool poisoned) {
  proto::TransitionBatch b;
  b.set_observation_dim(2);
  b.set_action_dim(2);
  b.set_actor_id(0);
  const torch::Tensor obs = torch::rand({n, 2}) * 14 - 7;
  const torch::Tensor next = torch::rand({n, 2}) * 14 - 7;
  const torch::Tensor act = torch::rand({n, 2}) * 2 - 1;
  const torch::Tensor rew = torch::rand({n}) * -10;
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < 2; ++j) {
      b.add_observations(poisoned ? 1e30f : obs[i][j].item<float>());
      b.add_next_observations(poisoned ? 1e30f : next[i][j].item<float>());
      b.add_actions(act[i][j].item<float>());
    }
    b.add_rewards(poisoned ? 3e38f : rew[i].item<float>());
    b.add_dones(false);
  }
  return b;
}

void Insert(ServerProcess& shard, int batches, int n, bool poisoned) {
  for (int i = 0; i < batches; ++i) {
    proto::InsertRequest request;
    request.set_sequence(1);
    *request.mutable_batch() = Batch(n, poisoned);
    absl::StatusOr<proto::InsertResponse> r =
        InsertOnce(shard.stub.get(), request);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->code(), 0) << r->error();
  }
}

// Reads a Subscribe stream until it ends and checks every version on arrival.
class VersionChecker {
 public:
  explicit VersionChecker(const std::string& address)
      : stub_(proto::ParameterService::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials()))),
        thread_([this] { Run(); }) {}
  ~VersionChecker() {
    context_.TryCancel();
    thread_.join();
  }
  int received() const {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  std::vector<std::string> bad() const {
    absl::MutexLock lock(&mu_);
    return bad_;
  }

 private:
  void Run() {
    proto::SubscribeRequest request;
    auto reader = stub_->Subscribe(&context_, request);
    proto::NetworkParameters message;
    while (reader->Read(&message)) {
      absl::StatusOr<NamedTensors> params =
          DecodeNamedTensors(message.tensors());
      absl::Status finite =
          params.ok() ? CheckFinite(*params) : params.status();
      absl::MutexLock lock(&mu_);
      ++received_;
      if (!finite.ok()) {
        bad_.push_back(absl::StrCat("version ", message.version(), ": ",
                                    finite.message()));
      }
    }
    reader->Finish().IgnoreError();
  }

  std::unique_ptr<proto::ParameterService::Stub> stub_;
  grpc::ClientContext context_;
  mutable absl::Mutex mu_;
  int received_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> bad_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// Reads a child's stdout line by line on a thread of its own (so the pipe never
// fills) until it closes; the child is used by no other thread meanwhile.
class LineCollector {
 public:
  explicit LineCollector(ChildProcess* child)
      : thread_([this, child] {
          while (true) {
            absl::StatusOr<std::string> line =
                child->WaitForLine("", absl::Seconds(1));
            absl::MutexLock lock(&mu_);
            if (stopping_) break;
            if (absl::IsDeadlineExceeded(line.status())) continue;
            if (!line.ok()) {
              closed_ = true;
              break;
            }
            lines_.push_back(*line);
          }
        }) {}
  // Stops reading (within a second) if the child has not closed its stdout.
  ~LineCollector() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    Join();
  }
  // Returns once the child closed its stdout (or the destructor stopped it).
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  // Whether the child closed its stdout (exited).
  bool closed() const {
    absl::MutexLock lock(&mu_);
    return closed_;
  }
  std::vector<std::string> lines() const {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  // The first line starting with `prefix`, or "".
  std::string Find(absl::string_view prefix) const {
    absl::MutexLock lock(&mu_);
    for (const std::string& line : lines_) {
      if (absl::StartsWith(line, prefix)) return line;
    }
    return "";
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

bool Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return true;
}

TEST(LearnerPoison, PoisonNeverReachesPublishedParametersAndStopsTheLearner) {
  torch::manual_seed(0);
  absl::StatusOr<ServerProcess> shard =
      StartServer({"--min_size_to_sample=200", "--max_abs_reward=3e38",
                   "--max_abs_observation=3e38"});
  ASSERT_TRUE(shard.ok()) << shard.status();
  const std::string dir = TempDir("learner_poison_ckpt");
  std::filesystem::remove_all(dir);
  const std::string checkpoint = LearnerCheckpointPath(dir);
  std::string learner_address;
  // (Through sh, so that stderr comes on the same pipe as stdout.)
  absl::StatusOr<std::unique_ptr<ChildProcess>> learner = StartListening(
      {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", LearnerBinary(),
       "--replay=" + shard->address, "--port=0", "--batch_size=256",
       "--eval_interval=0", "--publish_interval=5", "--log_interval_s=0.05",
       "--checkpoint_dir=" + dir, "--checkpoint_interval=50"},
      "learner listening on ", absl::Seconds(60), &learner_address);
  ASSERT_TRUE(learner.ok()) << learner.status();
  LineCollector output(learner->get());

  VersionChecker checker(learner_address);
  ActingPolicy policy(2, 2, SqlConfig().hidden, /*seed=*/1);
  ParameterSubscriber subscriber(learner_address, &policy);
  ASSERT_TRUE(subscriber.WaitForParameters(absl::Seconds(30)));

  // Good data: the learner trains and writes its first checkpoints.
  Insert(*shard, 10, 50, /*poisoned=*/false);
  ASSERT_TRUE(Eventually([&] { return std::filesystem::exists(checkpoint); },
                         absl::Seconds(120)))
      << "no checkpoint from the good data";
  ASSERT_TRUE(
      Eventually([&] { return checker.received() >= 3; }, absl::Seconds(30)));
  const uint64_t good_versions = policy.version();

  // The poison: 4,000 transitions beside the 500 good ones, so every batch of
  // 256 holds some.
  Insert(*shard, 40, 100, /*poisoned=*/true);
  ASSERT_TRUE(Eventually([&] { return output.closed(); }, absl::Seconds(120)))
      << "the learner did not stop";
  output.Join();
  const std::string stopped = output.Find("learner: stopped");
  std::cout << "the learner's line: " << stopped << std::endl;
  EXPECT_TRUE(absl::StrContains(stopped, "updates in a row skipped"));
  EXPECT_TRUE(absl::StrContains(stopped, "non-finite critic loss"));
  EXPECT_TRUE(absl::StrContains(stopped, "the last at update "));
  EXPECT_TRUE(absl::StrContains(stopped, "--max_nonfinite_updates=100"));
  EXPECT_TRUE(absl::StrContains(stopped, "last good checkpoint kept in"));
  absl::StatusOr<int> code = (*learner)->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 1);
  // One line says why; the progress lines before it counted the skips.
  int stop_lines = 0;
  bool counted = false;
  for (const std::string& line : output.lines()) {
    if (absl::StrContains(line, "in a row")) ++stop_lines;
    const size_t at = line.find("  skipped ");
    if (at != std::string::npos && line.substr(at + 10, 2) != "0 ") {
      counted = true;
    }
  }
  EXPECT_EQ(stop_lines, 1);
  EXPECT_TRUE(counted) << "no progress line counted a skipped update";
  EXPECT_TRUE(output.Find("learner: final").empty())
      << "it went on to its final evaluation";

  EXPECT_GT(checker.received(), 0);
  EXPECT_TRUE(checker.bad().empty())
      << "published non-finite: " << checker.bad().front();
  EXPECT_EQ(subscriber.rejected(), 0u);
  EXPECT_GE(policy.version(), good_versions);

  // The checkpoint is finite: the last good one.
  SqlAgent restored(SqlConfig{});
  absl::StatusOr<uint64_t> version = RestoreLearnerCheckpoint(restored, dir);
  ASSERT_TRUE(version.ok()) << version.status();
  for (torch::nn::Module* m : std::vector<torch::nn::Module*>{
           &*restored.q(), &*restored.q_target(), &*restored.policy(),
           &*restored.policy_target()}) {
    EXPECT_TRUE(CheckFinite(ParametersOnHost(*m)).ok());
  }
}

}  // namespace
}  // namespace softq
