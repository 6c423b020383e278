#include "hub/pres_request.h"

#include <boost/json/serialize.hpp>

namespace presd {

Result<PresRequest> pres_request_from_json(const boost::json::object& data) {
  PresRequest req;
  auto subtype = data.find("subType");
  auto subject = data.find("subject");
  if (subtype == data.end() || !subtype->value().is_string() || subject == data.end() ||
      !subject->value().is_string())
    return Error(ErrorCode::bad_request, "subType and subject (strings) are required");
  req.subtype = std::string(subtype->value().get_string());
  req.subject = std::string(subject->value().get_string());
  if (auto it = data.find("audienceTag"); it != data.end() && !it->value().is_null()) {
    if (!it->value().is_string()) return Error(ErrorCode::bad_request, "audienceTag must be a string");
    req.audience = std::string(it->value().get_string());
  }
  if (auto it = data.find("content"); it != data.end() && !it->value().is_null()) {
    if (!it->value().is_object()) return Error(ErrorCode::bad_request, "content must be an object");
    req.content_json = boost::json::serialize(it->value());
  }
  return req;
}

}  // namespace presd
