// _softq_actor: the C++ actor (actor/actor.h) for Python environments. Python
// builds the environments (Gymnasium API) and calls Actor.step(); everything
// else is the C++ actor's own code: the batched sampling network
// (ActingPolicy), the learner's parameters (ParameterSubscriber), the replay
// writer (batching, acks, re-sends, back-pressure) and the transition ids.
// Each Python environment is wrapped in a C++ Environment (PythonEnvironment)
// whose Step calls back into Python: rescales the action to the Box's bounds,
// flattens the observation to float32 and checks it (shape, NaN/inf) at this
// trust boundary, naming the environment, its step and the field.
// absl::Status errors become Python exceptions here, at the module's edge
// (InvalidArgument: ValueError; others: RuntimeError). Do not import LibTorch's
// Python package (torch) in the same process: two LibTorch copies.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "actor/actor.h"
#include "actor/parameter_subscriber.h"
#include "actor/replay_sink.h"
#include "common/grpc_security.h"
#include "common/metrics.h"
#include "common/security.h"
#include "common/shutdown.h"
#include "common/torch_threads.h"
#include "common/transition_check.h"
#include "env/environment.h"
#include "policy/acting_policy.h"
#include "replay/replay_channel.h"
#include "replay/replay_stats.h"
#include "replay/replay_writer.h"

namespace py = pybind11;

namespace softq {
namespace {

// Raises `status` as a Python exception (no-op for OK).
void ThrowIfError(const absl::Status& status) {
  if (status.ok()) return;
  const std::string message(status.message());
  if (absl::IsInvalidArgument(status)) throw py::value_error(message);
  throw std::runtime_error(message);
}

// The first line of a Python exception's text ("ValueError: ...").
std::string FirstLine(const py::error_already_set& e) {
  std::string text = e.what();
  return text.substr(0, text.find('\n'));
}

// How a Python environment fits the actor: sizes, the action bounds and the
// observation's and action's shapes.
struct PythonEnvSpec {
  std::string name;  // for messages: the user's MODULE:CALLABLE and the index
  int observation_dim = 0;
  std::vector<ssize_t> action_shape;
  std::vector<float> action_low, action_high;  // flat, finite
};

// A Gymnasium-style Python environment as an Environment. Step and Reset take
// the GIL. Reset's errors (which Environment::Reset cannot return) are kept
// and returned by the next Step, before it touches the environment, so no
// transition holds the zeros Reset returned in their place.
class PythonEnvironment : public Environment {
 public:
  PythonEnvironment(py::object env, PythonEnvSpec spec, uint64_t seed)
      : env_(std::move(env)), spec_(std::move(spec)), seed_(seed) {}
  ~PythonEnvironment() override {
    py::gil_scoped_acquire gil;
    env_ = py::object();
  }

  EnvSpec spec() const override {
    EnvSpec s;
    s.observation_dim = spec_.observation_dim;
    s.action_dim = static_cast<int>(spec_.action_low.size());
    return s;
  }

  void Seed(uint64_t seed) override { seed_ = seed; }

  std::vector<float> Reset() override {
    std::vector<float> obs(spec_.observation_dim, 0.0f);
    episode_step_ = 0;
    py::gil_scoped_acquire gil;
    try {
      py::object result = seed_ ? env_.attr("reset")(py::arg("seed") = *seed_)
                                : env_.attr("reset")();
      seed_.reset();
      if (!py::isinstance<py::tuple>(result) || py::len(result) != 2) {
        error_ = Error(
            "reset", "returned " + Describe(result) + ", expected (obs, info)");
        return obs;
      }
      error_ = Observation(py::tuple(result)[0], "reset", &obs);
    } catch (const py::error_already_set& e) {
      error_ = Error("reset", "raised " + FirstLine(e));
    }
    return obs;
  }

  absl::StatusOr<StepResult> Step(absl::Span<const float> action) override {
    if (!error_.ok()) return error_;
    if (action.size() != spec_.action_low.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec_.name, ": action of ", action.size(),
                       " values, expected ", spec_.action_low.size()));
    }
    ++steps_;
    ++episode_step_;
    StepResult out;
    out.observation.assign(spec_.observation_dim, 0.0f);
    py::gil_scoped_acquire gil;
    try {
      py::array_t<float> a(spec_.action_shape);
      float* dst = a.mutable_data();
      for (size_t i = 0; i < action.size(); ++i) {
        const float unit = std::min(1.0f, std::max(-1.0f, action[i]));
        dst[i] =
            spec_.action_low[i] +
            0.5f * (unit + 1.0f) * (spec_.action_high[i] - spec_.action_low[i]);
      }
      py::object result = env_.attr("step")(a);
      if (!py::isinstance<py::tuple>(result) || py::len(result) != 5) {
        return error_ =
                   Error("step", "returned " + Describe(result) +
                                     ", expected (obs, reward, terminated, "
                                     "truncated, info)");
      }
      py::tuple t(result);
      if (absl::Status s = Observation(t[0], "step", &out.observation);
          !s.ok()) {
        return error_ = s;
      }
      double reward;
      try {
        reward = t[1].cast<double>();
      } catch (const py::cast_error&) {
        return error_ = Error("step", "reward is " + Describe(t[1]) +
                                          ", expected a number");
      }
      if (!std::isfinite(reward)) {
        return error_ = Error("step", absl::StrCat("reward is ", reward));
      }
      out.reward = static_cast<float>(reward);
      for (const auto& [index, field, flag] :
           {std::make_tuple(2, "terminated", &out.terminal),
            std::make_tuple(3, "truncated", &out.truncated)}) {
        try {
          *flag = py::bool_(t[index]);
        } catch (const py::error_already_set& e) {
          return error_ = Error("step",
                                absl::StrCat(field, " is ", Describe(t[index]),
                                             ": ", FirstLine(e)));
        }
      }
    } catch (const py::error_already_set& e) {
      return error_ = Error("step", "raised " + FirstLine(e));
    }
    return out;
  }

 private:
  absl::Status Error(const std::string& call, const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: %s at step %d (episode step %d): %s", spec_.name,
                        call, steps_, episode_step_, what));
  }

  // `obj` flattened into `out` (observation_dim float32 values, all finite).
  absl::Status Observation(py::handle obj, const std::string& call,
                           std::vector<float>* out) const {
    py::array_t<float, py::array::c_style | py::array::forcecast> a;
    try {
      a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(
          obj);
    } catch (const py::error_already_set&) {
    }
    if (!a) {
      PyErr_Clear();
      return Error(call, "observation is " + Describe(obj) +
                             ", expected an array of numbers");
    }
    if (a.size() != spec_.observation_dim) {
      return Error(
          call, absl::StrCat("observation has ", a.size(), " values, expected ",
                             spec_.observation_dim));
    }
    const float* p = a.data();
    for (int i = 0; i < spec_.observation_dim; ++i) {
      if (!std::isfinite(p[i])) {
        return Error(call, absl::StrCat("observation[", i, "] is ", p[i]));
      }
    }
    std::memcpy(out->data(), p, spec_.observation_dim * sizeof(float));
    return absl::OkStatus();
  }

  static std::string Describe(py::handle obj) {
    std::string text = py::repr(obj).cast<std::string>();
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return absl::StrCat(
        py::str(obj.get_type().attr("__name__")).cast<std::string>(), " ",
        text);
  }

  py::object env_;
  const PythonEnvSpec spec_;
  std::optional<uint64_t> seed_;  // passed to the next reset only
  absl::Status error_;  // sticky: the environment is not stepped again
  int64_t steps_ = 0;
  int64_t episode_step_ = 0;
};

// An actor process's C++ side, as actor_main wires it: policy, subscriber,
// writer, sink, Actor. Not thread-safe: one Python thread calls it.
class PyActor {
 public:
  PyActor(py::list envs, const std::string& name, int observation_dim,
          const std::vector<ssize_t>& action_shape,
          const std::vector<float>& action_low,
          const std::vector<float>& action_high, const std::string& replay,
          const std::string& learner, int actor_id,
          const std::vector<int64_t>& hidden, int64_t seed, int steps_per_write,
          int max_in_flight_batches, bool deterministic, double action_noise,
          const std::string& acked_ids_out, const SecurityConfig& security) {
    const int64_t n = static_cast<int64_t>(py::len(envs));
    const int64_t transitions = n * steps_per_write;
    const int64_t action_dim = static_cast<int64_t>(action_low.size());
    if (n < 1 || observation_dim < 1 || action_dim < 1 ||
        action_high.size() != action_low.size()) {
      throw py::value_error(
          "need at least one environment, observation and action value");
    }
    if (observation_dim > static_cast<int>(kMaxObservationDim) ||
        action_dim > static_cast<int64_t>(kMaxActionDim)) {
      throw py::value_error(absl::StrFormat(
          "observation %d and action %d values: a replay shard takes at most "
          "%d and %d",
          observation_dim, action_dim, kMaxObservationDim, kMaxActionDim));
    }
    if (transitions > kMaxBatchTransitions ||
        transitions * TransitionMessageBytes(observation_dim, action_dim) >
            kDefaultMaxMessageBytes) {
      throw py::value_error(absl::StrFormat(
          "--steps_per_write=%d: with --num_envs=%d a write is %d transitions, "
          "more than a shard takes in one message",
          steps_per_write, n, transitions));
    }
    if (!acked_ids_out.empty()) {
      absl::StatusOr<std::unique_ptr<AckedIdsFile>> file =
          AckedIdsFile::Create(acked_ids_out);
      if (!file.ok()) {
        throw py::value_error(
            absl::StrCat("--acked_ids_out: ", file.status().message()));
      }
      acked_ids_ = *std::move(file);
    }
    const uint64_t mixed = static_cast<uint64_t>(seed) * 1000003 + actor_id;
    policy_ = std::make_unique<ActingPolicy>(
        observation_dim, action_dim, hidden, mixed,
        ActingOptions{deterministic, action_noise});
    ReplayClientOptions options;
    options.addresses = absl::StrSplit(replay, ',', absl::SkipEmpty());
    options.rpc_timeout = absl::Seconds(1);  // as actor_main: SIGTERM honoured
    options.max_in_flight_batches = max_in_flight_batches;
    options.security = security;
    if (acked_ids_ != nullptr) {
      options.on_acknowledged =
          [file = acked_ids_.get()](const proto::TransitionBatch& batch) {
            file->Record(batch);
          };
    }
    addresses_ = options.addresses;
    security_ = security;
    absl::StatusOr<std::unique_ptr<ReplayWriter>> writer =
        ReplayWriter::Create(options);
    ThrowIfError(writer.status());
    subscriber_ =
        std::make_unique<ParameterSubscriber>(learner, policy_.get(), security);
    writer_ = *std::move(writer);
    sink_ = std::make_unique<ReplaySink>(writer_.get());
    std::vector<std::unique_ptr<Environment>> wrapped;
    for (int64_t i = 0; i < n; ++i) {
      PythonEnvSpec spec{absl::StrCat(name, " #", i), observation_dim,
                         action_shape, action_low, action_high};
      wrapped.push_back(std::make_unique<PythonEnvironment>(
          py::reinterpret_borrow<py::object>(envs[i]), std::move(spec),
          mixed * 7919 + i));
    }
    // The Actor resets every environment now (Python, under the GIL held).
    actor_ = std::make_unique<Actor>(
        std::move(wrapped), policy_.get(), sink_.get(),
        ActorOptions{static_cast<uint32_t>(actor_id), steps_per_write});
  }

  ~PyActor() {
    // The writer's threads stop before the file they write to closes; the
    // environments (Python objects) go under the GIL the caller holds.
    actor_.reset();
    sink_.reset();
    writer_.reset();
    subscriber_.reset();
  }

  bool WaitForParameters(double timeout_s) {
    py::gil_scoped_release release;
    return subscriber_->WaitForParameters(absl::Seconds(timeout_s));
  }

  // One step of every environment. False when shutdown was requested while the
  // replay pushed back; raises the environment's or the replay's error.
  bool Step() {
    absl::Status s;
    {
      py::gil_scoped_release release;
      s = actor_->Step();
    }
    if (absl::IsCancelled(s)) return false;
    ThrowIfError(s);
    return true;
  }

  // Writes what the actor gathered, then waits up to `timeout_s` for every
  // queued batch to be acknowledged. Returns (error, message): ("", "") when
  // all are stored; as actor_main, batches held back by the shards' rate
  // limiter (the learner has stopped sampling, as at the end of a run) are
  // said as such with error "" (expected); any other cause is the error.
  std::pair<std::string, std::string> Flush(double timeout_s) {
    py::gil_scoped_release release;
    absl::Status s = actor_->Flush();
    if (!s.ok() && !absl::IsCancelled(s)) return {std::string(s.message()), ""};
    s = writer_->Flush(absl::Seconds(timeout_s));
    if (s.ok()) return {"", ""};
    const size_t pending = writer_->pending_batches();
    std::vector<std::string> limited;
    double samples_per_insert = 0;
    const std::vector<absl::StatusOr<proto::ShardStats>> stats =
        QueryStatsEach(addresses_, absl::Seconds(1), security_);
    for (size_t i = 0; i < stats.size(); ++i) {
      if (stats[i].ok() && stats[i]->rate_limiter().blocked_inserts() > 0) {
        limited.push_back(addresses_[i]);
        samples_per_insert = stats[i]->rate_limiter().samples_per_insert();
      }
    }
    if (absl::IsDeadlineExceeded(s) && !limited.empty()) {
      return {"", absl::StrCat(pending, " batches left unstored: shard(s) ",
                               absl::StrJoin(limited, ", "),
                               " hold inserts until the learner samples "
                               "(samples_per_insert ",
                               samples_per_insert,
                               "); every acknowledged transition is stored")};
    }
    return {absl::StrCat(pending, " batches left unstored: ", s.message()), ""};
  }

  std::string NetworkMismatch() const {
    return std::string(subscriber_->network_mismatch().message());
  }
  std::string AckedIdsError() const {
    return acked_ids_ == nullptr ? ""
                                 : std::string(acked_ids_->status().message());
  }
  std::vector<double> TakeEpisodeReturns() {
    return actor_->TakeEpisodeReturns();
  }
  int64_t env_steps() const { return actor_->env_steps(); }
  int64_t episodes() const { return actor_->episodes(); }
  uint64_t parameter_version() const { return policy_->version(); }
  uint64_t latest_learner_step() const {
    return subscriber_->latest_learner_step();
  }
  uint64_t acknowledged() const { return writer_->acknowledged(); }
  uint64_t resent_batches() const { return writer_->resent_batches(); }
  int64_t waits() const { return sink_->waits(); }

 private:
  std::vector<std::string> addresses_;
  SecurityConfig security_;
  std::unique_ptr<AckedIdsFile> acked_ids_;  // outlives the writer
  std::unique_ptr<ActingPolicy> policy_;
  std::unique_ptr<ParameterSubscriber> subscriber_;
  std::unique_ptr<ReplayWriter> writer_;
  std::unique_ptr<ReplaySink> sink_;
  std::unique_ptr<Actor> actor_;
};

}  // namespace
}  // namespace softq

PYBIND11_MODULE(_softq_actor, m) {
  using softq::PyActor;
  m.doc() =
      "softq's C++ actor (replay writer, parameter subscriber, acting "
      "policy) stepping Python environments";
  py::class_<softq::SecurityConfig>(m, "Security")
      .def(py::init<>(), "insecure mode")
      .def_property_readonly("secure", &softq::SecurityConfig::secure);
  m.def(
      "load_security",
      [](const std::string& tls_ca, const std::string& tls_cert,
         const std::string& tls_key, const std::string& auth_token_file) {
        absl::StatusOr<softq::SecurityConfig> security =
            softq::LoadSecurityConfig(
                {tls_ca, tls_cert, tls_key, auth_token_file});
        softq::ThrowIfError(security.status());
        {
          py::gil_scoped_release release;
          softq::ThrowIfError(softq::CheckCredentialsWork(*security));
        }
        return *std::move(security);
      },
      py::arg("tls_ca"), py::arg("tls_cert"), py::arg("tls_key"),
      py::arg("auth_token_file"),
      "the job's credentials as the C++ binaries' four flags take them "
      "(common/security.h): all empty is insecure mode; ValueError naming "
      "the flag otherwise");
  m.def(
      "insecure_warning",
      [](const std::string& program) {
        return softq::InsecureWarning(program);
      },
      py::arg("program"));
  py::class_<PyActor>(m, "Actor")
      .def(py::init<py::list, const std::string&, int,
                    const std::vector<ssize_t>&, const std::vector<float>&,
                    const std::vector<float>&, const std::string&,
                    const std::string&, int, const std::vector<int64_t>&,
                    int64_t, int, int, bool, double, const std::string&,
                    const softq::SecurityConfig&>(),
           py::arg("envs"), py::arg("name"), py::arg("observation_dim"),
           py::arg("action_shape"), py::arg("action_low"),
           py::arg("action_high"), py::arg("replay"), py::arg("learner"),
           py::arg("actor_id"), py::arg("hidden"), py::arg("seed") = 0,
           py::arg("steps_per_write") = 16,
           py::arg("max_in_flight_batches") = 8,
           py::arg("deterministic") = false, py::arg("action_noise") = 0.0,
           py::arg("acked_ids_out") = "",
           py::arg("security") = softq::SecurityConfig())
      .def("wait_for_parameters", &PyActor::WaitForParameters,
           py::arg("timeout_s"))
      .def("step", &PyActor::Step)
      .def("flush", &PyActor::Flush, py::arg("timeout_s"))
      .def("network_mismatch", &PyActor::NetworkMismatch)
      .def("acked_ids_error", &PyActor::AckedIdsError)
      .def("take_episode_returns", &PyActor::TakeEpisodeReturns)
      .def_property_readonly("env_steps", &PyActor::env_steps)
      .def_property_readonly("episodes", &PyActor::episodes)
      .def_property_readonly("parameter_version", &PyActor::parameter_version)
      .def_property_readonly("latest_learner_step",
                             &PyActor::latest_learner_step)
      .def_property_readonly("acknowledged", &PyActor::acknowledged)
      .def_property_readonly("resent_batches", &PyActor::resent_batches)
      .def_property_readonly("waits", &PyActor::waits);

  py::class_<softq::MetricsExporter>(m, "Metrics")
      .def_static(
          "start",
          [](const std::string& host, int port,
             const softq::SecurityConfig& security) {
            auto e = softq::MetricsExporter::Start(host, port, security.token);
            softq::ThrowIfError(e.status());
            return std::move(*e);
          },
          py::arg("host"), py::arg("port"),
          py::arg("security") = softq::SecurityConfig())
      .def_property_readonly("port", &softq::MetricsExporter::port)
      .def("set", &softq::MetricsExporter::Set, py::arg("name"),
           py::arg("value"), py::arg("help"));

  m.def("install_shutdown_handlers", &softq::InstallShutdownHandlers,
        "SIGTERM and SIGINT request shutdown (instead of Python's handlers)");
  m.def("shutdown_requested", &softq::ShutdownRequested);
  m.def("request_shutdown", &softq::RequestShutdown);
  m.def(
      "configure_torch_threads", [] { return softq::ConfigureTorchThreads(1); },
      "one LibTorch and one BLAS thread; returns the settings line");
}
