// security_probe: one gRPC call to a softq server with chosen credentials, for
// tests/security:security_test. Prints one line and exits 0 whatever the
// call's outcome:
//
//   security_probe --address=H:P --rpc=insert --tls=mutual --ca=F --cert=F
//                  --key=F --token=T
//   => "insert OK" or "insert UNAUTHENTICATED: wrong job token", ...
//
// --tls=none: a plain insecure channel; mutual: TLS checking the server
// against --ca under the name softq-job and presenting --cert/--key (both
// empty: no client certificate). --token: sent as "authorization: Bearer T"
// (empty: no authorization metadata). The rpcs: the shard's insert (one
// transition of --observation_dim/--action_dim), sample, update_priorities,
// checkpoint, stats (prints size and inserts_total when OK); the learner's
// latest (prints the version when OK) and subscribe; health (grpc.health.v1
// Check, on either server) and reflection (list the services). Exit 2 for bad
// flags.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flags.h"
#include "common/security.h"
#include "proto/parameters.grpc.pb.h"
#include "proto/replay.grpc.pb.h"

ABSL_FLAG(std::string, address, "", "host:port of the server");
ABSL_FLAG(std::string, rpc, "stats",
          "insert, sample, update_priorities, checkpoint, stats, latest, "
          "subscribe, health or reflection");
ABSL_FLAG(std::string, tls, "none", "none or mutual");
ABSL_FLAG(std::string, ca, "",
          "PEM CA the server's certificate is checked against");
ABSL_FLAG(std::string, cert, "", "PEM client certificate (empty: none)");
ABSL_FLAG(std::string, key, "", "PEM key of --cert");
ABSL_FLAG(std::string, token, "", "job token to send (empty: none)");
ABSL_FLAG(int32_t, observation_dim, 2, "--rpc=insert: floats per observation");
ABSL_FLAG(int32_t, action_dim, 2, "--rpc=insert: floats per action");

namespace softq {
namespace {

std::string ReadFile(const std::string& path) {
  if (path.empty()) return "";
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::shared_ptr<grpc::Channel> Channel() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (absl::GetFlag(FLAGS_tls) == "none") {
    return grpc::CreateCustomChannel(absl::GetFlag(FLAGS_address),
                                     grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFile(absl::GetFlag(FLAGS_ca));
  tls.pem_cert_chain = ReadFile(absl::GetFlag(FLAGS_cert));
  tls.pem_private_key = ReadFile(absl::GetFlag(FLAGS_key));
  args.SetSslTargetNameOverride(kJobCertificateName);
  return grpc::CreateCustomChannel(absl::GetFlag(FLAGS_address),
                                   grpc::SslCredentials(tls), args);
}

void Prepare(grpc::ClientContext* context) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  if (!absl::GetFlag(FLAGS_token).empty()) {
    context->AddMetadata("authorization",
                         absl::StrCat("Bearer ", absl::GetFlag(FLAGS_token)));
  }
}

proto::TransitionBatch OneTransition() {
  const int o = absl::GetFlag(FLAGS_observation_dim);
  const int a = absl::GetFlag(FLAGS_action_dim);
  proto::TransitionBatch batch;
  batch.set_observation_dim(o);
  batch.set_action_dim(a);
  for (int i = 0; i < o; ++i) {
    batch.add_observations(0.5f);
    batch.add_next_observations(0.5f);
  }
  for (int i = 0; i < a; ++i) batch.add_actions(0.1f);
  batch.add_rewards(1.0f);
  batch.add_dones(false);
  batch.set_actor_id(7);
  return batch;
}

// Waits for the next event on `cq`; false if the operation failed.
bool Next(grpc::CompletionQueue* cq) {
  void* tag = nullptr;
  bool ok = false;
  return cq->Next(&tag, &ok) && ok;
}

grpc::Status Health(const std::shared_ptr<grpc::Channel>& channel,
                    std::string* detail) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  Prepare(&context);
  grpc::CompletionQueue cq;
  grpc::Slice empty;
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::Status status;
  auto call = stub.PrepareUnaryCall(&context, "/grpc.health.v1.Health/Check",
                                    request, &cq);
  call->StartCall();
  call->Finish(&response, &status, nullptr);
  Next(&cq);
  if (status.ok()) {
    std::vector<grpc::Slice> slices;
    (void)response.Dump(&slices);
    std::string bytes;
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    // HealthCheckResponse{status = SERVING (1)} is 08 01.
    *detail = bytes == std::string("\x08\x01", 2) ? " SERVING" : " not SERVING";
  }
  return status;
}

grpc::Status Reflection(const std::shared_ptr<grpc::Channel>& channel,
                        std::string* detail) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  Prepare(&context);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(
      &context,
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  grpc::Status status;
  call->StartCall(nullptr);
  if (Next(&cq)) {
    // ServerReflectionRequest{list_services = ""}: field 7, empty string.
    const std::string list("\x3a\x00", 2);
    grpc::Slice slice(list);
    call->Write(grpc::ByteBuffer(&slice, 1), nullptr);
    if (Next(&cq)) {
      call->WritesDone(nullptr);
      Next(&cq);
      grpc::ByteBuffer response;
      call->Read(&response, nullptr);
      if (Next(&cq)) *detail = absl::StrCat(" ", response.Length(), " bytes");
    }
  }
  call->Finish(&status, nullptr);
  Next(&cq);
  return status;
}

int Main(int argc, char** argv) {
  if (auto code = ParseFlags(argc, argv, "one gRPC call, for security_test");
      code) {
    return *code;
  }
  const std::string rpc = absl::GetFlag(FLAGS_rpc);
  std::shared_ptr<grpc::Channel> channel = Channel();
  auto replay = proto::ReplayShard::NewStub(channel);
  auto parameters = proto::ParameterService::NewStub(channel);
  grpc::ClientContext context;
  Prepare(&context);
  grpc::Status status;
  std::string detail;
  if (rpc == "insert") {
    auto stream = replay->Insert(&context);
    proto::InsertRequest request;
    request.set_sequence(1);
    *request.mutable_batch() = OneTransition();
    proto::InsertResponse response;
    if (stream->Write(request) && stream->WritesDone() &&
        stream->Read(&response)) {
      detail = absl::StrCat(" ack code ", response.code());
    }
    status = stream->Finish();
  } else if (rpc == "sample") {
    proto::SampleRequest request;
    request.set_batch_size(1);
    proto::SampleResponse response;
    status = replay->Sample(&context, request, &response);
  } else if (rpc == "update_priorities") {
    proto::UpdatePrioritiesRequest request;
    request.add_keys(0);
    request.add_priorities(1e6f);
    proto::UpdatePrioritiesResponse response;
    status = replay->UpdatePriorities(&context, request, &response);
  } else if (rpc == "checkpoint") {
    proto::CheckpointResponse response;
    status =
        replay->Checkpoint(&context, proto::CheckpointRequest(), &response);
  } else if (rpc == "stats") {
    proto::ShardStats response;
    status = replay->GetStats(&context, proto::StatsRequest(), &response);
    if (status.ok()) {
      detail =
          absl::StrCat(" size=", response.size(),
                       " inserts_total=", response.inserts_total(),
                       " samples_total=", response.samples_total(),
                       " checkpoints_total=", response.checkpoints_total());
    }
  } else if (rpc == "latest") {
    proto::NetworkParameters response;
    status =
        parameters->GetLatest(&context, proto::GetLatestRequest(), &response);
    if (status.ok()) detail = absl::StrCat(" version=", response.version());
  } else if (rpc == "subscribe") {
    auto reader = parameters->Subscribe(&context, proto::SubscribeRequest());
    proto::NetworkParameters message;
    if (reader->Read(&message)) {
      detail = absl::StrCat(" version=", message.version());
      context.TryCancel();
    }
    status = reader->Finish();
    if (!detail.empty() && status.error_code() == grpc::StatusCode::CANCELLED) {
      status = grpc::Status::OK;  // we ended it after one message
    }
  } else if (rpc == "health") {
    status = Health(channel, &detail);
  } else if (rpc == "reflection") {
    status = Reflection(channel, &detail);
  } else {
    return ReportFlagError(argv[0], absl::InvalidArgumentError(absl::StrCat(
                                        "--rpc=", rpc, ": unknown")));
  }
  std::string code;
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      code = "OK";
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      code = "UNAUTHENTICATED";
      break;
    case grpc::StatusCode::UNAVAILABLE:
      code = "UNAVAILABLE";
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      code = "DEADLINE_EXCEEDED";
      break;
    case grpc::StatusCode::CANCELLED:
      code = "CANCELLED";
      break;
    default:
      code = absl::StrCat("CODE_", status.error_code());
  }
  std::string message = status.error_message();
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  std::cout << rpc << " " << code << detail
            << (status.ok() ? "" : ": " + message) << std::endl;
  return 0;
}

}  // namespace
}  // namespace softq

int main(int argc, char** argv) { return softq::Main(argc, argv); }
