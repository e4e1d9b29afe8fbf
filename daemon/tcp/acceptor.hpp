// One thread's view of one TCP listener: it accepts from the shared listening socket and keeps
// that thread's connections of the listener, least recently active first (libev(3), "Be smart
// about timeouts", method 4: one idle timer per worker instead of one per connection).
#pragma once

#include <cstddef>
#include <memory>

#include "daemon/base/loop.hpp"
#include "daemon/tcp/connection.hpp"
#include "daemon/tcp/listener.hpp"
#include "lib/intrusive_list.hpp"

namespace tcpecho {

class TcpContext;

using IdleList = IntrusiveList<Connection, IdleTag>;

class Acceptor final : public IoHandler {
public:
    Acceptor(TcpContext& context, std::shared_ptr<Listener> listener);
    ~Acceptor() override = default;
    Acceptor(const Acceptor&) = delete;
    Acceptor& operator=(const Acceptor&) = delete;

    void on_io(std::uint32_t events) noexcept override;

    [[nodiscard]] TcpContext& context() const noexcept { return *context_; }
    [[nodiscard]] Listener& listener() const noexcept { return *listener_; }
    [[nodiscard]] const std::shared_ptr<Listener>& shared_listener() const noexcept { return listener_; }
    [[nodiscard]] const Limits& limits() const noexcept { return listener_->config().limits; }
    [[nodiscard]] std::size_t max_buffer() const noexcept { return max_buffer_; }
    IdleList& idle() noexcept { return idle_; }
    // Connection objects of this acceptor, closed ones waiting on the ready list included: a
    // retired acceptor (see Worker::apply) is freed only at 0, as they point to it.
    void object_created() noexcept { ++objects_; }
    void object_freed() noexcept { --objects_; }
    [[nodiscard]] bool unused() const noexcept { return objects_ == 0; }

private:
    TcpContext* context_;
    std::shared_ptr<Listener> listener_;
    IdleList idle_;
    std::size_t objects_ = 0;
    std::size_t max_buffer_;  // output_high_watermark + largest frame + one read
};

}  // namespace tcpecho
