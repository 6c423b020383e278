// The /ws/bus command layer (docs/protocol.md): parses client frames, enforces per-connection
// limits, calls the hub, and answers every frame with an ack or an error carrying a code.
// No sockets here: the transport hands in text and a connection to answer on.
#pragma once

#include <memory>
#include <string_view>

#include "hub/hub.h"

namespace presd {

class BusProtocol {
 public:
  explicit BusProtocol(Hub& hub) : hub_(hub) {}
  void on_message(const std::shared_ptr<transport::WsConnection>& conn, std::string_view text);

 private:
  Hub& hub_;
};

}  // namespace presd
