// The Prometheus endpoint's HTTP side, on a worker's loop: GET /metrics answers with the text
// the service renders (see MetricsSource); other paths 404, other methods 405.
//
// It is an attack surface with no authentication, so everything is bounded: a request may be
// kMaxRequestBytes (a longer request line gets 414, longer headers 431, then a close); it must
// arrive within kRequestTimeoutMs and the answer leave within kSessionTimeoutMs of the accept;
// at most kMaxScrapers sessions are open in the whole process (more are closed at once and
// counted). A session holds one fixed buffer for the request: nothing is allocated per byte a
// client sends. One answer per connection (Connection: close), as Prometheus scrapes.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/base/loop.hpp"
#include "daemon/base/worker_context.hpp"

namespace tcpecho {

// What all workers' endpoints share: the socket, the renderer, the scraper count.
struct MetricsSource {
    int listen_fd = -1;
    // The exposition text. Called on a worker thread: it must be thread-safe.
    std::function<std::string()> render;
    std::atomic<unsigned> open_sessions{0};
};

class MetricsEndpoint;

class MetricsSession final : public IoHandler {
public:
    static constexpr std::size_t kMaxRequestBytes = 8192;
    // After the answer: input read and dropped before the close, at most.
    static constexpr std::size_t kMaxDiscardBytes = 1 << 20;

    MetricsSession(MetricsEndpoint& endpoint, int fd, std::uint64_t now_ms) noexcept;
    ~MetricsSession() override;
    MetricsSession(const MetricsSession&) = delete;
    MetricsSession& operator=(const MetricsSession&) = delete;

    void on_io(std::uint32_t events) noexcept override;
    // Closes without answering (the session could not be watched).
    void close_now() noexcept { finish(); }
    [[nodiscard]] int fd() const noexcept { return fd_; }
    [[nodiscard]] bool done() const noexcept { return done_; }
    // Past its deadline (`now_ms`: the loop's clock): it is to be closed. Checked by the
    // endpoint's tick, which also frees finished sessions.
    [[nodiscard]] bool expired(std::uint64_t now_ms) const noexcept;

private:
    void read_request() noexcept;
    // Answers what the request asks for; the response is then written out.
    void answer(std::string_view request) noexcept;
    void respond(int status, std::string_view reason, std::string_view extra_headers, std::string body,
                 bool head) noexcept;
    void write_response() noexcept;
    void discard_input() noexcept;
    // Closes the connection now (idempotent).
    void finish() noexcept;

    MetricsEndpoint& endpoint_;
    int fd_;
    std::uint64_t accepted_ms_;
    std::size_t used_ = 0;
    bool responding_ = false;
    bool lingering_ = false;  // answer sent, our side shut: reading to the client's EOF
    std::size_t discarded_ = 0;
    bool done_ = false;
    std::string response_;
    std::size_t sent_ = 0;
    std::array<char, kMaxRequestBytes> request_{};
};

// One worker's part: watches the shared listening socket, accepts, keeps its sessions.
class MetricsEndpoint final : public IoHandler {
public:
    static constexpr unsigned kMaxScrapers = 16;
    static constexpr std::uint64_t kRequestTimeoutMs = 5'000;
    static constexpr std::uint64_t kSessionTimeoutMs = 10'000;

    MetricsEndpoint(WorkerContext& context, std::shared_ptr<MetricsSource> source);
    ~MetricsEndpoint() override;
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    // Watching the listening socket (level-triggered, EPOLLEXCLUSIVE like the echo listeners).
    // 0, or the errno of epoll_ctl.
    [[nodiscard]] int start() noexcept;
    // Stops accepting and closes every session (drain).
    void stop() noexcept;
    void on_io(std::uint32_t events) noexcept override;
    // After a wake-up's events: frees the sessions that finished in it.
    void on_ready() noexcept override;

    [[nodiscard]] WorkerContext& context() noexcept { return context_; }
    [[nodiscard]] MetricsSource& source() noexcept { return *source_; }

private:
    void sweep() noexcept;
    // Out of descriptors: stop watching the socket for kRetrySeconds (no spinning on it).
    void pause_accepting() noexcept;
    static constexpr double kRetrySeconds = 0.1;

    WorkerContext& context_;
    std::shared_ptr<MetricsSource> source_;
    std::vector<std::unique_ptr<MetricsSession>> sessions_;
    Timer tick_;
    Timer retry_;
    bool watching_ = false;
    bool stopped_ = false;
};

}  // namespace tcpecho
