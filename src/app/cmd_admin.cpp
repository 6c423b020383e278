// `presd tenant|keys|context ...`: administration straight on the store: the data dir's SQLite
// file, or the database `--store` (PRESD_STORE) names. Safe while `presd serve` runs (SQLite: WAL
// mode, busy timeout): access checks read the store, and every server on it notices other
// processes' commits within a second (the store's change counter), reloading keys and ending
// the live subscriptions of revoked members.
#include <CLI/CLI.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <iostream>

#include "app/commands.h"
#include "app/data_dir.h"
#include "common/clock.h"
#include "common/identifiers.h"
#include "common/time_format.h"
#include "keys/key_ring.h"
#include "membership/context_id.h"
#include "store/open_store.h"

namespace presd::app {
namespace json = boost::json;
namespace {

struct AdminOptions {
  std::string data_dir = "./data";
  std::string store_url;  // empty: <data-dir>/presd.db
  bool json = false;
};

[[noreturn]] void fail(const Error& e) {
  throw CLI::RuntimeError(std::string(to_string(e.code)) + ": " + e.message, 1);
}

template <typename T>
T must(Result<T> r) {
  if (!r) fail(r.error());
  return std::move(r).value();
}

void must(const Status& s) {
  if (!s) fail(s.error());
}

std::unique_ptr<Store> open_store(const AdminOptions& o) {
  DataDir dir{o.data_dir};
  auto where = parse_store_url(o.store_url, dir.db_path());
  if (!where) fail(where.error());
  if (where->backend == StoreBackend::sqlite && o.store_url.empty()) dir.ensure();
  try {
    return presd::open_store(*where);
  } catch (const std::runtime_error& e) {
    fail(Error(ErrorCode::unavailable, e.what()));
  }
}

void check_id_tag(const std::string& tag) {
  if (!is_canonical_id_tag(tag)) fail(Error(ErrorCode::bad_request, tag + " is not a canonical id_tag"));
}

json::object context_json(const Context& c) {
  return {{"id", c.id}, {"owner", c.owner}, {"creator", c.creator}, {"createdAt", iso8601_utc(c.created_at_s)}};
}

void print(const AdminOptions& o, const json::value& v, const std::string& text) {
  if (o.json)
    std::cout << json::serialize(v) << '\n';
  else if (!text.empty())
    std::cout << text << (text.back() == '\n' ? "" : "\n");
}

void add_common(CLI::App* cmd, AdminOptions& o) {
  cmd->add_option("--data-dir", o.data_dir, "Data directory")->capture_default_str();
  cmd->add_option("--store", o.store_url, "postgres://... or sqlite:PATH (default: <data-dir>/presd.db)")
      ->envname("PRESD_STORE");
  cmd->add_flag("--json", o.json, "Print JSON");
}

void add_tenant_commands(CLI::App& root, std::shared_ptr<AdminOptions> o) {
  CLI::App* tenant = root.add_subcommand("tenant", "Hosted id_tags");
  tenant->require_subcommand(1);
  auto tag = std::make_shared<std::string>();

  CLI::App* add = tenant->add_subcommand("add", "Host an id_tag and generate its first key");
  add->add_option("id_tag", *tag)->required();
  add_common(add, *o);
  add->callback([o, tag] {
    check_id_tag(*tag);
    auto store = open_store(*o);
    KeyRing ring(*store);
    must(ring.ensure_tenant(*tag, SystemClock().now_s()));
    const TenantKey* k = ring.signing_key(*tag);
    print(*o, json::object{{"idTag", *tag}, {"keyId", k->key_id}}, *tag + " key " + k->key_id);
  });

  CLI::App* list = tenant->add_subcommand("list", "List hosted id_tags");
  add_common(list, *o);
  list->callback([o] {
    auto store = open_store(*o);
    auto tags = must(store->list_tenants());
    json::array arr;
    std::string text;
    for (const auto& t : tags) {
      arr.push_back(json::value(t));
      text += t + "\n";
    }
    print(*o, arr, text);
  });
}

void add_key_commands(CLI::App& root, std::shared_ptr<AdminOptions> o) {
  CLI::App* keys = root.add_subcommand("keys", "Signing keys of hosted id_tags");
  keys->require_subcommand(1);
  auto tag = std::make_shared<std::string>();

  CLI::App* rotate = keys->add_subcommand("rotate", "Add a new signing key; old keys stay verifiable");
  rotate->add_option("id_tag", *tag)->required();
  add_common(rotate, *o);
  rotate->callback([o, tag] {
    auto store = open_store(*o);
    KeyRing ring(*store);
    std::string id = must(ring.rotate(*tag, SystemClock().now_s()));
    print(*o, json::object{{"idTag", *tag}, {"keyId", id}}, id);
  });

  CLI::App* list = keys->add_subcommand("list", "List an id_tag's keys, newest first");
  list->add_option("id_tag", *tag)->required();
  add_common(list, *o);
  list->callback([o, tag] {
    auto store = open_store(*o);
    KeyRing ring(*store);
    must(ring.load());
    auto me = ring.me_json(*tag, SystemClock().now_s());
    if (!me) fail(Error(ErrorCode::not_found, *tag + " is not hosted in " + o->data_dir));
    std::string text;
    for (const TenantKey& k : *ring.keys(*tag)) text += k.key_id + "  created " + iso8601_utc(k.created_at_s) + "\n";
    if (o->json)
      std::cout << *me << '\n';
    else
      std::cout << text;
  });
}

void add_context_commands(CLI::App& root, std::shared_ptr<AdminOptions> o) {
  CLI::App* ctx = root.add_subcommand("context", "Conversations (contexts) and their members");
  ctx->require_subcommand(1);
  struct Args {
    std::string id, owner, creator, user, role = "member";
  };
  auto a = std::make_shared<Args>();

  CLI::App* create = ctx->add_subcommand("create", "Create a context; prints its id");
  create->add_option("--id", a->id, "Context id (default: a new a1~ id)");
  create->add_option("--owner", a->owner, "Owner id_tag (the CONV's aud if set, else its issuer)")->required();
  create->add_option("--creator", a->creator, "Creator id_tag (the CONV issuer; default: owner)");
  add_common(create, *o);
  create->callback([o, a] {
    check_id_tag(a->owner);
    Context c{a->id.empty() ? generate_context_id() : a->id, a->owner, a->creator.empty() ? a->owner : a->creator,
              SystemClock().now_s()};
    check_id_tag(c.creator);
    if (!is_valid_context_id(c.id)) fail(Error(ErrorCode::bad_request, c.id + " is not a valid context id"));
    auto store = open_store(*o);
    must(store->create_context(c));
    print(*o, context_json(c), c.id);
  });

  CLI::App* del = ctx->add_subcommand("delete", "Delete a context and its memberships");
  del->add_option("context", a->id)->required();
  add_common(del, *o);
  del->callback([o, a] {
    auto store = open_store(*o);
    must(store->delete_context(a->id));
    print(*o, json::object{{"deleted", a->id}}, "deleted " + a->id);
  });

  CLI::App* grant = ctx->add_subcommand("grant", "Give a user a role in a context");
  grant->add_option("context", a->id)->required();
  grant->add_option("user", a->user)->required();
  grant->add_option("--role", a->role, "observer, member, moderator or admin")->capture_default_str();
  add_common(grant, *o);
  grant->callback([o, a] {
    check_id_tag(a->user);
    auto role = parse_role(a->role);
    if (!role) fail(Error(ErrorCode::bad_request, a->role + " is not a role (observer, member, moderator, admin)"));
    auto store = open_store(*o);
    must(store->grant(a->id, a->user, *role));
    print(*o, json::object{{"context", a->id}, {"idTag", a->user}, {"role", to_string(*role)}},
          a->user + " is " + a->role + " of " + a->id);
  });

  CLI::App* revoke = ctx->add_subcommand("revoke", "Remove a user's membership");
  revoke->add_option("context", a->id)->required();
  revoke->add_option("user", a->user)->required();
  add_common(revoke, *o);
  revoke->callback([o, a] {
    auto store = open_store(*o);
    must(store->revoke(a->id, a->user));
    print(*o, json::object{{"context", a->id}, {"idTag", a->user}, {"revoked", true}},
          "revoked " + a->user + " from " + a->id);
  });

  CLI::App* list = ctx->add_subcommand("list", "List contexts");
  add_common(list, *o);
  list->callback([o] {
    auto store = open_store(*o);
    json::array arr;
    std::string text;
    for (const Context& c : must(store->list_contexts())) {
      arr.push_back(context_json(c));
      text += c.id + "  owner " + c.owner + "  creator " + c.creator + "\n";
    }
    print(*o, arr, text);
  });

  CLI::App* show = ctx->add_subcommand("show", "Show a context and its members");
  show->add_option("context", a->id)->required();
  add_common(show, *o);
  show->callback([o, a] {
    auto store = open_store(*o);
    auto c = must(store->find_context(a->id));
    if (!c) fail(Error(ErrorCode::context_unknown, a->id + " does not exist"));
    json::object out = context_json(*c);
    json::array members;
    std::string text = c->id + "\n  owner   " + c->owner + "\n  creator " + c->creator + "\n";
    for (const Member& m : must(store->list_members(a->id))) {
      members.push_back(json::object{{"idTag", m.id_tag}, {"role", to_string(m.role)}, {"deleted", m.deleted}});
      text += "  " + m.id_tag + "  " + std::string(to_string(m.role)) + (m.deleted ? "  (revoked)" : "") + "\n";
    }
    out["members"] = std::move(members);
    print(*o, out, text);
  });
}

}  // namespace

void add_admin_commands(CLI::App& root) {
  auto o = std::make_shared<AdminOptions>();
  add_tenant_commands(root, o);
  add_key_commands(root, o);
  add_context_commands(root, o);
}

}  // namespace presd::app
