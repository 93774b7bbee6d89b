// replay_server: one replay shard served over gRPC (see replay/service.h).
//
//   replay_server --port=0 --capacity=1000000 --sampler=prioritized
//   --checkpoint_dir=/tmp/ck
//
// Prints exactly one line "replay_server listening on <host>:<port>" on stdout
// once serving. SIGTERM/SIGINT: stops accepting, ends blocked calls, writes the
// checkpoint when --checkpoint_dir is set, exits 0. With --checkpoint_dir (and
// --wal, the default) every insert is in the insert log before it is
// acknowledged: kill -9 loses nothing acknowledged (see replay/insert_log.h). A
// bad flag, or a --checkpoint_dir no file can be created in: one line, exit 2.
// A checkpoint that cannot be restored, or a port that cannot be bound: one
// line, exit 1. With --tls_ca, --tls_cert, --tls_key and --auth_token_file
// (common/security_flags.h) every call (health and reflection included) needs
// the job's client certificate and token, and /metrics the token.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/flags.h"
#include "common/grpc_security.h"
#include "common/malloc_policy.h"
#include "common/metrics.h"
#include "common/security_flags.h"
#include "common/shutdown.h"
#include "common/transition_check.h"
#include "replay/replay_channel.h"
#include "replay/service.h"
#include "replay/shard.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int32_t, port, 0, "port to listen on; 0 picks a free one (printed)");
ABSL_FLAG(std::string, shard_id, "0",
          "name of this shard (stats, checkpoint file name)");
ABSL_FLAG(uint64_t, capacity, 1000000,
          "transitions the shard holds (FIFO beyond)");
ABSL_FLAG(uint32_t, observation_dim, 0,
          "floats per observation; 0: set by the first insert");
ABSL_FLAG(uint32_t, action_dim, 0,
          "floats per action; 0: set by the first insert");
ABSL_FLAG(std::string, sampler, "uniform", "uniform or prioritized");
ABSL_FLAG(double, priority_exponent, 0.6,
          "alpha of prioritized sampling, in [0, 1]");
ABSL_FLAG(uint64_t, min_size_to_sample, 1,
          "transitions held before any sample");
ABSL_FLAG(double, samples_per_insert, 0,
          "target sampled/inserted ratio; 0: no ratio limit");
ABSL_FLAG(double, error_buffer, 0,
          "allowed deviation from the ratio, in samples");
ABSL_FLAG(std::string, checkpoint_dir, "",
          "directory for the shard's checkpoint and insert log: restored at "
          "start (checkpoint, then the inserts logged after it), checkpoint "
          "written on SIGTERM and on the Checkpoint RPC");
ABSL_FLAG(bool, wal, true,
          "with --checkpoint_dir: write each insert to the insert log before "
          "acknowledging it, so acknowledged inserts survive kill -9 of the "
          "process (false: only checkpoints persist)");
ABSL_FLAG(bool, wal_fsync, false,
          "fdatasync the insert log before each acknowledgement: survives a "
          "machine crash or power loss too, at one disk flush per batch "
          "(without it: survives the process's death, not the machine's)");
ABSL_FLAG(uint64_t, wal_max_bytes, uint64_t{1} << 30,
          "when the insert log grows past this many bytes, write a checkpoint "
          "(which empties it); 0: only on SIGTERM and the Checkpoint RPC");
ABSL_FLAG(uint64_t, seed, 0,
          "seed of the sampling draws, mixed with --shard_id (0: random); "
          "equal seeds and equal inserts give equal samples");
ABSL_FLAG(std::string, metrics_host, "",
          "address /metrics listens on (e.g. a monitoring network's); empty: "
          "--host's");
ABSL_FLAG(int32_t, metrics_port, -1,
          "Prometheus /metrics port (0: any free, -1: off)");
ABSL_FLAG(double, max_abs_observation, softq::kDefaultMaxAbsObservation,
          "largest magnitude of an observation value (observations and "
          "next_observations) the shard stores: a batch holding a larger one, "
          "finite or not, is refused whole with INVALID_ARGUMENT naming the "
          "field and index (poison); at most 3.4e38");
ABSL_FLAG(double, max_abs_reward, softq::kDefaultMaxAbsReward,
          "largest magnitude of a reward the shard stores, as "
          "--max_abs_observation");
ABSL_FLAG(uint64_t, max_tracked_actors, softq::kDefaultTrackedActors,
          "actor ids whose inserts the stats count one by one (the first "
          "seen); later ids are counted together as other actors. At most "
          "1048576 (what a checkpoint holds)");
ABSL_FLAG(int32_t, max_insert_streams,
          softq::ServiceLimits().max_insert_streams,
          "Insert streams served at once (each holds 2 threads); one more is "
          "refused at once with RESOURCE_EXHAUSTED 'replay shard busy', which "
          "clients retry later");
ABSL_FLAG(int32_t, max_waiting_calls, softq::ServiceLimits().max_waiting_calls,
          "Sample and Checkpoint calls in progress at once (each holds a "
          "thread while it waits on the rate limiter or a checkpoint); one "
          "more is refused as --max_insert_streams");
ABSL_FLAG(int32_t, max_message_bytes, softq::kDefaultMaxMessageBytes,
          "largest gRPC message accepted or sent");

namespace softq {
namespace {

// The id names the shard's files: letters, digits, '_', '.', '-', up to 64.
absl::Status CheckShardId(const std::string& id) {
  const bool ok =
      !id.empty() && id.size() <= 64 && id != "." && id != ".." &&
      std::all_of(id.begin(), id.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-';
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--shard_id=", id,
                   ": expected 1 to 64 of A-Z a-z 0-9 _ . - (it names the "
                   "shard's files)"));
}

// OK when a file can be created in `dir`: one is made and removed.
absl::Status CheckWritable(const std::string& dir) {
  std::string probe = absl::StrCat(dir, "/.replay_server_write_check.XXXXXX");
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--checkpoint_dir=", dir,
                     ": cannot create a file in it: ", std::strerror(errno)));
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return absl::OkStatus();
}

// A magnitude bound flag: > 0 and a float (the values it bounds are floats).
absl::Status CheckBoundFlag(const char* flag, double value) {
  if (value > 0 && value <= std::numeric_limits<float>::max()) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", value, ": expected > 0 and at most ",
                   std::numeric_limits<float>::max()));
}

int Fail(const char* program, const absl::Status& status) {
  std::cerr << program << ": " << status.message() << std::endl;
  return 1;
}

int Main(int argc, char** argv) {
  if (std::optional<int> code =
          ParseFlags(argc, argv, "one replay shard served over gRPC");
      code) {
    return *code;
  }
  InstallShutdownHandlers();
  // Debian's Abseil is built with Mutex deadlock detection on, which costs a
  // graph update on every lock; the shard takes several locks per RPC.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ShardOptions options;
  options.shard_id = absl::GetFlag(FLAGS_shard_id);
  options.capacity = absl::GetFlag(FLAGS_capacity);
  options.observation_dim = absl::GetFlag(FLAGS_observation_dim);
  options.action_dim = absl::GetFlag(FLAGS_action_dim);
  options.sampler = absl::GetFlag(FLAGS_sampler);
  options.priority_exponent = absl::GetFlag(FLAGS_priority_exponent);
  options.seed = absl::GetFlag(FLAGS_seed);
  // Header and framing: a few hundred bytes.
  options.max_sample_bytes = absl::GetFlag(FLAGS_max_message_bytes) - 512;
  options.rate_limiter.min_size_to_sample =
      absl::GetFlag(FLAGS_min_size_to_sample);
  options.rate_limiter.samples_per_insert =
      absl::GetFlag(FLAGS_samples_per_insert);
  options.rate_limiter.error_buffer = absl::GetFlag(FLAGS_error_buffer);
  const std::string checkpoint_dir = absl::GetFlag(FLAGS_checkpoint_dir);
  if (absl::Status s = CheckFlags({
          FlagInRange("port", absl::GetFlag(FLAGS_port), 0, 65535),
          CheckShardId(options.shard_id),
          FlagAtLeast("capacity", static_cast<double>(options.capacity), 1),
          FlagOneOf("sampler", options.sampler, {"uniform", "prioritized"}),
          FlagInRange("priority_exponent", options.priority_exponent, 0, 1),
          FlagInRange("metrics_port", absl::GetFlag(FLAGS_metrics_port), -1,
                      65535),
          FlagInRange("max_message_bytes",
                      absl::GetFlag(FLAGS_max_message_bytes), 1024, INT32_MAX),
          CheckBoundFlag("max_abs_observation",
                         absl::GetFlag(FLAGS_max_abs_observation)),
          CheckBoundFlag("max_abs_reward", absl::GetFlag(FLAGS_max_abs_reward)),
          FlagInRange("max_insert_streams",
                      absl::GetFlag(FLAGS_max_insert_streams), 1, 100000),
          FlagInRange("max_waiting_calls",
                      absl::GetFlag(FLAGS_max_waiting_calls), 1, 100000),
          FlagInRange(
              "max_tracked_actors",
              static_cast<double>(absl::GetFlag(FLAGS_max_tracked_actors)), 1,
              static_cast<double>(kMaxTrackedActors)),
          FlagAtLeast(
              "min_size_to_sample",
              static_cast<double>(options.rate_limiter.min_size_to_sample), 1),
      });
      !s.ok()) {
    return ReportFlagError(argv[0], s);
  }
  absl::StatusOr<SecurityConfig> security = SecurityFromFlags();
  if (!security.ok()) return ReportFlagError(argv[0], security.status());
  options.max_tracked_actors = absl::GetFlag(FLAGS_max_tracked_actors);
  options.limits.max_abs_observation =
      static_cast<float>(absl::GetFlag(FLAGS_max_abs_observation));
  options.limits.max_abs_reward =
      static_cast<float>(absl::GetFlag(FLAGS_max_abs_reward));
  std::string checkpoint_path;
  std::unique_ptr<Shard> shard;
  if (!checkpoint_dir.empty()) {
    struct stat st;
    if (::stat(checkpoint_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return ReportFlagError(argv[0], absl::InvalidArgumentError(absl::StrCat(
                                          "--checkpoint_dir=", checkpoint_dir,
                                          ": not an existing directory")));
    }
    // Checkpoints (and the insert log) are written there: a directory they
    // cannot be written to is found now, with the log on or off, rather than
    // at the first checkpoint (with --wal=false, at SIGTERM).
    if (absl::Status s = CheckWritable(checkpoint_dir); !s.ok()) {
      return ReportFlagError(argv[0], s);
    }
    checkpoint_path = CheckpointPath(checkpoint_dir, options.shard_id);
    if (absl::GetFlag(FLAGS_wal)) {
      DurabilityOptions durability;
      durability.checkpoint_path = checkpoint_path;
      durability.log_path = InsertLogPath(checkpoint_dir, options.shard_id);
      durability.log.fsync = absl::GetFlag(FLAGS_wal_fsync);
      durability.log_max_bytes = absl::GetFlag(FLAGS_wal_max_bytes);
      ShardRecovery recovery;
      absl::StatusOr<std::unique_ptr<Shard>> opened =
          Shard::Open(options, durability, &recovery);
      if (!opened.ok()) {
        return absl::IsInvalidArgument(opened.status())
                   ? ReportFlagError(argv[0], opened.status())
                   : Fail(argv[0], opened.status());
      }
      shard = *std::move(opened);
      if (recovery.log.short_file) {
        std::cerr << "replay_server: insert log " << durability.log_path
                  << " was " << recovery.log.short_file_bytes
                  << " bytes, shorter than its " << kEmptyInsertLogBytes
                  << "-byte header: inserts logged in it, if any, are lost; "
                     "started it anew"
                  << std::endl;
      }
      std::cerr << "replay_server: restored " << shard->table().size()
                << " transitions: " << recovery.checkpoint_items << " from "
                << (recovery.checkpoint_found ? checkpoint_path
                                              : "no checkpoint")
                << ", " << recovery.transitions_replayed << " in "
                << recovery.records_replayed << " logged inserts from "
                << durability.log_path;
      if (recovery.records_skipped > 0) {
        std::cerr << " (" << recovery.records_skipped
                  << " logged inserts already in the checkpoint skipped)";
      }
      if (recovery.log.torn_bytes > 0) {
        std::cerr << "; ignored a torn last record (" << recovery.log.torn_bytes
                  << " bytes at offset " << recovery.log.torn_offset
                  << ", never acknowledged)";
      }
      std::cerr << std::endl;
    } else {
      // Inserts logged by an earlier run would be lost here, and a later run
      // with --wal would replay them on top of a checkpoint they do not
      // continue.
      const std::string log_path =
          InsertLogPath(checkpoint_dir, options.shard_id);
      struct stat log_stat;
      const bool log_exists = ::stat(log_path.c_str(), &log_stat) == 0;
      if (log_exists && log_stat.st_size > kEmptyInsertLogBytes) {
        return Fail(argv[0], absl::FailedPreconditionError(absl::StrCat(
                                 "--wal=false but ", log_path,
                                 " holds logged inserts: start once with "
                                 "--wal to restore them, or remove it")));
      }
      if (log_exists && log_stat.st_size < kEmptyInsertLogBytes) {
        std::cerr << "replay_server: insert log " << log_path << " is "
                  << log_stat.st_size << " bytes, shorter than its "
                  << kEmptyInsertLogBytes
                  << "-byte header: inserts logged in it, if any, are lost"
                  << std::endl;
      }
      absl::StatusOr<std::unique_ptr<Shard>> restored =
          Shard::Restore(options, checkpoint_path);
      if (restored.ok()) {
        shard = *std::move(restored);
        std::cerr << "replay_server: restored " << shard->table().size()
                  << " transitions from " << checkpoint_path << std::endl;
      } else if (!absl::IsNotFound(restored.status())) {
        return Fail(argv[0], restored.status());
      }
    }
  }
  if (shard == nullptr) {
    absl::StatusOr<std::unique_ptr<Shard>> created = Shard::Create(options);
    if (!created.ok()) {
      // Flags out of range, or a table (--capacity and the dims) larger than
      // this process's memory.
      return absl::IsInvalidArgument(created.status()) ||
                     absl::IsResourceExhausted(created.status())
                 ? ReportFlagError(argv[0], created.status())
                 : Fail(argv[0], created.status());
    }
    shard = *std::move(created);
  }

  WarnIfInsecure(*security, argv[0]);
  ServiceLimits limits;
  limits.max_insert_streams = absl::GetFlag(FLAGS_max_insert_streams);
  limits.max_waiting_calls = absl::GetFlag(FLAGS_max_waiting_calls);
  ReplayService service(shard.get(), checkpoint_path, limits);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string host = absl::GetFlag(FLAGS_host);
  int bound_port = 0;
  builder.AddListeningPort(absl::StrCat(host, ":", absl::GetFlag(FLAGS_port)),
                           MakeServerCredentials(*security), &bound_port);
  // Without SO_REUSEPORT: gRPC 1.51 otherwise opens one more listener per
  // extra poller, bound to the requested port, so with --port=0 each gets a
  // port of its own that is served but never printed (grpc/grpc#24730); it
  // would also let a second shard share a fixed --port silently.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  builder.SetMaxSendMessageSize(absl::GetFlag(FLAGS_max_message_bytes));
  PermitReplayKeepalive(&builder);  // clients find a frozen shard by its pings
  // Up to 8 threads kept waiting between calls: with gRPC's default (2), a few
  // Sample calls at once (a ReplaySampler keeps 4 in flight) made and ended a
  // thread for almost every call.
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 8);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return Fail(argv[0], absl::UnavailableError(
                             absl::StrCat("cannot listen on ", host, ":",
                                          absl::GetFlag(FLAGS_port))));
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  std::cout << "replay_server listening on " << host << ":" << bound_port
            << std::endl;

  std::unique_ptr<MetricsExporter> metrics;
  if (absl::GetFlag(FLAGS_metrics_port) >= 0) {
    const std::string metrics_host = absl::GetFlag(FLAGS_metrics_host).empty()
                                         ? host
                                         : absl::GetFlag(FLAGS_metrics_host);
    absl::StatusOr<std::unique_ptr<MetricsExporter>> m = MetricsExporter::Start(
        metrics_host, absl::GetFlag(FLAGS_metrics_port), security->token);
    if (!m.ok()) return Fail(argv[0], m.status());
    metrics = *std::move(m);
    std::cerr << "replay_server: metrics on " << metrics_host << ":"
              << metrics->port() << std::endl;
  }
  // Wait for SIGTERM; meanwhile refresh the Prometheus gauges every second.
  while (!WaitForShutdown(absl::Seconds(1))) {
    if (metrics == nullptr) continue;
    proto::ShardStats stats;
    shard->Stats(&stats, /*per_actor=*/false);
    metrics->Set("softq_replay_size", stats.size(), "transitions held");
    metrics->Set("softq_replay_capacity", stats.capacity(),
                 "most transitions held");
    metrics->Set("softq_replay_inserts_total", stats.inserts_total(),
                 "transitions inserted");
    metrics->Set("softq_replay_samples_total", stats.samples_total(),
                 "transitions sampled");
    metrics->Set("softq_replay_insert_rate", stats.insert_rate(),
                 "transitions inserted/s");
    metrics->Set("softq_replay_sample_rate", stats.sample_rate(),
                 "transitions sampled/s");
    metrics->Set("softq_replay_resident_bytes", stats.resident_bytes(),
                 "process RSS");
    metrics->Set("softq_replay_other_actors_inserted_total",
                 static_cast<double>(stats.other_actors_inserted()),
                 "transitions from actor ids beyond --max_tracked_actors, "
                 "counted together instead of one by one");
    metrics->Set("softq_replay_checkpoints_total",
                 static_cast<double>(stats.checkpoints_total()),
                 "checkpoints written (Checkpoint RPC, --wal_max_bytes and "
                 "shutdown); concurrent RPCs share one");
    metrics->Set("softq_replay_checkpoint_failures_total",
                 static_cast<double>(shard->checkpoint_failures()),
                 "automatic checkpoints (--wal_max_bytes) that failed, each "
                 "also one line on stderr");
  }
  metrics.reset();
  server->GetHealthCheckService()->SetServingStatus(false);
  shard->Cancel();  // blocked Insert/Sample calls return CANCELLED
  // Nothing left needs long: a call in progress finishes in milliseconds, while
  // gRPC would wait out the whole grace for clients that keep their streams
  // and connections open (actors' Insert streams; the test measured 5 s).
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  if (!checkpoint_path.empty()) {
    absl::StatusOr<CheckpointWritten> written =
        shard->Checkpoint(checkpoint_path);
    if (!written.ok()) return Fail(argv[0], written.status());
    std::cerr << "replay_server: wrote " << written->items << " transitions to "
              << written->path << std::endl;
  }
  return 0;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) {
  // Two malloc arenas instead of glibc's 8 per core: every gRPC thread that
  // serializes an insert into its own arena keeps those pages, so a durable
  // shard's RSS grows over a long run (bench/soak, --durable_dir, shows it).
  mallopt(M_ARENA_MAX, 2);
  softq::KeepFreedMemoryForReuse();
  return softq::Main(argc, argv);
}
