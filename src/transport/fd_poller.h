#pragma once
// Edge-triggered readiness for the sockets presd reads and writes itself (WebSockets after the
// opening handshake): one epoll set of its own, whose readiness Asio waits for.
//
// Why not Asio's async_wait per socket: Asio re-arms a socket's entry with an epoll_ctl call on
// every wait (it cannot know whether data came in between), one syscall per wake-up of every
// connection, 12% of the server's time per keep-alive ping in `perf`. Here each socket is
// registered once (EPOLLET) and a wake-up of many sockets costs one epoll_wait and one re-arm of
// this set's own entry.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>
#include <vector>

namespace boost::asio { class io_context; }

namespace presd::transport {

class FdPoller : public std::enable_shared_from_this<FdPoller> {
 public:
  // What a registered socket's owner implements. `events` is the epoll mask (EPOLLIN, EPOLLOUT,
  // EPOLLRDHUP, EPOLLHUP, EPOLLERR): edge-triggered, so an owner reads (or writes) until the
  // kernel says EAGAIN, or short of the buffer it offered, or comes back later by itself.
  class Target {
   public:
    virtual void on_ready(std::uint32_t events) = 0;

   protected:
    ~Target() = default;
  };
  using Key = std::uint64_t;  // slot and generation: an event for a removed target is dropped

  // Throws std::system_error (an edge: server start) if the kernel refuses an epoll set.
  static std::shared_ptr<FdPoller> create(boost::asio::io_context& io);
  ~FdPoller();
  FdPoller(const FdPoller&) = delete;
  FdPoller& operator=(const FdPoller&) = delete;

  // Watches fd for input, output space and hang-up until remove(); the poller keeps `target`
  // alive meanwhile. An fd already readable is reported at once.
  Key add(int fd, std::shared_ptr<Target> target, std::error_code& ec);
  // Stops watching (call before closing fd). The target is released after the current dispatch,
  // so a target may remove itself, or another, from its on_ready.
  void remove(Key key, int fd);
  // Drops every target without calling it, the removed ones not yet released too, and stops
  // waiting (the Server is going away; the I/O loop may not run again).
  void close();
  std::size_t size() const { return slots_.size() - free_.size(); }  // targets watched

 private:
  struct Slot {
    std::shared_ptr<Target> target;
    std::uint32_t generation = 0;
  };
  struct Impl;
  explicit FdPoller(boost::asio::io_context& io);
  void arm();
  void dispatch();
  void release_removed();
  Slot* slot_of(Key key);  // null for a stale key (its target was removed)

  std::unique_ptr<Impl> impl_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::vector<std::shared_ptr<Target>> released_;  // removed while dispatching
  bool dispatching_ = false;
  bool closed_ = false;
};

}  // namespace presd::transport
