#include "daemon/tcp/acceptor.hpp"

#include "daemon/base/log.hpp"
#include "daemon/tcp/tcp_context.hpp"

namespace tcpecho {

namespace {

// Connections accepted per listener wake-up before other work gets a turn.
constexpr int kAcceptBudget = 64;

}  // namespace

Acceptor::Acceptor(TcpContext& context, std::shared_ptr<Listener> listener)
    : context_(&context), listener_(std::move(listener)) {
    const Limits& l = listener_->config().limits;
    max_buffer_ = std::size_t{l.output_high_watermark} + listener_->framer().largest_frame() + kPoolBufferSize;
}

void Acceptor::on_io(std::uint32_t /*events*/) noexcept {
    if (context_->memory_exhausted()) {
        // New connections would only wait for memory: leave them in the backlog.
        context_->on_memory_exhausted();
        return;
    }
    for (int i = 0; i < kAcceptBudget; ++i) {
        AcceptResult r = context_->accept_gate().accept(listener_->fd());
        switch (r.status) {
        case IoStatus::Ok:
            context_->add_connection(*this, r.fd);
            continue;
        case IoStatus::WouldBlock:
            return;
        case IoStatus::Shed:
            if (!context_->on_fds_exhausted(*this, false)) return;
            continue;
        case IoStatus::OutOfFds:
            context_->on_fds_exhausted(*this, true);
            return;
        case IoStatus::Transient:
            continue;
        case IoStatus::Eof:
        case IoStatus::PeerGone:
        case IoStatus::Error:
            if (context_->may_log_peer_event()) {
                LOG_ERR("accept failed: %s listener=%s", errno_text(r.error).c_str(),
                        listener_->config().name.c_str());
            }
            return;  // level-triggered: retried on the next iteration
        }
    }
}

}  // namespace tcpecho
