// What presd nodes say to each other on the cluster bus (docs/cluster.md). Versioned JSON, one
// message per bus message, so a node of a newer version can refuse what it does not understand
// with a coded error instead of misreading it:
//   {"v":1,"kind":"pres","node":"n1","token":"<compact PRES JWT>"}  an accepted PRES
//   {"v":1,"kind":"sync","node":"n1"}                                 "send me your live states"
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace presd {

struct BusMessage {
  static constexpr int kVersion = 1;
  enum class Kind { pres, sync };

  Kind kind = Kind::pres;
  std::string origin;  // node id of the sender
  std::string token;   // kind pres only: the token exactly as accepted on the origin node
};

std::string encode_bus_message(const BusMessage& message);
// bus_bad_message for anything but a well-formed message of version 1 from a valid node id.
Result<BusMessage> decode_bus_message(std::string_view payload);

// Node ids name NATS subjects and show up in logs: 1-64 of [A-Za-z0-9_-].
bool is_valid_node_id(std::string_view id);
// "n-" and 8 random hex digits: unique enough for echo suppression between restarts.
std::string random_node_id();

}  // namespace presd
