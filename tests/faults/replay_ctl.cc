// replay_ctl: the RPCs fault tests need that replay_stats does not offer.
//
//   replay_ctl checkpoint HOST:PORT   asks the shard to write its checkpoint
//   and
//                                     prints {"path":...,"items":N,"bytes":B}
//
// Exit 0 on success; 1 (one line on stderr naming the shard) when the call
// fails; 2 for a malformed command line. Deadline 30 s.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <string>

#include "proto/replay.grpc.pb.h"
#include "replay/client.h"

int main(int argc, char** argv) {
  if (argc != 3 || std::strcmp(argv[1], "checkpoint") != 0) {
    std::cerr << argv[0] << ": usage: replay_ctl checkpoint HOST:PORT"
              << std::endl;
    return 2;
  }
  const std::string address = argv[2];
  auto stub =
      softq::proto::ReplayShard::NewStub(softq::MakeReplayChannel(address));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  context.set_wait_for_ready(true);
  softq::proto::CheckpointResponse response;
  const grpc::Status s =
      stub->Checkpoint(&context, softq::proto::CheckpointRequest(), &response);
  if (!s.ok()) {
    std::cerr << argv[0] << ": " << address << ": " << s.error_message()
              << std::endl;
    return 1;
  }
  std::cout << "{\"path\":\"" << response.path()
            << "\",\"items\":" << response.items()
            << ",\"bytes\":" << response.bytes() << "}" << std::endl;
  return 0;
}
