// Public keys of remote issuers, fetched from https://cl-o.<iss>/api/me (PROTOCOL.md section 2)
// and cached. Single-threaded: every call, and every completion of the fetcher, happens on the
// hub's I/O thread. Asynchronous through KeyFetcher so this stays plain C++ (no sockets); the
// HTTPS client (src/transport) is adapted to KeyFetcher by the application.
//
// Behaviour:
// - Single flight: at most one fetch per id_tag is in flight; lookups that need it wait on it
//   (at most max_waiters_per_issuer; more are answered `unavailable` at once).
// - Positive cache: a document lives for min(default_ttl_s, max_ttl_s); each key additionally
//   until its expiresAt. Keys found in a fresh document are answered at once, even while a
//   refetch for that issuer is under way.
// - Unknown key id (or a key past its expiresAt) in a fresh document: one refetch, at most every
//   refetch_min_interval_s per issuer (key rotation); otherwise token_unknown_key at once.
// - A signature that fails under a cached key: invalidate_after_failed_verify() forces the next
//   lookup to refetch (same rate limit), so a rotated key is picked up; lookups wait for it.
// - Failures are negative-cached per issuer and answered without fetching:
//     * non-200 (except 429/5xx), or a document parse_me_document rejects: token_unknown_key for
//       negative_ttl_s (the issuer answered; asking again soon will not change much);
//     * transport error (DNS, SSRF guard, connect, TLS, timeout), 429 or 5xx: unavailable for
//       unavailable_ttl_s (shorter: transient, but still keeps a dead peer from being hammered
//       by every token naming it).
//   A failed refetch while a fresh document is cached keeps that document (known keys still
//   verify); only the waiters that needed the new document get the error.
// - Memory: at most max_issuers entries (positive and negative), least recently used evicted
//   first (entries with a fetch in flight are never evicted); at most max_concurrent_fetches
//   fetches in flight overall (a burst of tokens from many unknown issuers is answered
//   `unavailable` beyond that instead of opening thousands of connections).
// - Destroying RemoteKeys drops pending lookups without calling them; late fetch completions are
//   ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "token/es384.h"

namespace presd {

// --- The fetch contract the HTTPS client is adapted to -----------------------------------------
// GET https://<me_document_host(id_tag)><kMeDocumentPath>, no credentials, no redirects followed,
// certificate verified for that host name, ResolverOverrides consulted before DNS, every address
// checked against the AddressPolicy before connecting, a short overall timeout, and the body
// read up to kMaxMeDocumentBytes + 1 bytes (parse_me_document rejects anything longer).
// Report the HTTP status and body when a response arrived (whatever the status), or
// transport_error (code `unavailable`, message saying what failed) when none did.
inline constexpr std::string_view kMeDocumentPath = "/api/me";
inline std::string me_document_host(std::string_view id_tag) { return "cl-o." + std::string(id_tag); }

struct KeyFetchResult {
  int http_status = 0;
  std::string body;
  std::optional<Error> transport_error;
};

// done must be called exactly once (extra calls are ignored), inline or later on the same thread.
using KeyFetcher =
    std::function<void(const std::string& id_tag, std::function<void(KeyFetchResult)> done)>;

struct RemoteKeysConfig {
  std::int64_t default_ttl_s = 3600;        // document lifetime
  std::int64_t max_ttl_s = 86400;           // cap on any lifetime
  std::int64_t negative_ttl_s = 300;        // bad answer / bad document
  std::int64_t unavailable_ttl_s = 30;      // transport error, 429, 5xx
  std::int64_t refetch_min_interval_s = 60; // per issuer, for unknown key ids and failed verifies
  std::size_t max_issuers = 100000;
  std::size_t max_waiters_per_issuer = 1024;
  std::size_t max_concurrent_fetches = 256;
};

class RemoteKeys {
 public:
  using Done = std::function<void(Result<Es384PublicKey>)>;

  RemoteKeys(RemoteKeysConfig config, const Clock& clock, KeyFetcher fetcher);
  RemoteKeys(const RemoteKeys&) = delete;
  RemoteKeys& operator=(const RemoteKeys&) = delete;

  // Calls done exactly once with the key or an Error: token_unknown_key (the issuer has no such
  // key, or its document is bad), unavailable (it could not be asked now, or limits are full).
  // From the cache at once, or when the (single) fetch for id_tag completes. An id_tag that is
  // not canonical, or whose last label is all digits ("127.0.0.1"), is refused without a fetch.
  void lookup(const std::string& id_tag, const std::string& key_id, Done done);

  // A signature failed under a cached key of id_tag. Returns true if the next lookup will use a
  // freshly fetched document (a refetch is allowed now or already in flight), false if rate
  // limited or nothing is cached (then report the bad signature).
  bool invalidate_after_failed_verify(const std::string& id_tag);

  std::size_t size() const { return entries_.size(); }
  std::size_t fetches_started() const { return fetches_started_; }
  std::size_t fetches_in_flight() const { return in_flight_; }

 private:
  struct CachedKey {
    std::string key_id;
    Es384PublicKey key;
    std::int64_t valid_until_s;  // min(expiresAt, document fresh_until_s)
  };
  struct Waiter {
    std::string key_id;
    Done done;
  };
  struct Entry {
    bool has_doc = false;
    std::vector<CachedKey> keys;
    std::int64_t fresh_until_s = 0;
    std::optional<Error> failure;  // negative cache (only when !has_doc)
    std::int64_t negative_until_s = 0;
    bool in_flight = false;
    std::uint64_t fetch_seq = 0;
    std::vector<Waiter> waiters;
    bool suspect = false;  // a verify failed: the next lookup refetches
    std::optional<std::int64_t> last_fetch_started_s;
    std::list<std::string>::iterator lru;
  };

  Entry* find(const std::string& id_tag);
  Entry* insert(const std::string& id_tag);
  const CachedKey* find_valid(const Entry& e, std::string_view key_id, std::int64_t now_s) const;
  bool refetch_allowed(const Entry& e, std::int64_t now_s) const;
  void start_fetch(Entry& e, const std::string& id_tag, std::int64_t now_s);
  void on_fetched(const std::string& id_tag, std::uint64_t seq, KeyFetchResult result);

  RemoteKeysConfig config_;
  const Clock& clock_;
  KeyFetcher fetcher_;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> lru_;  // front = least recently used
  std::size_t fetches_started_ = 0;
  std::size_t in_flight_ = 0;
  std::shared_ptr<char> alive_ = std::make_shared<char>(0);
};

}  // namespace presd
