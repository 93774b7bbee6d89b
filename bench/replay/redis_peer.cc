// The Redis peer of replay_bench: the same transitions in redis-server, a
// value per transition, MSET and MGET per batch, pipelined as deep as the
// client library's window.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/replay/bench_support.h"
#include "replay/replay_sampler.h"
#include "replay/sampled_batch.h"

namespace softq {
namespace replay_bench {

Redis::Redis(int port) { c_ = redisConnect("127.0.0.1", port); }

Redis::~Redis() {
  if (c_ != nullptr) redisFree(c_);
}

// Each transition is one Redis value (its row: observation, action, reward,
// next observation, done byte) under key "t<slot>", slot = index % capacity,
// as a shard's ring holds it. Keys and values are made before the clock
// starts; one MSET per batch, pipelined --max_in_flight deep (the writer's
// window) on one connection.
double InsertRedis(Redis* redis, uint32_t od, uint32_t ad, uint64_t total,
                   const std::vector<std::string>& keys) {
  const uint32_t n = absl::GetFlag(FLAGS_insert_batch);
  const int depth = std::max(1, absl::GetFlag(FLAGS_max_in_flight));
  const uint64_t item = RawBytes(od, ad);
  std::vector<proto::InsertRequest> requests = Requests(od, ad, n);
  std::vector<std::string> values(requests.size(), std::string(n * item, 0));
  for (size_t r = 0; r < requests.size(); ++r) {
    const proto::TransitionBatch& b = requests[r].batch();
    for (uint32_t t = 0; t < n; ++t) {
      char* p = values[r].data() + t * item;
      std::memcpy(p, b.observations().data() + t * od, od * 4);
      p += od * 4;
      std::memcpy(p, b.actions().data() + t * ad, ad * 4);
      p += ad * 4;
      std::memcpy(p, b.rewards().data() + t, 4);
      p += 4;
      std::memcpy(p, b.next_observations().data() + t * od, od * 4);
      p += od * 4;
      *p++ = b.dones(t) ? 1 : 0;
      const uint64_t episode = b.episode_ids(t);
      const uint32_t step = b.step_ids(t);
      std::memcpy(p, &episode, 8);
      std::memcpy(p + 8, &step, 4);
    }
  }
  std::vector<const char*> argv(2 * n + 1);
  std::vector<size_t> lengths(2 * n + 1);
  argv[0] = "MSET";
  lengths[0] = 4;
  const uint64_t batches = (total + n - 1) / n;
  uint64_t key = 0;
  auto append = [&](uint64_t i) {
    const std::string& v = values[i % values.size()];
    for (uint32_t t = 0; t < n; ++t, ++key) {
      const std::string& k = keys[key % keys.size()];
      argv[1 + 2 * t] = k.data();
      lengths[1 + 2 * t] = k.size();
      argv[2 + 2 * t] = v.data() + t * item;
      lengths[2 + 2 * t] = item;
    }
    redisAppendCommandArgv(redis->get(), static_cast<int>(argv.size()),
                           argv.data(), lengths.data());
  };
  const absl::Time start = absl::Now();
  uint64_t appended = 0;
  for (; appended < std::min<uint64_t>(depth, batches); ++appended) {
    append(appended);
  }
  for (uint64_t done = 0; done < batches; ++done) {
    void* reply = nullptr;
    if (redisGetReply(redis->get(), &reply) != REDIS_OK) return 0;
    freeReplyObject(reply);
    if (appended < batches) append(appended++);
  }
  return batches * n / absl::ToDoubleSeconds(absl::Now() - start);
}

// Random transitions, one MGET of --sample_batch keys per batch (the key
// lists drawn before the clock starts), pipelined as deep as ReplaySampler's
// batches in flight, each reply decoded into the packed rows of a
// SampledBatch as the sampler's answers are.
double SampleRedis(Redis* redis, uint32_t od, uint32_t ad, uint64_t held,
                   const std::vector<std::string>& keys) {
  const uint32_t n = absl::GetFlag(FLAGS_sample_batch);
  const int rounds = absl::GetFlag(FLAGS_sample_rounds);
  const int depth = rounds * SampleRoundBatches(n, kPrefetch, rounds, od, ad);
  std::mt19937_64 gen(3);
  std::uniform_int_distribution<uint64_t> pick(0, held - 1);
  std::vector<std::vector<const char*>> argv(64);
  std::vector<std::vector<size_t>> lengths(64);
  for (size_t m = 0; m < argv.size(); ++m) {
    argv[m].push_back("MGET");
    lengths[m].push_back(4);
    for (uint32_t t = 0; t < n; ++t) {
      const std::string& k = keys[pick(gen)];
      argv[m].push_back(k.data());
      lengths[m].push_back(k.size());
    }
  }
  const uint64_t item = RawBytes(od, ad);
  uint64_t drawn = 0;
  uint64_t next = 0;
  auto append = [&]() {
    const size_t m = next++ % argv.size();
    redisAppendCommandArgv(redis->get(), static_cast<int>(argv[m].size()),
                           argv[m].data(), lengths[m].data());
  };
  const absl::Time start = absl::Now();
  const absl::Time end =
      start + absl::Seconds(absl::GetFlag(FLAGS_sample_seconds));
  for (int i = 0; i < depth; ++i) append();
  for (int pending = depth; pending > 0; --pending) {
    void* r = nullptr;
    if (redisGetReply(redis->get(), &r) != REDIS_OK) return 0;
    redisReply* reply = static_cast<redisReply*>(r);
    SampledBatch batch;
    batch.observation_dim = od;
    batch.action_dim = ad;
    batch.rows.resize(static_cast<size_t>(n) * batch.width());
    batch.episode_ids.resize(n);
    batch.step_ids.resize(n);
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == n) {
      for (uint32_t t = 0; t < n; ++t) {
        const redisReply* v = reply->element[t];
        if (v->type != REDIS_REPLY_STRING || v->len != item) continue;
        float* row = batch.rows.data() + t * batch.width();
        const char* done = v->str + item - kIdBytes - 1;
        std::memcpy(row, v->str, done - v->str);
        row[batch.width() - 1] = *done != 0 ? 1.0f : 0.0f;
        std::memcpy(&batch.episode_ids[t], done + 1, 8);
        std::memcpy(&batch.step_ids[t], done + 9, 4);
        ++drawn;
      }
    }
    freeReplyObject(reply);
    if (absl::Now() < end) {
      append();
      ++pending;
    }
  }
  return drawn / absl::ToDoubleSeconds(absl::Now() - start);
}

}  // namespace replay_bench
}  // namespace softq
