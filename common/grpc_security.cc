#include "common/grpc_security.h"

#include <grpc/support/log.h>
#include <grpcpp/generic/async_generic_service.h>

#include <cstdlib>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"

namespace softq {
namespace {

constexpr char kAuthorization[] = "authorization";

// Server side: the token on every call, before the handler.
class TokenProcessor : public grpc::AuthMetadataProcessor {
 public:
  explicit TokenProcessor(std::string token) : token_(std::move(token)) {}
  // A string compare: run on the call's own thread.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata,
                       grpc::AuthContext* /*context*/,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* /*response_metadata*/) override {
    const auto it = auth_metadata.find(kAuthorization);
    if (it == auth_metadata.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "no job token (authorization metadata)");
    }
    const absl::string_view value(it->second.data(), it->second.size());
    if (!BearerTokenMatches(value, token_)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong job token");
    }
    consumed_auth_metadata->insert(
        {kAuthorization, std::string(value.data(), value.size())});
    return grpc::Status::OK;
  }

 private:
  const std::string token_;
};

// Client side: the token on every call.
class TokenPlugin : public grpc::MetadataCredentialsPlugin {
 public:
  explicit TokenPlugin(const std::string& token)
      : header_(absl::StrCat("Bearer ", token)) {}
  bool IsBlocking() const override { return false; }
  const char* GetType() const override { return "softq-job-token"; }
  grpc::Status GetMetadata(
      grpc::string_ref /*service_url*/, grpc::string_ref /*method_name*/,
      const grpc::AuthContext& /*channel_auth_context*/,
      std::multimap<std::string, std::string>* metadata) override {
    metadata->insert({kAuthorization, header_});
    return grpc::Status::OK;
  }

 private:
  const std::string header_;
};

std::shared_ptr<grpc::ChannelCredentials> MakeChannelCredentials(
    const SecurityConfig& security) {
  if (!security.secure()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = security.ca_pem;
  tls.pem_private_key = security.key_pem;
  tls.pem_cert_chain = security.cert_pem;
  return grpc::CompositeChannelCredentials(
      grpc::SslCredentials(tls),
      grpc::MetadataCredentialsFromPlugin(
          std::make_unique<TokenPlugin>(security.token)));
}

// gRPC's own error lines (a failed handshake logs several) are not shown
// while CheckCredentialsWork runs, unless GRPC_VERBOSITY asks for them: its
// result is the one line.
class QuietGrpcLog {
 public:
  QuietGrpcLog() : quiet_(std::getenv("GRPC_VERBOSITY") == nullptr) {
    if (quiet_) {
      gpr_set_log_verbosity(
          static_cast<gpr_log_severity>(GPR_LOG_SEVERITY_ERROR + 1));
    }
  }
  ~QuietGrpcLog() {
    if (quiet_) gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);
  }

 private:
  const bool quiet_;
};

}  // namespace

std::shared_ptr<grpc::ServerCredentials> MakeServerCredentials(
    const SecurityConfig& security) {
  if (!security.secure()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions tls(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  tls.pem_root_certs = security.ca_pem;
  tls.pem_key_cert_pairs.push_back({security.key_pem, security.cert_pem});
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::SslServerCredentials(tls);
  credentials->SetAuthMetadataProcessor(
      std::make_shared<TokenProcessor>(security.token));
  return credentials;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const SecurityConfig& security,
                                           grpc::ChannelArguments args) {
  if (security.secure()) args.SetSslTargetNameOverride(kJobCertificateName);
  return grpc::CreateCustomChannel(address, MakeChannelCredentials(security),
                                   args);
}

absl::Status CheckCredentialsWork(const SecurityConfig& security,
                                  absl::Duration timeout) {
  if (!security.secure()) return absl::OkStatus();
  QuietGrpcLog quiet;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", MakeServerCredentials(security),
                           &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // A server needs some service to start: this one answers UNIMPLEMENTED.
  grpc::CallbackGenericService unimplemented;
  builder.RegisterCallbackGenericService(&unimplemented);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    // gRPC loads the pair when the port opens: a key that is not the
    // certificate's (or a certificate it cannot parse) fails there.
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_key=", security.files.tls_key,
        ": not the private key of the certificate in --tls_cert=",
        security.files.tls_cert, " (or one of them does not parse)"));
  }
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::Channel> channel =
      MakeChannel(absl::StrCat("127.0.0.1:", port), security, args);
  // Connected, or the first failed attempt (TRANSIENT_FAILURE), or timeout.
  const auto deadline = absl::ToChronoTime(absl::Now() + timeout);
  grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY &&
         state != GRPC_CHANNEL_TRANSIENT_FAILURE &&
         channel->WaitForStateChange(state, deadline)) {
    state = channel->GetState(/*try_to_connect=*/true);
  }
  const bool connected = state == GRPC_CHANNEL_READY;
  server->Shutdown(absl::ToChronoTime(absl::Now()));
  if (!connected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls_cert=", security.files.tls_cert,
        ": does not verify against --tls_ca=", security.files.tls_ca,
        " for the name ", kJobCertificateName,
        " (a TLS handshake with itself failed)"));
  }
  return absl::OkStatus();
}

}  // namespace softq
