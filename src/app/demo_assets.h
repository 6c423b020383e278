// The demo page (clients/demo) and the compiled JS client (clients/js), embedded at build time by
// cmake/embed_assets.cmake and served by `presd serve` under /demo.
#pragma once

#include <string_view>
#include <vector>

namespace presd::app {

struct DemoAsset {
  std::string_view path;          // "/demo", "/demo/client.js", ...
  std::string_view content_type;  // "text/html", "text/javascript", "text/css" (UTF-8)
  std::string_view body;
};

const std::vector<DemoAsset>& demo_assets();

}  // namespace presd::app
