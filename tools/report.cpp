#include "tools/report.hpp"

#include <algorithm>
#include <cinttypes>

#include "build_config.hpp"
#include "tools/report_shared.hpp"

namespace tcpecho::probe {

std::string_view to_string(FailureKind kind) noexcept {
    switch (kind) {
    case FailureKind::Mismatch:
        return "mismatch";
    case FailureKind::Missing:
        return "missing";
    case FailureKind::Extra:
        return "extra";
    case FailureKind::ShortRead:
        return "short_read";
    case FailureKind::Timeout:
        return "timeout";
    case FailureKind::Reset:
        return "reset";
    case FailureKind::Connect:
        return "connect";
    }
    return "?";
}

int exit_status_of(FailureKind kind) noexcept {
    switch (kind) {
    case FailureKind::Mismatch:
    case FailureKind::Missing:
    case FailureKind::Extra:
    case FailureKind::ShortRead:
        return kExitMismatch;
    case FailureKind::Timeout:
    case FailureKind::Reset:
    case FailureKind::Connect:
        return kExitNetwork;
    }
    return kExitNetwork;
}

namespace {

constexpr unsigned kTcpInfoShown = 4;

std::string size_text(const Options& o) {
    std::string text = payload_size_text(o);
    if (o.shape.mode == FramingMode::Length) text += " + 4-byte header";
    if (o.shape.mode == FramingMode::Line) text += " + '\\n'";
    return text;
}

struct Totals {
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_verified = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_verified = 0;
    unsigned failed = 0;
};

Totals totals_of(const RunResult& r) {
    Totals t;
    for (const ConnectionResult& c : r.connections) {
        t.messages_sent += c.messages_sent;
        t.messages_verified += c.messages_verified;
        t.bytes_sent += c.bytes_sent;
        t.bytes_verified += c.bytes_verified;
        if (c.failure) ++t.failed;
    }
    return t;
}

}  // namespace

void print_header(std::FILE* out, const Options& o) {
    const std::string amount = amount_text(o, "message", "messages");
    std::fprintf(out, "PROBE %s port %s: mode %s, %s, %u connection%s x %s of %s, recv %s, seed %" PRIu64 "\n",
                 o.host.c_str(), o.port.c_str(), std::string(to_string(o.shape.mode)).c_str(),
                 std::string(to_string(o.workload)).c_str(), o.connections, o.connections == 1 ? "" : "s",
                 amount.c_str(), size_text(o).c_str(), to_string(o.recv, o.lowat).c_str(), o.seed);
    std::fflush(out);
}

void print_progress(std::FILE* out, const Progress& now, const Progress& before) {
    double dt = now.seconds - before.seconds;
    std::string lost;
    if (now.lost > 0) lost = "  " + std::to_string(now.lost) + " lost";
    std::fprintf(out, "[%6.1fs] %10.0f msgs/s %10.2f MiB/s  %" PRIu64 " verified%s%s\n", now.seconds,
                 per_second(now.messages_verified - before.messages_verified, dt),
                 per_second(now.bytes_verified - before.bytes_verified, dt) / (1 << 20), now.messages_verified,
                 lost.c_str(), now.failed_connections > 0 ? "  FAILING" : "");
    std::fflush(out);
}

void print_failures(std::FILE* err, const Options& o, const RunResult& r) {
    // Connection failures usually share one cause: one line per distinct message.
    std::vector<std::pair<std::string, unsigned>> connect_errors;
    bool verification_or_network = false;
    for (const ConnectionResult& c : r.connections) {
        if (!c.failure) continue;
        const Failure& f = *c.failure;
        if (f.kind == FailureKind::Connect) {
            auto same = std::find_if(connect_errors.begin(), connect_errors.end(),
                                     [&](const auto& e) { return e.first == f.detail; });
            if (same == connect_errors.end()) connect_errors.emplace_back(f.detail, 1);
            else same->second++;
            continue;
        }
        verification_or_network = true;
        std::fprintf(err,
                     "tcpecho-probe: connection %u, message %" PRIu64 ", stream offset %" PRIu64 ": %s: %s\n",
                     f.connection, f.message, f.offset, std::string(to_string(f.kind)).c_str(), f.detail.c_str());
        if (!f.expected.empty() || !f.received.empty()) {
            std::fprintf(err, "  expected: %s\n  received: %s\n", f.expected.c_str(), f.received.c_str());
        }
    }
    for (const auto& [detail, count] : connect_errors) {
        std::fprintf(err, "tcpecho-probe: %u connection%s: %s\n", count, count == 1 ? "" : "s", detail.c_str());
    }
    if (verification_or_network) {
        std::fprintf(err, "tcpecho-probe: to repeat this run exactly: --seed %" PRIu64 "\n", o.seed);
    }
}

void print_summary(std::FILE* out, const Options& o, const RunResult& r) {
    const Totals t = totals_of(r);
    const Measurements& m = r.totals;
    std::fprintf(out, "--- %s tcpecho-probe statistics ---\n", r.peer.c_str());
    std::fprintf(out, "messages: %" PRIu64 " sent, %" PRIu64 " verified\n", t.messages_sent, t.messages_verified);
    const bool framed = o.shape.mode == FramingMode::Length || o.shape.mode == FramingMode::Line;
    std::fprintf(out, "bytes:    %" PRIu64 " sent, %" PRIu64 " verified%s\n", t.bytes_sent, t.bytes_verified,
                 framed ? " (framing included)" : "");
    print_rate(out, r.seconds, t.messages_verified, "msgs", t.bytes_verified);
    print_latency(out, m.latency_ns, o.rate > 0 ? " (from each message's scheduled send time)" : "");
    const LogLinearHistogram& calls = m.recv_calls_per_message;
    std::fprintf(out, "recv():   %" PRIu64 " calls returned data, %" PRIu64 " returned EAGAIN", m.recv_calls,
                 m.recv_eagain);
    if (calls.count() > 0) {
        std::fprintf(out, "; calls per message: mean %.2f, max %" PRIu64, calls.mean(), calls.max());
        if (o.workload == Workload::Stream && m.recv_calls > 0) {
            std::fprintf(out, "; messages per call: mean %.1f",
                         static_cast<double>(t.messages_verified) / static_cast<double>(m.recv_calls));
        }
    }
    std::fprintf(out, "\n");
    if (m.recv_calls > 0) {
        std::fprintf(out, "  sizes:  min %" PRIu64 ", p50 %" PRIu64 ", max %" PRIu64 "; most frequent:",
                     m.recv_size.min(), m.recv_size.quantile(0.5), m.recv_size.max());
        for (const auto& e : m.recv_size_counts.top(5)) {
            std::fprintf(out, " %" PRIu64 " x%" PRIu64, e.value, e.count);
        }
        std::fprintf(out, "\n  histogram of recv() sizes:");
        for (const auto& bin : m.recv_size.power_of_two_bins()) {
            std::fprintf(out, " [%" PRIu64 "-%" PRIu64 "] %" PRIu64, bin.low, bin.high, bin.count);
        }
        std::fprintf(out, "\n");
    }
    if (o.recv == RecvMode::LowAt) {
        std::fprintf(out, "  SO_RCVLOWAT %u (lowered to the bytes still due near a message's end): %" PRIu64
                          " setsockopt calls\n",
                     o.lowat, m.lowat_changes);
    }
    if (calls.count() > 0 && calls.max() > 1 && o.recv != RecvMode::Once) {
        std::fprintf(out,
                     "  note: some messages took more than one recv(): TCP delivers a byte stream in pieces, "
                     "not messages\n");
    }
    unsigned shown = 0;
    for (const ConnectionResult& c : r.connections) {
        if (!c.tcp_info.valid || shown == kTcpInfoShown) continue;
        ++shown;
        const TcpInfo& i = c.tcp_info;
        std::fprintf(out,
                     "tcp_info: conn %u (%s): mss %u, rcv_mss %u, advmss %u, rtt %u us, rttvar %u us, snd_cwnd %u, "
                     "total_retrans %u, reordering %u, rcv_ooopack %u, rcv_space %u; first recv() sizes:",
                     c.id, c.local.c_str(), i.snd_mss, i.rcv_mss, i.advmss, i.rtt_us, i.rttvar_us, i.snd_cwnd,
                     i.total_retrans, i.reordering, i.rcv_ooopack, i.rcv_space);
        for (std::uint64_t s : c.first_recv_sizes) std::fprintf(out, " %" PRIu64, s);
        if (c.first_recv_sizes.empty()) std::fprintf(out, " none");
        std::fprintf(out, "\n");
    }
    if (r.connections.size() > shown && shown == kTcpInfoShown) {
        std::fprintf(out, "tcp_info: %zu more connections in the -J report\n", r.connections.size() - shown);
    }
    if (r.interrupted) {
        std::fprintf(out, t.failed == 0 ? "interrupted: stopped sending early, everything sent was checked\n"
                                        : "interrupted: stopped sending early\n");
    }
    int status = r.exit_status();
    if (status == kExitOk) {
        std::fprintf(out, "RESULT: OK, every byte verified (seed %" PRIu64 ")\n", o.seed);
    } else {
        std::fprintf(out, "RESULT: FAILED (exit %d): %u of %zu connection%s failed (seed %" PRIu64 ")\n", status,
                     t.failed, r.connections.size(), r.connections.size() == 1 ? "" : "s", o.seed);
    }
}

std::string json_report(const Options& o, const RunResult& r) {
    const Totals t = totals_of(r);
    const Measurements& m = r.totals;
    JsonWriter j;
    j.begin_object();
    j.value("tool", "tcpecho-probe");
    j.value("version", TCPECHO_VERSION);

    target_json(j, o, r.peer);

    j.begin_object("options");
    j.value("mode", to_string(o.shape.mode));
    j.value("size_min", o.shape.size_min);
    j.value("size_max", o.shape.size_max);
    if (o.count) j.value("count", *o.count); else j.null("count");
    if (o.time_us) j.value("time_s", static_cast<double>(*o.time_us) / 1e6); else j.null("time_s");
    j.value("connections", o.connections);
    j.value("threads", o.threads);
    j.value("workload", to_string(o.workload));
    j.value("window", o.window);
    j.value("rate", o.rate);
    j.value("split", o.split);
    j.value("split_delay_us", o.split_delay_us);
    j.value("seed", o.seed);
    j.value("recv", to_string(o.recv, o.lowat));
    j.value("timeout_s", static_cast<double>(o.timeout_us) / 1e6);
    j.end_object();

    const int status = r.exit_status();
    j.begin_object("result");
    j.value("status", status == kExitOk ? "ok" : "failed");
    j.value("exit_code", status);
    j.value("failed_connections", t.failed);
    j.value("interrupted", r.interrupted);
    j.end_object();

    j.begin_array("errors");
    for (const ConnectionResult& c : r.connections) {
        if (!c.failure) continue;
        const Failure& f = *c.failure;
        j.begin_object();
        j.value("connection", f.connection);
        j.value("kind", to_string(f.kind));
        j.value("exit_code", exit_status_of(f.kind));
        j.value("message", f.message);
        j.value("offset", f.offset);
        j.value("detail", f.detail);
        j.value("expected", f.expected);
        j.value("received", f.received);
        j.end_object();
    }
    j.end_array();

    j.begin_object("totals");
    j.value("seconds", r.seconds);
    j.value("messages_sent", t.messages_sent);
    j.value("messages_verified", t.messages_verified);
    j.value("bytes_sent", t.bytes_sent);
    j.value("bytes_verified", t.bytes_verified);
    j.value("messages_per_second", per_second(t.messages_verified, r.seconds));
    j.value("bytes_per_second", per_second(t.bytes_verified, r.seconds));
    j.value("send_calls", m.send_calls);
    j.end_object();

    latency_json(j, m.latency_ns, o.rate > 0);

    j.begin_object("recv");
    j.value("calls", m.recv_calls);
    j.value("eagain", m.recv_eagain);
    j.value("lowat_changes", m.lowat_changes);
    const LogLinearHistogram& calls = m.recv_calls_per_message;
    j.begin_object("calls_per_message");
    j.value("mean", calls.mean());
    j.value("p50", calls.quantile(0.5));
    j.value("p99", calls.quantile(0.99));
    j.value("max", calls.max());
    j.end_object();
    j.begin_object("size");
    j.value("min", m.recv_size.min());
    j.value("p50", m.recv_size.quantile(0.5));
    j.value("max", m.recv_size.max());
    j.end_object();
    j.begin_array("size_histogram");
    for (const auto& bin : m.recv_size.power_of_two_bins()) {
        j.begin_object();
        j.value("min", bin.low);
        j.value("max", bin.high);
        j.value("count", bin.count);
        j.end_object();
    }
    j.end_array();
    j.begin_array("most_frequent_sizes");
    for (const auto& e : m.recv_size_counts.top(10)) {
        j.begin_object();
        j.value("size", e.value);
        j.value("count", e.count);
        j.end_object();
    }
    j.end_array();
    j.end_object();

    j.begin_array("connections");
    for (const ConnectionResult& c : r.connections) {
        j.begin_object();
        j.value("id", c.id);
        j.value("local", c.local);
        j.value("messages_sent", c.messages_sent);
        j.value("messages_verified", c.messages_verified);
        j.value("bytes_sent", c.bytes_sent);
        j.value("bytes_verified", c.bytes_verified);
        j.value("recv_calls", c.recv_calls);
        j.begin_array("first_recv_sizes");
        for (std::uint64_t s : c.first_recv_sizes) j.value({}, s);
        j.end_array();
        if (c.tcp_info.valid) {
            const TcpInfo& i = c.tcp_info;
            j.begin_object("tcp_info");
            j.value("mss", i.snd_mss);
            j.value("rcv_mss", i.rcv_mss);
            j.value("advmss", i.advmss);
            j.value("rtt_us", i.rtt_us);
            j.value("rttvar_us", i.rttvar_us);
            j.value("snd_cwnd", i.snd_cwnd);
            j.value("total_retrans", i.total_retrans);
            j.value("reordering", i.reordering);
            j.value("rcv_ooopack", i.rcv_ooopack);
            j.value("rcv_space", i.rcv_space);
            j.end_object();
        } else {
            j.null("tcp_info");
        }
        if (c.failure) j.value("error", to_string(c.failure->kind)); else j.null("error");
        j.end_object();
    }
    j.end_array();
    j.end_object();
    return j.text() + "\n";
}

}  // namespace tcpecho::probe
