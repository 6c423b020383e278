#include "federation/remote_keys.h"

#include <algorithm>
#include <utility>

#include "common/identifiers.h"
#include "federation/me_document.h"

namespace presd {
namespace {

// A canonical id_tag whose last label is not all digits: "1.2.3.4" is LDH-valid but no domain
// (no TLD is numeric), and cl-o.1.2.3.4 must not look like an address to any resolver.
bool fetchable_id_tag(std::string_view id_tag) {
  if (!is_canonical_id_tag(id_tag)) return false;
  const std::string_view tld = id_tag.substr(id_tag.rfind('.') + 1);
  return tld.find_first_not_of("0123456789") != std::string_view::npos;
}

}  // namespace

RemoteKeys::RemoteKeys(RemoteKeysConfig config, const Clock& clock, KeyFetcher fetcher)
    : config_(config), clock_(clock), fetcher_(std::move(fetcher)) {
  config_.max_ttl_s = std::max<std::int64_t>(1, config_.max_ttl_s);
  config_.default_ttl_s = std::clamp<std::int64_t>(config_.default_ttl_s, 1, config_.max_ttl_s);
  config_.negative_ttl_s = std::clamp<std::int64_t>(config_.negative_ttl_s, 0, config_.max_ttl_s);
  config_.unavailable_ttl_s = std::clamp<std::int64_t>(config_.unavailable_ttl_s, 0, config_.max_ttl_s);
  config_.refetch_min_interval_s = std::max<std::int64_t>(0, config_.refetch_min_interval_s);
  config_.max_issuers = std::max<std::size_t>(1, config_.max_issuers);
  config_.max_concurrent_fetches = std::max<std::size_t>(1, config_.max_concurrent_fetches);
}

RemoteKeys::Entry* RemoteKeys::find(const std::string& id_tag) {
  const auto it = entries_.find(id_tag);
  return it == entries_.end() ? nullptr : &it->second;
}

RemoteKeys::Entry* RemoteKeys::insert(const std::string& id_tag) {
  if (entries_.size() >= config_.max_issuers) {
    // Evict the least recently used entry that has no fetch in flight. In-flight entries are at
    // most max_concurrent_fetches, so this scan is short.
    auto victim = std::find_if(lru_.begin(), lru_.end(), [&](const std::string& tag) {
      return !entries_.at(tag).in_flight;
    });
    if (victim == lru_.end()) return nullptr;
    entries_.erase(*victim);
    lru_.erase(victim);
  }
  Entry& e = entries_[id_tag];
  e.lru = lru_.insert(lru_.end(), id_tag);
  return &e;
}

const RemoteKeys::CachedKey* RemoteKeys::find_valid(const Entry& e, std::string_view key_id, std::int64_t now_s) const {
  for (const CachedKey& k : e.keys) {
    if (k.key_id == key_id) return now_s < k.valid_until_s ? &k : nullptr;
  }
  return nullptr;
}

bool RemoteKeys::refetch_allowed(const Entry& e, std::int64_t now_s) const {
  return !e.last_fetch_started_s || now_s - *e.last_fetch_started_s >= config_.refetch_min_interval_s;
}

void RemoteKeys::lookup(const std::string& id_tag, const std::string& key_id, Done done) {
  if (!fetchable_id_tag(id_tag)) {
    done(Error(ErrorCode::token_unknown_key, "issuer is not a canonical domain id_tag; no key fetched"));
    return;
  }
  const std::int64_t now = clock_.now_s();
  Entry* e = find(id_tag);
  if (e) lru_.splice(lru_.end(), lru_, e->lru);  // most recently used

  const bool fresh = e && e->has_doc && now < e->fresh_until_s;
  if (fresh && !e->suspect) {
    if (const CachedKey* k = find_valid(*e, key_id, now)) {
      done(k->key);
      return;
    }
  }
  if (e && e->in_flight) {
    if (e->waiters.size() >= config_.max_waiters_per_issuer) {
      done(Error(ErrorCode::unavailable, "too many lookups waiting for the keys of " + id_tag));
      return;
    }
    e->waiters.push_back({key_id, std::move(done)});
    return;
  }
  if (fresh && !e->suspect) {
    // The key id is not in a fresh document: refetch (rotation) unless one happened recently.
    if (!refetch_allowed(*e, now)) {
      done(Error(ErrorCode::token_unknown_key,
                 id_tag + " publishes no valid key \"" + key_id.substr(0, 64) + "\" (keys fetched " +
                     std::to_string(now - e->last_fetch_started_s.value_or(now)) + " s ago)"));
      return;
    }
  } else if (!fresh && e && e->failure && now < e->negative_until_s) {
    Error err = *e->failure;
    err.message += " (cached for " + std::to_string(e->negative_until_s - now) + " s more)";
    done(std::move(err));
    return;
  }
  if (in_flight_ >= config_.max_concurrent_fetches) {
    done(Error(ErrorCode::unavailable, "too many key fetches in progress; keys of " + id_tag + " not fetched"));
    return;
  }
  if (!e) {
    e = insert(id_tag);
    if (!e) {
      done(Error(ErrorCode::unavailable, "remote key cache is full"));
      return;
    }
  }
  e->waiters.push_back({key_id, std::move(done)});
  start_fetch(*e, id_tag, now);  // may complete inline; e must not be used afterwards
}

bool RemoteKeys::invalidate_after_failed_verify(const std::string& id_tag) {
  Entry* e = find(id_tag);
  if (!e) return false;
  const std::int64_t now = clock_.now_s();
  if (e->in_flight) {
    e->suspect = true;  // later lookups wait for the fetch under way instead of using the cache
    return true;
  }
  if (!e->has_doc) return false;              // negative-cached: nothing to refetch
  if (now >= e->fresh_until_s) return true;    // stale: the next lookup fetches anyway
  if (!refetch_allowed(*e, now)) return false;
  e->suspect = true;
  return true;
}

void RemoteKeys::start_fetch(Entry& e, const std::string& id_tag, std::int64_t now_s) {
  e.in_flight = true;
  const std::uint64_t seq = ++e.fetch_seq;
  e.last_fetch_started_s = now_s;
  ++fetches_started_;
  ++in_flight_;
  auto called = std::make_shared<bool>(false);
  std::weak_ptr<char> alive = alive_;
  fetcher_(id_tag, [this, alive, called, id_tag, seq](KeyFetchResult result) {
    if (alive.expired() || *called) return;
    *called = true;
    on_fetched(id_tag, seq, std::move(result));
  });
}

void RemoteKeys::on_fetched(const std::string& id_tag, std::uint64_t seq, KeyFetchResult result) {
  --in_flight_;
  Entry* e = find(id_tag);
  if (!e || !e->in_flight || e->fetch_seq != seq) return;
  e->in_flight = false;
  e->suspect = false;
  const std::int64_t now = clock_.now_s();
  const std::string url = "https://" + me_document_host(id_tag) + std::string(kMeDocumentPath);

  std::optional<Error> failure;
  std::int64_t failure_ttl = config_.negative_ttl_s;
  if (result.transport_error) {
    failure = Error(ErrorCode::unavailable, "fetching " + url + " failed: " + result.transport_error->message);
    failure_ttl = config_.unavailable_ttl_s;
  } else if (result.http_status == 200) {
    auto doc = parse_me_document(result.body, id_tag, now);
    if (doc) {
      const std::int64_t fresh_until = now + config_.default_ttl_s;
      e->has_doc = true;
      e->fresh_until_s = fresh_until;
      e->failure.reset();
      e->keys.clear();
      for (RemoteKey& k : doc->keys)
        e->keys.push_back({std::move(k.key_id), std::move(k.key), std::min(k.expires_at_s.value_or(fresh_until), fresh_until)});
    } else {
      failure = doc.error();
    }
  } else if (result.http_status == 429 || result.http_status >= 500) {
    failure = Error(ErrorCode::unavailable, url + " answered HTTP " + std::to_string(result.http_status));
    failure_ttl = config_.unavailable_ttl_s;
  } else {
    failure = Error(ErrorCode::token_unknown_key, url + " answered HTTP " + std::to_string(result.http_status));
  }
  const bool fresh = e->has_doc && now < e->fresh_until_s;
  if (failure && !fresh) {
    e->has_doc = false;
    e->keys.clear();
    e->failure = failure;
    e->negative_until_s = now + failure_ttl;
  }

  // Work out every answer before calling anyone: a callback may look up or evict entries.
  std::vector<Waiter> waiters = std::move(e->waiters);
  e->waiters.clear();
  std::vector<std::pair<Done, Result<Es384PublicKey>>> answers;
  answers.reserve(waiters.size());
  for (Waiter& w : waiters) {
    const CachedKey* k = fresh ? find_valid(*e, w.key_id, now) : nullptr;
    if (k) {
      answers.emplace_back(std::move(w.done), k->key);
    } else if (failure) {
      answers.emplace_back(std::move(w.done), *failure);
    } else {
      answers.emplace_back(std::move(w.done), Error(ErrorCode::token_unknown_key,
                                                    id_tag + " publishes no valid key \"" + w.key_id.substr(0, 64) + "\""));
    }
  }
  for (auto& [done, answer] : answers) done(std::move(answer));
}

}  // namespace presd
