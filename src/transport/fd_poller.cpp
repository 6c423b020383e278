#include "transport/fd_poller.h"

#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include <cerrno>
#include <cstring>

namespace presd::transport {

namespace asio = boost::asio;

namespace {
// Events taken per epoll_wait; a full batch yields to the I/O thread's other work before the next.
constexpr int kBatch = 128;
constexpr std::uint32_t kWatched = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

std::uint64_t make_key(std::uint32_t slot, std::uint32_t generation) {
  return (std::uint64_t{generation} << 32) | slot;
}
}  // namespace

struct FdPoller::Impl {
  Impl(asio::io_context& io_, int epfd) : io(io_), epoll(io_, epfd) {}
  asio::io_context& io;
  asio::posix::stream_descriptor epoll;  // owns the epoll fd
};

std::shared_ptr<FdPoller> FdPoller::create(asio::io_context& io) {
  auto p = std::shared_ptr<FdPoller>(new FdPoller(io));
  p->arm();
  return p;
}

FdPoller::FdPoller(asio::io_context& io) {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  impl_ = std::make_unique<Impl>(io, fd);
}

FdPoller::~FdPoller() = default;

FdPoller::Key FdPoller::add(int fd, std::shared_ptr<Target> target, std::error_code& ec) {
  ec.clear();
  if (closed_) {
    ec = std::make_error_code(std::errc::operation_canceled);
    return 0;
  }
  std::uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  const Key key = make_key(slot, slots_[slot].generation);
  epoll_event ev{};
  ev.events = kWatched;
  ev.data.u64 = key;
  if (::epoll_ctl(impl_->epoll.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) {
    ec = std::error_code(errno, std::generic_category());
    free_.push_back(slot);
    return 0;
  }
  slots_[slot].target = std::move(target);
  return key;
}

FdPoller::Slot* FdPoller::slot_of(Key key) {
  const auto slot = static_cast<std::uint32_t>(key);
  if (slot >= slots_.size() || slots_[slot].generation != static_cast<std::uint32_t>(key >> 32)) return nullptr;
  return &slots_[slot];
}

void FdPoller::remove(Key key, int fd) {
  Slot* s = slot_of(key);
  if (!s || !s->target) return;
  if (fd >= 0) ::epoll_ctl(impl_->epoll.native_handle(), EPOLL_CTL_DEL, fd, nullptr);
  // The target may be the caller: it is released once the caller's handler has returned.
  released_.push_back(std::move(s->target));
  ++s->generation;  // events already fetched for this slot are dropped
  free_.push_back(static_cast<std::uint32_t>(key));
  if (!dispatching_ && released_.size() == 1)
    asio::post(impl_->io, [self = shared_from_this()] { self->release_removed(); });
}

void FdPoller::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  impl_->epoll.cancel(ec);
  std::vector<Slot> slots;
  slots.swap(slots_);
  // Also the ones removed but not yet let go: the posted release may never run (the I/O loop is
  // stopped), and a target that holds its owner which holds this poller would leak.
  std::vector<std::shared_ptr<Target>> released;
  released.swap(released_);
  free_.clear();
  slots.clear();  // the targets go away here (their destructors close their sockets)
  released.clear();
}

// Moved out first: a target's destructor runs arbitrary owner code (connection accounting).
void FdPoller::release_removed() {
  std::vector<std::shared_ptr<Target>> released;
  released.swap(released_);
}

void FdPoller::arm() {
  impl_->epoll.async_wait(asio::posix::stream_descriptor::wait_read,
                          [self = shared_from_this()](boost::system::error_code ec) {
                            if (ec || self->closed_) return;
                            self->dispatch();
                          });
}

void FdPoller::dispatch() {
  epoll_event events[kBatch];
  const int n = ::epoll_wait(impl_->epoll.native_handle(), events, kBatch, 0);
  if (n < 0 && errno != EINTR) spdlog::error("transport: epoll_wait failed: {}", std::strerror(errno));
  // Re-arms (or continues) also when a target throws: otherwise no WebSocket would be read again.
  struct Done {
    FdPoller& p;
    bool full;
    ~Done() {
      p.dispatching_ = false;
      p.release_removed();
      if (p.closed_) return;
      if (full)
        asio::post(p.impl_->io, [self = p.shared_from_this()] {
          if (!self->closed_) self->dispatch();
        });
      else
        p.arm();
    }
  } done{*this, n == kBatch};
  dispatching_ = true;
  for (int i = 0; i < n && !closed_; ++i) {
    const Slot* s = slot_of(events[i].data.u64);
    // The target is kept alive by released_ if it removes itself.
    if (s && s->target) s->target->on_ready(events[i].events);
  }
}

}  // namespace presd::transport
