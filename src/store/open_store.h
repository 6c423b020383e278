// Opens the store `--store` names (store/store_url.h): the one place that knows the backends.
#pragma once

#include <memory>

#include "store/store.h"
#include "store/store_url.h"

namespace presd {

// Throws std::runtime_error at start-up when the store cannot be opened (the message carries
// the redacted URL, never a password).
std::unique_ptr<Store> open_store(const StoreLocation& where);

}  // namespace presd
