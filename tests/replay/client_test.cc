// The client library against real shard processes: spreading, sampling in
// proportion to shard sizes, failover, and errors that name the shard.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "replay/replay_channel.h"
#include "replay/replay_sampler.h"
#include "replay/replay_stats.h"
#include "replay/replay_writer.h"
#include "tests/replay/server_fixture.h"
#include "tests/support/child_process.h"

namespace softq {
namespace {

using testing::CheckedId;
using testing::MakeBatch;
using testing::ServerProcess;
using testing::StartServer;

// Waits until every thread of `pid` is stopped (SIGSTOP is delivered
// asynchronously).
bool WaitUntilStopped(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    bool all = true;
    for (const auto& entry : std::filesystem::directory_iterator(
             absl::StrCat("/proc/", pid, "/task"))) {
      std::ifstream stat(entry.path() / "stat");
      std::string line;
      std::getline(stat, line);
      const size_t paren = line.rfind(')');
      const char state = paren != std::string::npos && paren + 2 < line.size()
                             ? line[paren + 2]
                             : '?';
      if (state != 't' && state != 'T') {
        all = false;
      }
    }
    if (all) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST(ReplayClient, RoundTripAcrossThreeShardsAgreesWithTheirStats) {
  std::vector<ServerProcess> servers;
  ReplayClientOptions options;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<ServerProcess> s =
        StartServer({"--capacity=1000", absl::StrCat("--shard_id=", i)});
    ASSERT_TRUE(s.ok()) << s.status();
    options.addresses.push_back(s->address);
    servers.push_back(*std::move(s));
  }
  // Room for every batch: no shard is skipped for back-pressure, so batch b
  // goes to shard b % 3 -- unless a shard's stream is not connected yet when
  // its turn comes (a slow start under load or a sanitizer), and the writer
  // routes the batch to a live shard instead. Totals are exact either way.
  options.max_in_flight_batches = 64;
  absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
      ReplayWriter::Create(options);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int b = 0; b < 30; ++b) {
    ASSERT_TRUE((*writer)
                    ->Insert(MakeBatch(10, 10 * b, 2, 2, /*actor_id=*/b % 5))
                    .ok());
  }
  ASSERT_TRUE((*writer)->Flush(absl::Seconds(20)).ok());
  EXPECT_EQ((*writer)->acknowledged(), 300u);

  absl::StatusOr<std::vector<proto::ShardStats>> stats =
      QueryStats(options.addresses, absl::Seconds(5));
  ASSERT_TRUE(stats.ok()) << stats.status();
  std::map<uint32_t, uint64_t> per_actor;
  uint64_t total = 0;
  for (const proto::ShardStats& s : *stats) {
    EXPECT_EQ(s.size() % 10, 0u);  // whole batches only
    total += s.size();
    for (const proto::ActorCount& a : s.per_actor())
      per_actor[a.actor_id()] += a.inserted();
  }
  EXPECT_EQ(total, 300u);
  EXPECT_EQ(per_actor.size(), 5u);
  for (const auto& [actor, n] : per_actor) EXPECT_EQ(n, 60u) << actor;

  absl::StatusOr<std::unique_ptr<ReplaySampler>> sampler =
      ReplaySampler::Create(options, /*batch_size=*/64);
  ASSERT_TRUE(sampler.ok()) << sampler.status();
  std::set<int> shards_seen;
  std::map<std::pair<int, uint64_t>, int>
      batch_at;  // (shard, key / 10) -> batch
  uint64_t sampled = 0;
  for (int round = 0; round < 5; ++round) {
    absl::StatusOr<SampledBatch> batch = (*sampler)->Next(absl::Seconds(20));
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->keys.size(), 64u);
    ASSERT_EQ(batch->size(), 64);
    EXPECT_EQ(batch->total_size, 300u);
    for (int i = 0; i < 64; ++i) {
      const int id = CheckedId(*batch, i);
      ASSERT_GE(id, 0);
      // Whole batches of 10 take 10 consecutive keys of their shard: the
      // shard and the key identify the item (whichever shard a batch went to).
      const int b = id / 10;
      EXPECT_EQ(batch->keys[i] % 10, static_cast<uint64_t>(id % 10));
      const auto [where, fresh] = batch_at.emplace(
          std::make_pair(batch->shard_index[i], batch->keys[i] / 10), b);
      EXPECT_EQ(where->second, b) << "shard " << batch->shard_index[i]
                                  << ", keys from " << batch->keys[i] / 10 * 10;
      EXPECT_NEAR(batch->probabilities[i], 1.0 / 300, 1e-12);
      shards_seen.insert(batch->shard_index[i]);
    }
    ASSERT_TRUE((*sampler)
                    ->UpdatePriorities(batch->keys, batch->shard_index,
                                       std::vector<float>(64, 2.0f))
                    .ok());
    sampled += 64;
  }
  EXPECT_EQ(shards_seen.size(), 3u);
  sampler->reset();  // joins the prefetcher
  stats = QueryStats(options.addresses, absl::Seconds(5));
  uint64_t samples_total = 0;
  for (const proto::ShardStats& s : *stats) samples_total += s.samples_total();
  EXPECT_GE(samples_total, sampled);  // plus what was prefetched
}

TEST(ReplayClient, SamplesShardsInProportionToTheirSizes) {
  absl::StatusOr<ServerProcess> small = StartServer({"--capacity=1000"});
  absl::StatusOr<ServerProcess> large = StartServer({"--capacity=1000"});
  ASSERT_TRUE(small.ok() && large.ok());
  ReplayClientOptions one;
  one.addresses = {small->address};
  {
    std::unique_ptr<ReplayWriter> w = *ReplayWriter::Create(one);
    ASSERT_TRUE(w->Insert(MakeBatch(100, 0)).ok());
    ASSERT_TRUE(w->Flush(absl::Seconds(10)).ok());
  }
  one.addresses = {large->address};
  {
    std::unique_ptr<ReplayWriter> w = *ReplayWriter::Create(one);
    ASSERT_TRUE(w->Insert(MakeBatch(300, 1000)).ok());
    ASSERT_TRUE(w->Flush(absl::Seconds(10)).ok());
  }
  ReplayClientOptions both;
  both.addresses = {small->address, large->address};
  std::unique_ptr<ReplaySampler> sampler = *ReplaySampler::Create(both, 200, 2);
  int from_large = 0, total = 0;
  for (int round = 0; round < 20; ++round) {
    absl::StatusOr<SampledBatch> batch = sampler->Next(absl::Seconds(20));
    ASSERT_TRUE(batch.ok()) << batch.status();
    EXPECT_EQ(batch->total_size, 400u);
    for (size_t i = 0; i < batch->keys.size(); ++i) {
      const int id = CheckedId(*batch, static_cast<int>(i));
      EXPECT_EQ(batch->shard_index[i], id >= 1000 ? 1 : 0);
      EXPECT_NEAR(batch->probabilities[i], 1.0 / 400,
                  1e-12);  // (size/400) * (1/size)
      from_large += batch->shard_index[i];
      ++total;
    }
  }
  // Binomial(4000, 0.75): standard deviation 27.
  EXPECT_NEAR(from_large, 0.75 * total, 150);
}

// Draws `batches` batches of 50 with the given sampler seed from two fresh
// shards started with --seed=7, holding transitions 0..99 and 1000..1299: the
// transition ids of every batch, in order.
std::vector<std::vector<int>> SeededDraws(std::optional<uint64_t> sample_seed,
                                          int batches) {
  std::vector<ServerProcess> shards;
  ReplayClientOptions options;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<ServerProcess> shard = StartServer(
        {"--capacity=1000", "--seed=7", absl::StrCat("--shard_id=", i)});
    EXPECT_TRUE(shard.ok()) << shard.status();
    if (!shard.ok()) return {};
    ReplayClientOptions one;
    one.addresses = {shard->address};
    std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(one);
    EXPECT_TRUE(writer->Insert(MakeBatch(i == 0 ? 100 : 300, 1000 * i)).ok());
    EXPECT_TRUE(writer->Flush(absl::Seconds(10)).ok());
    options.addresses.push_back(shard->address);
    shards.push_back(*std::move(shard));
  }
  options.sample_seed = sample_seed;
  options.sample_rounds_in_flight = 1;  // the shards draw in the order asked
  std::unique_ptr<ReplaySampler> sampler =
      *ReplaySampler::Create(options, /*batch_size=*/50, /*prefetch=*/2);
  std::vector<std::vector<int>> ids;
  for (int b = 0; b < batches; ++b) {
    absl::StatusOr<SampledBatch> batch = sampler->Next(absl::Seconds(20));
    EXPECT_TRUE(batch.ok()) << batch.status();
    if (!batch.ok()) return ids;
    ids.emplace_back();
    for (size_t i = 0; i < batch->keys.size(); ++i) {
      ids.back().push_back(CheckedId(*batch, static_cast<int>(i)));
    }
  }
  return ids;
}

TEST(ReplayClient, ASampleSeedRepeatsTheBatchesOfSeededShards) {
  const std::vector<std::vector<int>> first = SeededDraws(11, 10);
  ASSERT_EQ(first.size(), 10u);
  EXPECT_EQ(SeededDraws(11, 10), first);
  EXPECT_NE(SeededDraws(12, 10), first);  // the split moves with the seed
  EXPECT_NE(SeededDraws(std::nullopt, 10), first);  // unseeded: a random one
}

// A shard of capacity 100, full: transitions 0..99 (MakeBatch's, action_dim 2).
absl::StatusOr<ServerProcess> ShardHolding100(uint32_t observation_dim) {
  absl::StatusOr<ServerProcess> server = StartServer({"--capacity=100"});
  if (!server.ok()) return server.status();
  ReplayClientOptions options;
  options.addresses = {server->address};
  absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
      ReplayWriter::Create(options);
  if (!writer.ok()) return writer.status();
  absl::Status s = (*writer)->Insert(MakeBatch(100, 0, observation_dim, 2));
  if (s.ok()) s = (*writer)->Flush(absl::Seconds(10));
  if (!s.ok()) return s;
  return server;
}

TEST(ReplayClient, SamplerDealsARoundWiderThanAShardAcrossSeveralRpcs) {
  // Eight batches of 64 drawn ahead from a shard of capacity 100: the round's
  // 512 rows come back as RPCs of at most 100 (the largest batch the shard
  // accepts), and batches take rows across their boundaries. Every row stays
  // whole (its fields agree) and keeps its key, shard and probability.
  absl::StatusOr<ServerProcess> server = ShardHolding100(/*observation_dim=*/3);
  ASSERT_TRUE(server.ok()) << server.status();
  ReplayClientOptions options;
  options.addresses = {server->address};
  std::unique_ptr<ReplaySampler> sampler =
      *ReplaySampler::Create(options, 64, 8);
  for (int round = 0; round < 24; ++round) {
    absl::StatusOr<SampledBatch> batch = sampler->Next(absl::Seconds(20));
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->keys.size(), 64u);
    ASSERT_EQ(batch->size(), 64);
    ASSERT_EQ(batch->observation_dim, 3u);
    ASSERT_EQ(batch->action_dim, 2u);
    ASSERT_EQ(batch->rows.size(), 64u * (2 * 3 + 2 + 2));
    for (int i = 0; i < 64; ++i) {
      const int id = CheckedId(*batch, i);
      ASSERT_GE(id, 0) << "row " << i << " of batch " << round
                       << " mixes two transitions";
      EXPECT_EQ(batch->keys[i], static_cast<uint64_t>(id));
      EXPECT_EQ(batch->shard_index[i], 0);
      EXPECT_NEAR(batch->probabilities[i], 1.0 / 100, 1e-12);
    }
  }
}

TEST(ReplayClient, SampledRowsAreBitIdenticalToTheInsertedOnesAcrossTwoShards) {
  // Random transitions of observation 111 (with episode and step ids) in two
  // shards, 300 and 500 of them, each shard's by its own writer, so that the
  // shard index and the key name the row inserted (a fresh shard's keys count
  // from 0). Batches of 64, 16 prefetched in rounds overlapping: every
  // float of every row is the inserted one bit for bit, and so are its done,
  // ids, key, shard and probability (uniform: 1 / 800).
  constexpr uint32_t kObs = 111, kAct = 8;
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-1e5f, 1e5f);
  std::vector<ServerProcess> servers;
  std::vector<proto::TransitionBatch> inserted;
  ReplayClientOptions both;
  for (int shard = 0; shard < 2; ++shard) {
    absl::StatusOr<ServerProcess> s = StartServer({"--capacity=1000"});
    ASSERT_TRUE(s.ok()) << s.status();
    proto::TransitionBatch b;
    b.set_observation_dim(kObs);
    b.set_action_dim(kAct);
    for (int i = 0; i < (shard == 0 ? 300 : 500); ++i) {
      for (uint32_t j = 0; j < kObs; ++j) b.add_observations(u(gen));
      for (uint32_t j = 0; j < kAct; ++j) b.add_actions(u(gen) / 1e5f);
      b.add_rewards(u(gen));
      for (uint32_t j = 0; j < kObs; ++j) b.add_next_observations(u(gen));
      b.add_dones(gen() % 3 == 0);
      b.add_episode_ids(gen());
      b.add_step_ids(static_cast<uint32_t>(gen() % 1000));
    }
    ReplayClientOptions one;
    one.addresses = {s->address};
    std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(one);
    ASSERT_TRUE(writer->Insert(b).ok());
    ASSERT_TRUE(writer->Flush(absl::Seconds(20)).ok());
    inserted.push_back(b);
    both.addresses.push_back(s->address);
    servers.push_back(*std::move(s));
  }
  std::unique_ptr<ReplaySampler> sampler =
      *ReplaySampler::Create(both, /*batch_size=*/64, /*prefetch=*/16);
  const auto same = [](const float* a, const float* b, uint32_t n) {
    return std::memcmp(a, b, n * sizeof(float)) == 0;
  };
  int rows = 0;
  std::set<int> shards_seen;
  for (int k = 0; k < 40; ++k) {
    absl::StatusOr<SampledBatch> batch = sampler->Next(absl::Seconds(20));
    ASSERT_TRUE(batch.ok()) << batch.status();
    ASSERT_EQ(batch->size(), 64);
    ASSERT_EQ(batch->observation_dim, kObs);
    ASSERT_EQ(batch->action_dim, kAct);
    ASSERT_EQ(batch->rows.size(), 64u * (2 * kObs + kAct + 2));
    ASSERT_EQ(batch->episode_ids.size(), 64u);
    ASSERT_EQ(batch->step_ids.size(), 64u);
    EXPECT_EQ(batch->total_size, 800u);
    for (int i = 0; i < 64; ++i, ++rows) {
      const int shard = batch->shard_index[i];
      ASSERT_TRUE(shard == 0 || shard == 1) << shard;
      shards_seen.insert(shard);
      const proto::TransitionBatch& b = inserted[shard];
      const uint64_t key = batch->keys[i];
      ASSERT_LT(key, static_cast<uint64_t>(b.rewards_size())) << shard;
      const int r = static_cast<int>(key);
      EXPECT_TRUE(
          same(batch->observation(i), b.observations().data() + r * kObs, kObs))
          << "shard " << shard << " key " << key;
      EXPECT_TRUE(same(batch->action(i), b.actions().data() + r * kAct, kAct))
          << "shard " << shard << " key " << key;
      const float reward = batch->reward(i);
      EXPECT_TRUE(same(&reward, b.rewards().data() + r, 1))
          << "shard " << shard << " key " << key;
      EXPECT_TRUE(same(batch->next_observation(i),
                       b.next_observations().data() + r * kObs, kObs))
          << "shard " << shard << " key " << key;
      EXPECT_EQ(batch->done(i), b.dones(r));
      EXPECT_EQ(batch->episode_ids[i], b.episode_ids(r));
      EXPECT_EQ(batch->step_ids[i], b.step_ids(r));
      EXPECT_NEAR(batch->probabilities[i], 1.0 / 800, 1e-12);
    }
  }
  EXPECT_EQ(rows, 40 * 64);
  EXPECT_EQ(shards_seen.size(), 2u);
}

TEST(ReplayClient, SamplerReportsABatchWiderThanTheShardsCapacity) {
  absl::StatusOr<ServerProcess> server = ShardHolding100(/*observation_dim=*/2);
  ASSERT_TRUE(server.ok()) << server.status();
  ReplayClientOptions options;
  options.addresses = {server->address};
  std::unique_ptr<ReplaySampler> sampler =
      *ReplaySampler::Create(options, 101, 2);
  absl::StatusOr<SampledBatch> batch = sampler->Next(absl::Seconds(20));
  ASSERT_TRUE(absl::IsInvalidArgument(batch.status())) << batch.status();
  EXPECT_THAT(std::string(batch.status().message()),
              ::testing::HasSubstr("batch_size is 101"));
}

TEST(ReplayClient, InsertBlocksOnBackPressureAndGivesUpAtItsTimeout) {
  absl::StatusOr<ServerProcess> a = StartServer({});
  ASSERT_TRUE(a.ok());
  ReplayClientOptions options;
  options.addresses = {a->address};
  options.max_in_flight_batches = 2;
  options.coalesce_bytes = 0;
  options.rpc_timeout = absl::Milliseconds(500);
  std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(options);
  ASSERT_TRUE(writer->Insert(MakeBatch(1, 0)).ok());
  ASSERT_TRUE(writer->Flush(absl::Seconds(10)).ok());
  ASSERT_TRUE(a->process->Signal(SIGSTOP).ok());  // alive but not acknowledging
  ASSERT_TRUE(WaitUntilStopped(a->process->pid()));
  ASSERT_TRUE(writer->Insert(MakeBatch(1, 1)).ok());
  ASSERT_TRUE(writer->Insert(MakeBatch(1, 2)).ok());
  const absl::Time start = absl::Now();
  const absl::Status blocked = writer->Insert(MakeBatch(1, 3));
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(absl::IsDeadlineExceeded(blocked)) << blocked;
  EXPECT_NE(blocked.message().find("back-pressure"), std::string::npos)
      << blocked;
  // At its timeout: absl's timed wait may wake a fraction of a millisecond
  // before the deadline (499.6 ms seen under TSan), so allow 5 ms.
  EXPECT_GE(took, absl::Milliseconds(495));
  EXPECT_LT(took, absl::Seconds(3));
  ASSERT_TRUE(a->process->Signal(SIGCONT).ok());
  ASSERT_TRUE(writer->Flush(absl::Seconds(10)).ok());
  EXPECT_EQ(writer->acknowledged(), 3u);
  EXPECT_TRUE(writer->Insert(MakeBatch(1, 3)).ok());
}

TEST(ReplayClient, TheWindowCountsBatchesEvenWhenTheyTravelCoalesced) {
  // A shard that holds inserts back (here frozen; in a run, its rate limiter
  // once the learner stops sampling) must stop an actor after
  // max_in_flight_batches batches, even though later small batches could join a
  // queued, unsent message: otherwise the actor runs ahead and its data is
  // stale by the time it is stored.
  absl::StatusOr<ServerProcess> a = StartServer({"--capacity=100000"});
  ASSERT_TRUE(a.ok());
  ReplayClientOptions options;
  options.addresses = {a->address};
  options.max_in_flight_batches = 2;
  options.rpc_timeout = absl::Milliseconds(300);  // coalescing on (the default)
  std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(options);
  ASSERT_TRUE(writer->Insert(MakeBatch(1, 0)).ok());
  ASSERT_TRUE(writer->Flush(absl::Seconds(10)).ok());
  ASSERT_TRUE(a->process->Signal(SIGSTOP).ok());
  ASSERT_TRUE(WaitUntilStopped(a->process->pid()));
  // ~100 KB, more than the stream's flow-control window: its write waits, so
  // the next message stays queued and unsent, where small batches could join
  // it.
  ASSERT_TRUE(writer->Insert(MakeBatch(3200, 1)).ok());
  ASSERT_TRUE(writer->Insert(MakeBatch(1, 3201)).ok());
  int accepted = 0;
  absl::Status s;
  for (int i = 0; i < 20 && s.ok(); ++i) {
    s = writer->Insert(MakeBatch(1, 3202 + i));
    if (s.ok()) ++accepted;
  }
  EXPECT_EQ(accepted, 0) << "batches taken beyond the window of 2";
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(writer->pending_batches(), 2u);
  ASSERT_TRUE(a->process->Signal(SIGCONT).ok());
  ASSERT_TRUE(writer->Flush(absl::Seconds(10)).ok());
  EXPECT_EQ(writer->acknowledged(), 1u + 3200u + 1u + accepted);
}

// Two shards take batches 0 and 1; then one is frozen (SIGSTOP), 18 more
// batches are inserted and, if `then_killed`, it is killed. The writer re-sends
// what the frozen shard did not acknowledge: every batch but its first ends on
// the live shard.
void ExpectResentFromAFrozenShard(bool then_killed) {
  absl::StatusOr<ServerProcess> live = StartServer({"--capacity=1000"});
  absl::StatusOr<ServerProcess> frozen = StartServer({"--capacity=1000"});
  ASSERT_TRUE(live.ok() && frozen.ok());
  ReplayClientOptions options;
  options.addresses = {live->address, frozen->address};
  options.rpc_timeout = absl::Seconds(5);
  options.keepalive = absl::Seconds(1);
  std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(options);
  ASSERT_TRUE(writer->Insert(MakeBatch(10, 0)).ok());
  ASSERT_TRUE(writer->Insert(MakeBatch(10, 10)).ok());
  ASSERT_TRUE(writer->Flush(absl::Seconds(10)).ok());
  ASSERT_TRUE(frozen->process->Signal(SIGSTOP).ok());
  ASSERT_TRUE(WaitUntilStopped(frozen->process->pid()));
  for (int b = 2; b < 20; ++b) {
    ASSERT_TRUE(writer->Insert(MakeBatch(10, 10 * b)).ok());
  }
  if (then_killed) {
    EXPECT_GT(writer->pending_batches(), 0u);
    frozen->process.reset();  // SIGKILL
  }
  const absl::Status flushed = writer->Flush(absl::Seconds(20));
  ASSERT_TRUE(flushed.ok()) << flushed;
  EXPECT_EQ(writer->acknowledged(), 200u);
  EXPECT_GT(writer->resent_batches(), 0u);
  EXPECT_EQ(testing::Stats(live->stub.get())->size(), 190u);
  if (!then_killed) {
    ASSERT_TRUE(frozen->process->Signal(SIGCONT).ok());
  }
}

TEST(ReplayClient, WriterResendsToALiveShardWhenOneIsGone) {
  ExpectResentFromAFrozenShard(/*then_killed=*/true);
}

TEST(ReplayClient, WriterResendsFromAShardThatStopsAnsweringButStaysUp) {
  // Never killed, its connection stays open: only keepalive pings go
  // unanswered.
  ExpectResentFromAFrozenShard(/*then_killed=*/false);
}

TEST(ReplayClient, CreateRefusesAKeepaliveUnderASecond) {
  ReplayClientOptions options;
  options.addresses = {"127.0.0.1:1"};
  options.keepalive = absl::Milliseconds(100);
  const absl::Status s = ReplayWriter::Create(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("ReplayClientOptions.keepalive"),
            std::string::npos)
      << s;
}

TEST(ReplayClient, SamplerSkipsAShardThatIsDown) {
  absl::StatusOr<ServerProcess> a = StartServer({"--capacity=100"});
  absl::StatusOr<ServerProcess> b = StartServer({"--capacity=100"});
  ASSERT_TRUE(a.ok() && b.ok());
  ReplayClientOptions options;
  options.addresses = {a->address, b->address};
  options.rpc_timeout = absl::Seconds(3);
  {
    absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
        ReplayWriter::Create(options);
    for (int i = 0; i < 4; ++i)
      ASSERT_TRUE((*writer)->Insert(MakeBatch(10, 10 * i)).ok());
    ASSERT_TRUE((*writer)->Flush(absl::Seconds(10)).ok());
  }
  b->process.reset();
  absl::StatusOr<std::unique_ptr<ReplaySampler>> sampler =
      ReplaySampler::Create(options, 16, 1);
  ASSERT_TRUE(sampler.ok());
  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<SampledBatch> batch = (*sampler)->Next(absl::Seconds(20));
    ASSERT_TRUE(batch.ok()) << batch.status();
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(batch->shard_index[i], 0);
      EXPECT_NEAR(batch->probabilities[i], 1.0 / 20, 1e-12);
    }
  }
}

TEST(ReplayClient, SamplerGoesOnWithTheOtherShardsWhileOneIsRateLimited) {
  // Shard 0 allows about one sample per insert; shard 1 has no ratio.
  absl::StatusOr<ServerProcess> limited = StartServer(
      {"--capacity=100", "--samples_per_insert=1", "--error_buffer=1"});
  absl::StatusOr<ServerProcess> unlimited = StartServer({"--capacity=100"});
  ASSERT_TRUE(limited.ok() && unlimited.ok());
  ReplayClientOptions options;
  options.addresses = {limited->address, unlimited->address};
  {
    std::unique_ptr<ReplayWriter> writer = *ReplayWriter::Create(options);
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(writer->Insert(MakeBatch(10, 10 * i)).ok());
    }
    ASSERT_TRUE(writer->Flush(absl::Seconds(10)).ok());
  }
  std::unique_ptr<ReplaySampler> sampler =
      *ReplaySampler::Create(options, 32, 1);
  // 192 rows; shard 0 holds 10 and allows one Sample call (whatever its rows)
  // while its sampled count is within its inserts.
  int from_unlimited = 0;
  for (int round = 0; round < 6; ++round) {
    absl::StatusOr<SampledBatch> batch = sampler->Next(absl::Seconds(20));
    ASSERT_TRUE(batch.ok()) << "round " << round << ": " << batch.status();
    for (int index : batch->shard_index) from_unlimited += index;
  }
  const uint64_t from_limited =
      testing::Stats(limited->stub.get())->samples_total();
  EXPECT_LE(from_limited, 10u + 32u);
  EXPECT_EQ(from_unlimited + from_limited, 192u);
}

TEST(ReplayClient, InsertEndsWithUnavailableNamingTheShardWhenNoneAnswers) {
  ReplayClientOptions options;
  const std::string address = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
  options.addresses = {address};
  options.rpc_timeout = absl::Seconds(1);
  options.max_in_flight_batches = 1;
  absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
      ReplayWriter::Create(options);
  ASSERT_TRUE(writer.ok());
  const absl::Time start = absl::Now();
  absl::Status s;
  // The first batches may be queued (and coalesced) before the shard is found
  // dead.
  for (int i = 0; i < 10000 && s.ok(); ++i)
    s = (*writer)->Insert(MakeBatch(1, i));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_NE(s.message().find(address), std::string::npos) << s;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // No shard to wait for: Flush does not wait out its timeout.
  const absl::Time flushed = absl::Now();
  EXPECT_TRUE(absl::IsUnavailable((*writer)->Flush(absl::Seconds(30))));
  EXPECT_LT(absl::Now() - flushed, absl::Seconds(10));
}

TEST(ReplayClient, QueryStatsNamesTheShardThatDoesNotAnswer) {
  absl::StatusOr<ServerProcess> a = StartServer({});
  ASSERT_TRUE(a.ok());
  const std::string dead = absl::StrCat("127.0.0.1:", UnusedLoopbackPort());
  absl::StatusOr<std::vector<proto::ShardStats>> stats =
      QueryStats({a->address, dead}, absl::Seconds(2));
  EXPECT_TRUE(absl::IsUnavailable(stats.status())) << stats.status();
  EXPECT_NE(stats.status().message().find("addresses[1] (" + dead + ")"),
            std::string::npos)
      << stats.status();
}

TEST(ReplayClient, WriterReportsABatchTheShardRejected) {
  absl::StatusOr<ServerProcess> a =
      StartServer({"--observation_dim=2", "--action_dim=2"});
  ASSERT_TRUE(a.ok());
  ReplayClientOptions options;
  options.addresses = {a->address};
  absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
      ReplayWriter::Create(options);
  ASSERT_TRUE((*writer)->Insert(MakeBatch(3, 0, 4, 2)).ok());
  const absl::Status s = (*writer)->Flush(absl::Seconds(10));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_NE(s.message().find("observation_dim"), std::string::npos) << s;
  EXPECT_TRUE((*writer)->Flush(absl::Seconds(1)).ok());  // reported once
}

TEST(ReplayClient, CreateRejectsBadOptionsNamingTheField) {
  ReplayClientOptions options;
  EXPECT_NE(ReplayWriter::Create(options).status().message().find("addresses"),
            std::string::npos);
  options.addresses = {"127.0.0.1:1", "nohost"};
  EXPECT_NE(
      ReplayWriter::Create(options).status().message().find("addresses[1]"),
      std::string::npos);
  options.addresses = {"127.0.0.1:1"};
  EXPECT_TRUE(
      absl::IsInvalidArgument(ReplaySampler::Create(options, 0).status()));
}

}  // namespace
}  // namespace softq
