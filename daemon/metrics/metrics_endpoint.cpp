#include "daemon/metrics/metrics_endpoint.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string_view>

#include "daemon/base/log.hpp"
#include "lib/fd.hpp"

namespace tcpecho {

namespace {

constexpr double kTickSeconds = 1.0;
constexpr int kAcceptBudget = 16;

// The request before its blank line ("\r\n\r\n" or "\n\n"), searched from `from` on; a
// null view when it is not there yet.
std::string_view find_header_end(std::string_view data, std::size_t from) noexcept {
    for (std::string_view end : {std::string_view("\r\n\r\n"), std::string_view("\n\n")}) {
        if (auto at = data.find(end, from); at != std::string_view::npos) return data.substr(0, at);
    }
    return {};
}

}  // namespace

// --- MetricsSession ----------------------------------------------------------------------

MetricsSession::MetricsSession(MetricsEndpoint& endpoint, int fd, std::uint64_t now_ms) noexcept
    : endpoint_(endpoint), fd_(fd), accepted_ms_(now_ms) {}

MetricsSession::~MetricsSession() { finish(); }

void MetricsSession::finish() noexcept {
    done_ = true;
    if (fd_ < 0) return;
    // Closed at once; the object goes after this wake-up's events (MetricsEndpoint::on_ready),
    // so finished sessions never pile up beyond the cap however fast clients come and go.
    endpoint_.context().loop().unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
    std::string().swap(response_);
    endpoint_.source().open_sessions.fetch_sub(1, std::memory_order_relaxed);
    endpoint_.context().loop().defer(&endpoint_);
}

bool MetricsSession::expired(std::uint64_t now_ms) const noexcept {
    const std::uint64_t limit = responding_ ? MetricsEndpoint::kSessionTimeoutMs : MetricsEndpoint::kRequestTimeoutMs;
    return now_ms - accepted_ms_ >= limit;
}

void MetricsSession::on_io(std::uint32_t events) noexcept {
    if (done_) return;
    if (lingering_) {
        discard_input();
    } else if (responding_) {
        write_response();
    } else if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
        read_request();
    }
}

void MetricsSession::read_request() noexcept {
    for (;;) {
        if (used_ == request_.size()) {
            // Bounded: a request line that does not fit is too long; so are headers that do not.
            std::string_view seen(request_.data(), used_);
            if (seen.find('\n') == std::string_view::npos) {
                respond(414, "URI Too Long", "", "request line too long\n", false);
            } else {
                respond(431, "Request Header Fields Too Large", "", "request headers too large\n", false);
            }
            return;
        }
        IoResult r = recv_some(fd_, request_.data() + used_, request_.size() - used_);
        if (r.status == IoStatus::WouldBlock) return;
        if (r.status != IoStatus::Ok) {
            finish();  // EOF before a whole request, or an error: nothing to answer
            return;
        }
        // Only the new bytes (and the 3 before them) can complete the header's end.
        const std::size_t from = used_ >= 3 ? used_ - 3 : 0;
        used_ += r.bytes;
        std::string_view head = find_header_end(std::string_view(request_.data(), used_), from);
        if (head.data() != nullptr) {
            answer(head);
            return;
        }
    }
}

void MetricsSession::answer(std::string_view request) noexcept {
    std::string_view line = request.substr(0, request.find('\n'));
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
        respond(400, "Bad Request", "", "bad request line\n", false);
        return;
    }
    const std::string_view method = line.substr(0, sp1);
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        respond(400, "Bad Request", "", "HTTP/1.0 or HTTP/1.1 only\n", false);
        return;
    }
    const bool head = method == "HEAD";
    if (method != "GET" && !head) {
        respond(405, "Method Not Allowed", "Allow: GET, HEAD\r\n", "GET or HEAD only\n", false);
        return;
    }
    if (target.substr(0, target.find('?')) != "/metrics") {
        respond(404, "Not Found", "", "not found: the metrics are at /metrics\n", head);
        return;
    }
    std::string body;
    try {
        body = endpoint_.source().render();
    } catch (const std::exception&) {
        respond(500, "Internal Server Error", "", "cannot render the metrics\n", head);
        return;
    }
    endpoint_.context().counters().metrics_scrapes.add();
    respond(200, "OK", "", std::move(body), head);
}

void MetricsSession::respond(int status, std::string_view reason, std::string_view extra_headers, std::string body,
                             bool head) noexcept {
    try {
        response_ = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
        response_ += status == 200 ? "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                                   : "Content-Type: text/plain; charset=utf-8\r\n";
        response_ += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        response_ += extra_headers;
        response_ += "Connection: close\r\n\r\n";
        if (!head) response_ += body;
    } catch (const std::bad_alloc&) {
        finish();
        return;
    }
    if (status != 200) endpoint_.context().counters().metrics_errors.add();
    responding_ = true;
    write_response();
}

void MetricsSession::write_response() noexcept {
    while (sent_ < response_.size()) {
        IoResult r = send_some(fd_, response_.data() + sent_, response_.size() - sent_);
        if (r.status == IoStatus::WouldBlock) return;  // the EPOLLOUT edge continues
        if (r.status != IoStatus::Ok) break;
        sent_ += r.bytes;
    }
    if (sent_ < response_.size()) {
        finish();  // the client went away
        return;
    }
    // All sent. Closing with unread input (the rest of an oversized request, a pipelined one)
    // would send a reset, which can destroy the answer before the client reads it: send our
    // FIN and read until the client's (at most kMaxDiscardBytes, within the session's time).
    ::shutdown(fd_, SHUT_WR);
    lingering_ = true;
    discard_input();
}

void MetricsSession::discard_input() noexcept {
    for (;;) {
        IoResult r = recv_some(fd_, request_.data(), request_.size());
        if (r.status == IoStatus::WouldBlock) return;
        if (r.status != IoStatus::Ok) break;  // EOF (or an error): done
        discarded_ += r.bytes;
        if (discarded_ > kMaxDiscardBytes) break;
    }
    finish();
}

// --- MetricsEndpoint ---------------------------------------------------------------------

MetricsEndpoint::MetricsEndpoint(WorkerContext& context, std::shared_ptr<MetricsSource> source)
    : context_(context),
      source_(std::move(source)),
      tick_(context.loop(), [this] { sweep(); }),
      retry_(context.loop(), [this] {
          if (!stopped_ && start() != 0) pause_accepting();
      }) {}

MetricsEndpoint::~MetricsEndpoint() {
    stop();
    context_.loop().cancel_deferred(this);
}

void MetricsEndpoint::on_ready() noexcept {
    std::erase_if(sessions_, [](const std::unique_ptr<MetricsSession>& s) { return s->done(); });
    if (sessions_.empty()) tick_.stop();
}

int MetricsEndpoint::start() noexcept {
    if (watching_) return 0;
    if (int err = context_.loop().watch(source_->listen_fd, this, EPOLLIN | EPOLLEXCLUSIVE); err != 0) return err;
    watching_ = true;
    return 0;
}

void MetricsEndpoint::stop() noexcept {
    if (watching_) context_.loop().unwatch(source_->listen_fd);
    watching_ = false;
    stopped_ = true;
    retry_.stop();
    sessions_.clear();
    tick_.stop();
}

void MetricsEndpoint::pause_accepting() noexcept {
    if (watching_) context_.loop().unwatch(source_->listen_fd);
    watching_ = false;
    retry_.start(kRetrySeconds);
}

void MetricsEndpoint::on_io(std::uint32_t /*events*/) noexcept {
    for (int i = 0; i < kAcceptBudget; ++i) {
        AcceptResult r = accept_connection(source_->listen_fd);
        if (r.status == IoStatus::WouldBlock) return;
        if (r.status == IoStatus::Transient) continue;
        if (r.status != IoStatus::Ok) {
            // Out of fds (or memory): the socket is level-triggered, so watching it would
            // spin; look again in a while. The scraper waits in the backlog meanwhile.
            pause_accepting();
            return;
        }
        if (source_->open_sessions.fetch_add(1, std::memory_order_relaxed) >= kMaxScrapers) {
            source_->open_sessions.fetch_sub(1, std::memory_order_relaxed);
            ::close(r.fd);
            context_.counters().metrics_refused.add();
            continue;
        }
        MetricsSession* session = nullptr;
        try {
            sessions_.push_back(std::make_unique<MetricsSession>(*this, r.fd, context_.loop().now_ms()));
            session = sessions_.back().get();
        } catch (const std::bad_alloc&) {
            source_->open_sessions.fetch_sub(1, std::memory_order_relaxed);
            ::close(r.fd);
            continue;
        }
        if (context_.loop().watch(r.fd, session, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) != 0) {
            session->close_now();  // freed with the finished ones
            continue;
        }
        if (!tick_.active()) tick_.start(kTickSeconds, kTickSeconds);
    }
}

void MetricsEndpoint::sweep() noexcept {
    const std::uint64_t now = context_.loop().now_ms();
    std::erase_if(sessions_, [now](const std::unique_ptr<MetricsSession>& s) { return s->done() || s->expired(now); });
    if (sessions_.empty()) tick_.stop();
}

}  // namespace tcpecho
