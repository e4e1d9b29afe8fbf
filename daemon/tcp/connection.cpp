#include "daemon/tcp/connection.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <span>

#include "daemon/base/log.hpp"
#include "daemon/tcp/acceptor.hpp"
#include "daemon/tcp/buffer.hpp"
#include "daemon/tcp/tcp_context.hpp"
#include "lib/address.hpp"

namespace tcpecho {

namespace {

// Bytes one connection may read per wake-up before yielding to the others (h2o reads "up to
// 1MB at once"). Not measured yet as a separate tunable.
constexpr std::size_t kReadBudgetBytes = 1024 * 1024;
// Smallest free space worth a recv(); below it the buffer is compacted or grown first.
constexpr std::size_t kMinReadSpace = 16 * 1024;

}  // namespace

Connection::Connection(Acceptor& acceptor, int fd, std::uint64_t now_ms) noexcept
    : acceptor_(&acceptor), last_active_ms_(now_ms), fd_(fd) {}

std::string Connection::peer() const { return SocketAddress::peer_text(fd_); }

std::string Connection::log_tail() const { return peer_tail(peer(), acceptor_->listener().config().name); }

void Connection::on_io(std::uint32_t events) noexcept {
    if ((events & EPOLLRDHUP) != 0) flags_ |= kPeerRdhup;
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 && (flags_ & kWriteBlocked) != 0) {
        flags_ &= static_cast<std::uint8_t>(~kWriteBlocked);
        if (!flush()) return;
    }
    if ((events & EPOLLERR) != 0 && (flags_ & kMemoryPaused) != 0) {
        // Paused for memory, it does not read, so a recv() would never report the reset: ask
        // the socket. Holding a partial frame, it would otherwise keep its memory until
        // idle_timeout, and with every holder paused the budget could never drain.
        IoResult r = pending_error(fd_);
        if (r.status != IoStatus::WouldBlock) {
            fail(r, "recv");
            return;
        }
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read_input();
}

void Connection::on_ready() noexcept {
    if ((flags_ & kClosed) != 0) {
        acceptor_->context().free_connection(this);
        return;
    }
    read_input();
}

void Connection::touch() noexcept {
    std::uint64_t now = acceptor_->context().loop().now_ms();
    if (now == last_active_ms_) return;
    last_active_ms_ = now;
    IdleList& idle = acceptor_->idle();
    if (idle.back() != this) idle.push_back(*this);  // to the back: the most recently active
}

bool Connection::ensure_read_space() noexcept {
    if (buf_ == nullptr) {
        buf_ = acceptor_->context().buffers().acquire();
        if (buf_ == nullptr) return false;
    }
    if (buf_->writable() >= kMinReadSpace) return true;
    return acceptor_->context().buffers().reserve(*buf_, kMinReadSpace, acceptor_->max_buffer());
}

bool Connection::resume_after_memory_pause() noexcept {
    if ((flags_ & kMemoryPaused) == 0) return false;
    flags_ &= static_cast<std::uint8_t>(~kMemoryPaused);
    acceptor_->context().loop().defer(this);  // the EPOLLIN edge may have come and gone meanwhile
    return true;
}

void Connection::release_buffer_if_empty() noexcept {
    if (buf_ != nullptr && buf_->empty()) {
        acceptor_->context().buffers().release(buf_);
        buf_ = nullptr;
    }
}

void Connection::read_input() noexcept {
    if ((flags_ & (kReadPaused | kMemoryPaused | kPeerEof | kClosed)) != 0) return;
    WorkerStats& stats = acceptor_->context().counters();
    std::size_t budget = kReadBudgetBytes;
    for (;;) {
        if (!ensure_read_space()) {
            // Out of memory (the bounds cannot be hit: max_buffer covers the high watermark,
            // the largest frame and one read). Only this connection pays for it.
            if (acceptor_->context().may_log_peer_event()) {
                LOG_ERR("connection closed: cannot allocate its buffer %s", log_tail().c_str());
            }
            close(CloseReason::Internal);
            return;
        }
        BufferPool& pool = acceptor_->context().buffers();
        const BufferPool::ReadGrant grant = pool.begin_read(*buf_);
        if (grant.bytes == 0) {
            // max_buffer_memory is reached: this connection stops reading (what it holds is
            // still echoed) until the worker sees the budget has room again.
            flags_ |= kMemoryPaused;
            stats.memory_read_pauses.add();
            release_buffer_if_empty();
            acceptor_->context().on_memory_exhausted();
            return;
        }
        const std::size_t want = grant.bytes;
        IoResult r = recv_some(fd_, buf_->write_ptr(), want);
        if (r.status == IoStatus::Ok) buf_->commit(r.bytes);
        pool.finish_read(*buf_, grant);
        switch (r.status) {
        case IoStatus::Ok:
            break;
        case IoStatus::WouldBlock:
            release_buffer_if_empty();
            return;
        case IoStatus::Eof:
            on_eof();
            return;
        case IoStatus::PeerGone:
        case IoStatus::Error:
        case IoStatus::OutOfFds:  // accept results only
        case IoStatus::Transient:
        case IoStatus::Shed:
            fail(r, "recv");
            return;
        }
        stats.bytes_received.add(r.bytes);
        touch();
        if (!frame_input()) return;
        if (!flush()) return;
        if (ready_ >= acceptor_->limits().output_high_watermark) {
            // The peer is not reading its echo: stop reading until the output drains below the
            // low watermark (flush() resumes us), so memory stays bounded.
            flags_ |= kReadPaused;
            stats.read_pauses.add();
            return;
        }
        // A short read proves the socket is drained, unless the peer also shut down: then the
        // EOF is still to be read (and no further edge would announce it).
        if (r.bytes < want && (flags_ & kPeerRdhup) == 0) {
            release_buffer_if_empty();
            return;
        }
        if (r.bytes >= budget) {
            acceptor_->context().loop().defer(this);  // more may be waiting: continue after the others
            return;
        }
        budget -= r.bytes;
    }
}

bool Connection::frame_input() noexcept {
    const Framer& framer = acceptor_->listener().framer();
    if (framer.mode() == FramingMode::Raw) {
        ready_ = static_cast<std::uint32_t>(buf_->size());
        return true;
    }
    WorkerStats& stats = acceptor_->context().counters();
    std::size_t scanned = scanned_;
    for (;;) {
        std::span<const std::byte> rest(buf_->data() + ready_, buf_->size() - ready_);
        FrameResult f = framer.extract(rest, scanned);
        if (f.status == FrameResult::Status::Complete) {
            ready_ += static_cast<std::uint32_t>(f.size);
            stats.frames_echoed.add();
            continue;
        }
        if (f.status == FrameResult::Status::NeedMore) break;
        // TooLarge: this connection only; nothing was allocated for the claimed size.
        stats.frames_too_large.add();
        if (acceptor_->context().may_log_peer_event()) {
            LOG_WARNING("connection closed: frame too large %s mode=%s size=%llu max_frame=%u",
                        log_tail().c_str(), std::string(to_string(framer.mode())).c_str(), static_cast<unsigned long long>(f.size),
                        framer.max_frame());
        }
        // The whole frames before it are still echoed, as far as the socket takes them now.
        if (ready_ > 0 && (flags_ & kWriteBlocked) == 0) {
            IoResult r = send_some(fd_, buf_->data(), ready_);
            if (r.status == IoStatus::Ok) stats.bytes_sent.add(r.bytes);
        }
        close(CloseReason::FrameTooLarge);
        return false;
    }
    scanned_ = static_cast<std::uint32_t>(scanned);
    return true;
}

bool Connection::flush() noexcept {
    WorkerStats& stats = acceptor_->context().counters();
    if (ready_ > 0 && (flags_ & kWriteBlocked) == 0) {
        IoResult r = send_some(fd_, buf_->data(), ready_);
        switch (r.status) {
        case IoStatus::Ok:
            buf_->consume(r.bytes);
            ready_ -= static_cast<std::uint32_t>(r.bytes);
            stats.bytes_sent.add(r.bytes);
            // A short write means the socket buffer is full: the next send would only say
            // EAGAIN, so wait for the EPOLLOUT edge (registered once, at accept).
            if (ready_ > 0) flags_ |= kWriteBlocked;
            break;
        case IoStatus::WouldBlock:
            flags_ |= kWriteBlocked;
            break;
        case IoStatus::Eof:
        case IoStatus::PeerGone:
        case IoStatus::Error:
        case IoStatus::OutOfFds:  // accept results only
        case IoStatus::Transient:
        case IoStatus::Shed:
            fail(r, "send");
            return false;
        }
        touch();
    }
    if ((flags_ & kReadPaused) != 0 && ready_ <= acceptor_->limits().output_low_watermark) {
        // Resume by trying a read: the EPOLLIN edge may have come and gone while paused.
        flags_ &= static_cast<std::uint8_t>(~kReadPaused);
        acceptor_->context().loop().defer(this);
    }
    if (ready_ == 0) {
        if ((flags_ & kPeerEof) != 0) {
            // Everything is echoed: shut down our side too, then close.
            ::shutdown(fd_, SHUT_WR);
            close(CloseReason::Done);
            return false;
        }
        release_buffer_if_empty();
    }
    return true;
}

void Connection::on_eof() noexcept {
    flags_ |= kPeerEof;
    std::size_t incomplete = buf_ != nullptr ? buf_->size() - ready_ : 0;
    if (incomplete > 0) {
        acceptor_->context().counters().incomplete_frames_at_eof.add();
        if (acceptor_->context().may_log_peer_event()) {
            LOG_NOTICE("peer half-closed inside a frame; dropped %zu bytes %s", incomplete, log_tail().c_str());
        }
        buf_->truncate(ready_);
    }
    flush();  // closes once everything is echoed (now, or after the EPOLLOUT edges)
}

void Connection::fail(const IoResult& r, const char* op) noexcept {
    if (r.error == ETIMEDOUT) {
        // TCP_USER_TIMEOUT (send_timeout, set at accept) expired: the peer stopped
        // acknowledging its echo. Not an error of ours; one line per connection reclaimed.
        acceptor_->context().counters().send_timeouts.add();
        if (acceptor_->context().may_log_peer_event()) {
            LOG_INFO("connection closed: send timeout (echo unacknowledged for %llu ms) %s",
                     static_cast<unsigned long long>(acceptor_->limits().send_timeout_ms), log_tail().c_str());
        }
        close(CloseReason::PeerError);
        return;
    }
    if (r.error == ECONNRESET || r.error == EPIPE) {
        // The peer reset the connection (or closed it with our echo unread): how load balancer
        // health checks and many benchmark clients hang up. Its choice, not an error of ours:
        // counted apart, one line per connection at info (rate-limited), naming the peer.
        acceptor_->context().counters().connection_resets.add();
        if (log_enabled(LogLevel::Info) && acceptor_->context().may_log_peer_event()) {
            LOG_INFO("connection reset by peer (%s: %s) %s", op, errno_text(r.error).c_str(), log_tail().c_str());
        }
        close(CloseReason::PeerError);
        return;
    }
    acceptor_->context().counters().connection_errors.add();
    if (acceptor_->context().may_log_peer_event()) {
        if (r.status == IoStatus::Error) {
            LOG_WARNING("connection failed: %s: %s %s", op, errno_text(r.error).c_str(), log_tail().c_str());
        } else {
            LOG_INFO("connection lost: %s: %s %s", op, errno_text(r.error).c_str(), log_tail().c_str());
        }
    }
    close(CloseReason::PeerError);
}

void Connection::close(CloseReason reason) noexcept {
    if ((flags_ & kClosed) != 0) return;
    flags_ |= kClosed;
    TcpContext& w = acceptor_->context();
    WorkerStats& stats = w.counters();
    switch (reason) {
    case CloseReason::IdleTimeout:
        stats.idle_timeouts.add();
        break;
    case CloseReason::DrainForced:
        stats.drain_forced_closes.add();
        break;
    default:
        break;
    }
    w.loop().unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
    if (buf_ != nullptr) {
        w.buffers().release(buf_);
        buf_ = nullptr;
    }
    ListNode<IdleTag>::unlink();
    acceptor_->listener().remove_connection();
    stats.connections_closed.add();
    // Queued on the ready list: the loop still holds a pointer, so free it from there.
    if (!ready_queued()) w.free_connection(this);
}

}  // namespace tcpecho
