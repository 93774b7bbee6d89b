// What the network costs the actor and the learner, in one run:
//   actor:   env steps/s with policy inference, alone (transitions discarded)
//            vs streaming to a replay shard process over loopback;
//   learner: SQL updates/s (on --device) with batches from an in-process table
//            vs prefetched from replay shard processes (--shards, --prefetch),
//            both holding the same transitions of --observation_dim and
//            --action_dim, batches of --batch_size; and batches/s from each
//            source alone, with no update: the most updates/s a faster learner
//            could be fed.
// Target for both ratios: >= 0.9. Starts and stops its own replay_server
// processes.
//
//   bazel run //bench:actor_learner_bench
//   ... -- --observation_dim=29 --action_dim=8 --batch_size=256 --device=cuda
//   (quadruped-sized data on a GPU: deploy/gpu/run_on_cuda_host.sh)
#include <signal.h>

#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "actor/actor.h"
#include "actor/replay_sink.h"
#include "common/flags.h"
#include "common/torch_threads.h"
#include "env/registry.h"
#include "learner/learner_setup.h"
#include "learner/replay_batch_source.h"
#include "learner/shard_replay.h"
#include "tests/support/child_process.h"

ABSL_FLAG(double, seconds, 10, "seconds per actor measurement");
ABSL_FLAG(int32_t, updates, 1000, "updates per learner measurement");
ABSL_FLAG(int32_t, batches, 20000,
          "batches per measurement of a batch source alone");
ABSL_FLAG(int32_t, shards, 2,
          "replay shard processes the learner samples from");
ABSL_FLAG(int32_t, prefetch, 16,
          "batches the learner's sampler draws ahead (learner_main's default)");
ABSL_FLAG(int32_t, num_envs, 4, "environments per actor");
ABSL_FLAG(int32_t, steps_per_write, 16,
          "actor steps per replay message (actor_main default)");
ABSL_FLAG(int32_t, observation_dim, 2,
          "learner rows: observation size (2: multi-goal; 29: the quadruped)");
ABSL_FLAG(int32_t, action_dim, 2, "learner rows: action size");
ABSL_FLAG(int32_t, batch_size, 64, "learner minibatch size");
ABSL_FLAG(std::string, device, "cpu", "learner device: cpu, cuda or auto");
ABSL_FLAG(std::string, replay_server, "",
          "replay_server binary (default: from runfiles)");

namespace softq {
namespace {

class DiscardSink : public TransitionSink {
 public:
  absl::Status Write(proto::TransitionBatch) override {
    return absl::OkStatus();
  }
};

std::vector<std::unique_ptr<Environment>> Envs(int n) {
  std::vector<std::unique_ptr<Environment>> envs;
  for (int i = 0; i < n; ++i)
    envs.push_back(*MakeEnvironment("multigoal", "", i));
  return envs;
}

double ActorStepsPerSecond(TransitionSink* sink, double seconds) {
  ActingPolicy policy(2, 2, {128, 128}, 0);
  Actor actor(Envs(absl::GetFlag(FLAGS_num_envs)), &policy, sink,
              {0, absl::GetFlag(FLAGS_steps_per_write)});
  for (int i = 0; i < 100; ++i) actor.Step().IgnoreError();
  const int64_t start_steps = actor.env_steps();
  const absl::Time start = absl::Now();
  while (absl::Now() - start < absl::Seconds(seconds)) {
    if (absl::Status s = actor.Step(); !s.ok()) {
      std::cerr << "actor step: " << s << std::endl;
      return 0;
    }
  }
  return (actor.env_steps() - start_steps) /
         absl::ToDoubleSeconds(absl::Now() - start);
}

proto::TransitionBatch RandomBatch(int n, int od, int ad) {
  proto::TransitionBatch b;
  b.set_observation_dim(od);
  b.set_action_dim(ad);
  for (int i = 0; i < n; ++i) {
    for (int d = 0; d < od; ++d) {
      b.add_observations(((i + d) % 97) * 0.1f - 5);
      b.add_next_observations(((i + d) % 89) * 0.1f - 4);
    }
    for (int d = 0; d < ad; ++d)
      b.add_actions(((i * 7 + d) % 19) * 0.1f - 0.9f);
    b.add_rewards(-(i % 50));
    b.add_dones(i % 31 == 0);
  }
  return b;
}

double UpdatesPerSecond(BatchSource* source, int updates,
                        torch::Device device) {
  torch::manual_seed(0);
  SqlConfig config;
  config.observation_dim = absl::GetFlag(FLAGS_observation_dim);
  config.action_dim = absl::GetFlag(FLAGS_action_dim);
  SqlAgent agent(config, device);
  for (int i = 0; i < 20; ++i) agent.Update(*source->Next(absl::Seconds(30)));
  const absl::Time start = absl::Now();
  for (int i = 0; i < updates; ++i) {
    absl::StatusOr<TransitionTensors> batch = source->Next(absl::Seconds(30));
    if (!batch.ok()) {
      std::cerr << "sampling: " << batch.status() << std::endl;
      return 0;
    }
    agent.Update(*batch);
  }
  agent.Skipped();  // waits for the device
  return updates / absl::ToDoubleSeconds(absl::Now() - start);
}

// Batches/s that `source` delivers, decoded into tensors, with no update
// between them.
double BatchesPerSecond(BatchSource* source, int batches) {
  const absl::Time start = absl::Now();
  for (int i = 0; i < batches; ++i) {
    if (absl::StatusOr<TransitionTensors> batch =
            source->Next(absl::Seconds(30));
        !batch.ok()) {
      std::cerr << "sampling: " << batch.status() << std::endl;
      return 0;
    }
  }
  return batches / absl::ToDoubleSeconds(absl::Now() - start);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> StartShard(
    const std::string& binary, std::string* address) {
  return StartListening({binary, "--port=0", "--capacity=1000000"},
                        "replay_server listening on", absl::Seconds(30),
                        address);
}

int Run(const char* argv0) {
  std::string binary = absl::GetFlag(FLAGS_replay_server);
  if (binary.empty())
    binary = std::string(argv0) + ".runfiles/softq/replay/replay_server";
  std::cout << ConfigureTorchThreads(1) << "\n";
  absl::StatusOr<torch::Device> device =
      ChooseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) {
    std::cerr << device.status().message() << std::endl;
    return 2;
  }
  const int od = absl::GetFlag(FLAGS_observation_dim);
  const int ad = absl::GetFlag(FLAGS_action_dim);
  const int batch_size = absl::GetFlag(FLAGS_batch_size);
  const double seconds = absl::GetFlag(FLAGS_seconds);

  // Actor: alone vs streaming to one shard.
  DiscardSink discard;
  const double alone = ActorStepsPerSecond(&discard, seconds);
  std::string address;
  absl::StatusOr<std::unique_ptr<ChildProcess>> shard =
      StartShard(binary, &address);
  if (!shard.ok()) {
    std::cerr << shard.status() << std::endl;
    return 1;
  }
  ReplayClientOptions options;
  options.addresses = {address};
  std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(options);
  ReplaySink sink(writer.get());
  const double streaming = ActorStepsPerSecond(&sink, seconds);
  writer->Flush(absl::Seconds(10)).IgnoreError();
  writer.reset();
  (*shard)->Signal(SIGTERM).IgnoreError();
  (*shard)->Wait(absl::Seconds(10)).IgnoreError();

  // Learner: in-process table vs the shards, both holding the same 20000
  // transitions.
  const int updates = absl::GetFlag(FLAGS_updates);
  ShardOptions local_options;
  local_options.observation_dim = od;
  local_options.action_dim = ad;
  local_options.rate_limiter.min_size_to_sample = 100;
  local_options.seed = 1;
  std::unique_ptr<ShardReplay> local =
      *ShardReplay::Create(local_options, batch_size);
  for (int i = 0; i < 20; ++i)
    local->Write(RandomBatch(1000, od, ad)).IgnoreError();
  const double from_local = UpdatesPerSecond(local.get(), updates, *device);
  const double local_batches =
      BatchesPerSecond(local.get(), absl::GetFlag(FLAGS_batches));
  std::vector<std::unique_ptr<ChildProcess>> shards;
  options.addresses.clear();
  const int shard_count = absl::GetFlag(FLAGS_shards);
  for (int i = 0; i < shard_count; ++i) {
    absl::StatusOr<std::unique_ptr<ChildProcess>> s =
        StartShard(binary, &address);
    if (!s.ok()) {
      std::cerr << s.status() << std::endl;
      return 1;
    }
    shards.push_back(*std::move(s));
    options.addresses.push_back(address);
  }
  {
    std::unique_ptr<ReplayWriter> fill = *ReplayWriter::Create(options);
    for (int i = 0; i < 20; ++i)
      fill->Insert(RandomBatch(1000, od, ad)).IgnoreError();
    fill->Flush(absl::Seconds(30)).IgnoreError();
  }
  std::unique_ptr<ReplaySampler> sampler = *ReplaySampler::Create(
      options, batch_size, absl::GetFlag(FLAGS_prefetch));
  ReplayBatchSource remote(sampler.get(), device->is_cuda());
  const double from_shards = UpdatesPerSecond(&remote, updates, *device);
  const double shard_batches =
      BatchesPerSecond(&remote, absl::GetFlag(FLAGS_batches));
  sampler.reset();
  for (auto& s : shards) {
    s->Signal(SIGTERM).IgnoreError();
    s->Wait(absl::Seconds(10)).IgnoreError();
  }

  std::cout << absl::StrFormat("\n%-72s %12s %12s %7s\n", "measurement",
                               "baseline", "distributed", "ratio");
  std::cout << absl::StrFormat(
      "%-72s %12.0f %12.0f %6.2fx\n",
      absl::StrFormat("actor env steps/s (%d envs): alone vs -> 1 shard",
                      absl::GetFlag(FLAGS_num_envs)),
      alone, streaming, streaming / alone);
  std::cout << absl::StrFormat(
      "%-72s %12.1f %12.1f %6.2fx\n",
      absl::StrFormat("learner updates/s (%s, batch %d, obs %d act %d): "
                      "local table vs %d shards",
                      device->str(), batch_size, od, ad, shard_count),
      from_local, from_shards, from_shards / from_local);
  std::cout << absl::StrFormat(
      "%-72s %12.0f %12.0f %6.2fx\n",
      absl::StrFormat("learner batches/s, no update: local table vs %d shards",
                      shard_count),
      local_batches, shard_batches, shard_batches / local_batches);
  return 0;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) {
  softq::RestartWithOpenBlasKernelsForThisCpu(argv);
  if (auto code = softq::ParseFlags(
          argc, argv, "actor and learner: local vs over the network");
      code) {
    return *code;
  }
  return softq::Run(argv[0]);
}
