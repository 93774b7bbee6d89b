// Actor: steps several environments in lockstep with one batched policy forward
// per step and writes each step's transitions to a TransitionSink. The same
// class runs inside the single-process trainer (sink = in-memory replay) and in
// the actor binary (sink = replay service over gRPC): it does not know which.
// Not thread-safe: one thread calls Step().
#ifndef SOFTQ_ACTOR_ACTOR_H_
#define SOFTQ_ACTOR_ACTOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "env/environment.h"
#include "policy/acting_policy.h"
#include "proto/transition.pb.h"

namespace softq {

// Where an actor's transitions go. Write may block (back-pressure).
class TransitionSink {
 public:
  virtual ~TransitionSink() = default;
  virtual absl::Status Write(proto::TransitionBatch batch) = 0;
};

struct ActorOptions {
  uint32_t actor_id = 0;
  // Steps gathered into one TransitionBatch before Write (fewer, larger
  // messages).
  int steps_per_write = 1;
};

class Actor {
 public:
  // `envs` must be non-empty and share one spec; `policy` and `sink` outlive
  // the actor.
  Actor(std::vector<std::unique_ptr<Environment>> envs, ActingPolicy* policy,
        TransitionSink* sink, ActorOptions options);

  // One step of every environment; resets those whose episode ended. Returns
  // the sink's or an environment's error.
  absl::Status Step();
  // Writes transitions gathered but not yet written.
  absl::Status Flush();

  int64_t env_steps() const { return env_steps_; }
  int64_t episodes() const { return episodes_; }
  // Returns of the episodes finished since the last call.
  std::vector<double> TakeEpisodeReturns();

 private:
  std::vector<std::unique_ptr<Environment>> envs_;
  ActingPolicy* policy_;
  TransitionSink* sink_;
  ActorOptions options_;
  EnvSpec spec_;
  std::vector<float>
      observations_;             // [N, O], the current observation of each env
  std::vector<double> returns_;  // running return of each env's episode
  std::vector<uint64_t> episode_ids_;
  std::vector<uint32_t> step_ids_;
  std::vector<double> finished_returns_;
  proto::TransitionBatch pending_;
  int pending_steps_ = 0;
  uint64_t next_episode_id_ = 0;
  int64_t env_steps_ = 0;
  int64_t episodes_ = 0;
};

}  // namespace softq

#endif  // SOFTQ_ACTOR_ACTOR_H_
