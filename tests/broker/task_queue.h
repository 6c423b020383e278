// A home executor for tests: tasks wait in a queue until the test runs them, as they would wait
// for the hub's thread.
#pragma once

#include <deque>
#include <functional>
#include <mutex>

#include "broker/broker.h"

namespace presd::test {

class TaskQueue {
 public:
  void post(Broker::Task t) {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(t));
  }
  // Runs queued tasks (and any they queue) until none is left; returns how many ran.
  std::size_t drain() {
    std::size_t n = 0;
    for (;;) {
      Broker::Task t;
      {
        std::lock_guard lock(mu_);
        if (tasks_.empty()) return n;
        t = std::move(tasks_.front());
        tasks_.pop_front();
      }
      t();
      ++n;
    }
  }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return tasks_.size();
  }
  auto poster() {
    return [this](Broker::Task t) { post(std::move(t)); };
  }

 private:
  std::mutex mu_;
  std::deque<Broker::Task> tasks_;
};

}  // namespace presd::test
