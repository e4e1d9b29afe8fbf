// One accepted TCP connection on one worker: the edge-triggered read/echo/write state machine.
//
// Owns its socket and, only while it holds bytes, one buffer from the worker's pool. The buffer
// holds [whole frames to send | incomplete frame | free]; whole frames are sent straight from
// it (no copy into a separate output buffer). Lives in the worker's connection pool.
#pragma once

#include <cstdint>

#include "daemon/base/loop.hpp"
#include "lib/fd.hpp"
#include "lib/intrusive_list.hpp"

namespace tcpecho {

class Acceptor;
class Buffer;

// Tag of the acceptor's idle list (see Acceptor).
struct IdleTag;

class Connection final : public IoHandler, public ListNode<IdleTag> {
public:
    Connection(Acceptor& acceptor, int fd, std::uint64_t now_ms) noexcept;
    ~Connection() override = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void on_io(std::uint32_t events) noexcept override;
    void on_ready() noexcept override;

    // Why a connection ends; decides the log line and the counter.
    enum class CloseReason : std::uint8_t { Done, PeerError, FrameTooLarge, IdleTimeout, Drained, DrainForced, Internal };
    // Closes now (idempotent); the object is freed now or, if queued on the ready list, there.
    void close(CloseReason reason) noexcept;

    // Reading again after a max_buffer_memory pause (Worker, once the budget has room); false if
    // this connection was not paused for memory.
    bool resume_after_memory_pause() noexcept;

    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] bool holds_data() const noexcept { return buf_ != nullptr; }
    [[nodiscard]] std::uint64_t last_active_ms() const noexcept { return last_active_ms_; }
    [[nodiscard]] Acceptor& acceptor() const noexcept { return *acceptor_; }
    // "192.0.2.1:40000", also after a reset ("unknown" once closed): for log lines.
    [[nodiscard]] std::string peer() const;
    // "peer=... listener=...": the end of every log line about this connection.
    [[nodiscard]] std::string log_tail() const;


private:
    enum Flag : std::uint8_t {
        kWriteBlocked = 1U << 0,  // send() would block: wait for the EPOLLOUT edge
        kReadPaused = 1U << 1,    // output above the high watermark: not reading (backpressure)
        kPeerRdhup = 1U << 2,     // EPOLLRDHUP seen: a short read does not prove the socket drained
        kPeerEof = 1U << 3,       // recv() returned 0: echo what is pending, then close
        kClosed = 1U << 4,        // closed; waiting on the ready list to be freed
        kMemoryPaused = 1U << 5,  // max_buffer_memory reached: not reading until the worker resumes us
    };

    void read_input() noexcept;
    // Finds whole frames after the ready region. False if the connection was closed.
    bool frame_input() noexcept;
    // Sends the ready region. False if the connection was closed (or finished).
    bool flush() noexcept;
    void on_eof() noexcept;
    void fail(const IoResult& r, const char* op) noexcept;
    void touch() noexcept;
    void release_buffer_if_empty() noexcept;
    bool ensure_read_space() noexcept;

    Acceptor* acceptor_;
    Buffer* buf_ = nullptr;
    std::uint64_t last_active_ms_;
    std::uint32_t ready_ = 0;    // bytes at the front of buf_ that may be sent (whole frames / raw bytes)
    std::uint32_t scanned_ = 0;  // line mode: bytes after ready_ already searched for '\n'
    int fd_;
    std::uint8_t flags_ = 0;
};

}  // namespace tcpecho
