// The JSON fields of a PRES the server signs for a user, shared by the WebSocket `pres` command
// and POST /api/actions: {"subType","subject","audienceTag"?,"content"?}.
#pragma once

#include <boost/json/object.hpp>

#include "common/result.h"
#include "hub/hub.h"

namespace presd {

Result<PresRequest> pres_request_from_json(const boost::json::object& data);

}  // namespace presd
