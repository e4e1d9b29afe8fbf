#include "tools/udp_report.hpp"

#include <algorithm>
#include <cinttypes>
#include <utility>
#include <vector>

#include "build_config.hpp"
#include "tools/json_writer.hpp"
#include "tools/report_shared.hpp"

namespace tcpecho::probe {

namespace {

std::string plural(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The flow's error for the per-flow list: its socket failure, else its first corruption.
const UdpError* flow_error(const UdpFlowResult& f) {
    if (f.failure) return &*f.failure;
    if (f.corruption) return &*f.corruption;
    return nullptr;
}

}  // namespace

void print_udp_header(std::FILE* out, const Options& o) {
    const std::string amount = amount_text(o, "datagram", "datagrams");
    std::string rate;
    if (o.rate > 0) {
        char b[48];
        std::snprintf(b, sizeof b, ", %g datagrams/s", o.rate);
        rate = b;
    }
    std::fprintf(out, "PROBE UDP %s port %s: %s, %s x %s of %s%s, timeout %g s, seed %" PRIu64 "\n", o.host.c_str(),
                 o.port.c_str(), std::string(to_string(o.workload)).c_str(),
                 plural(o.connections, "flow", "flows").c_str(), amount.c_str(), payload_size_text(o).c_str(),
                 rate.c_str(), static_cast<double>(o.timeout_us) / 1e6, o.seed);
    std::fprintf(out, "(a datagram not echoed within the timeout is lost: each loss makes a flow wait that long, so\n"
                      " against a lossy path the run takes longer; progress: --progress)\n");
    std::fflush(out);
}

void print_udp_errors(std::FILE* err, const Options& o, const UdpRunResult& r) {
    // Socket errors usually share one cause (nothing listening): one line per distinct message.
    std::vector<std::pair<std::string, unsigned>> socket_errors;
    bool data_error = false;
    for (const UdpError& e : r.errors()) {
        switch (e.kind) {
        case UdpErrorKind::Corrupted: {
            data_error = true;
            std::string where = "flow " + std::to_string(e.flow.value_or(0));
            if (e.seq) where += ", datagram " + std::to_string(*e.seq);
            if (e.offset) where += ", offset " + std::to_string(*e.offset);
            std::fprintf(err, "tcpecho-probe: %s: corrupted: %s\n", where.c_str(), e.detail.c_str());
            if (!e.expected.empty() || !e.received.empty()) {
                std::fprintf(err, "  expected: %s\n  received: %s\n", e.expected.empty() ? "?" : e.expected.c_str(),
                             e.received.c_str());
            }
            break;
        }
        case UdpErrorKind::Loss:
            data_error = true;
            std::fprintf(err, "tcpecho-probe: %s\n", e.detail.c_str());
            break;
        case UdpErrorKind::Refused:
        case UdpErrorKind::Network:
        case UdpErrorKind::MessageTooLong: {
            auto same = std::find_if(socket_errors.begin(), socket_errors.end(),
                                     [&](const auto& s) { return s.first == e.detail; });
            if (same == socket_errors.end()) socket_errors.emplace_back(e.detail, 1);
            else same->second++;
            break;
        }
        }
    }
    for (const auto& [detail, count] : socket_errors) {
        if (count == 1) std::fprintf(err, "tcpecho-probe: %s\n", detail.c_str());
        else std::fprintf(err, "tcpecho-probe: %u flows: %s\n", count, detail.c_str());
    }
    if (data_error) std::fprintf(err, "tcpecho-probe: to repeat this run exactly: --seed %" PRIu64 "\n", o.seed);
}

void print_udp_summary(std::FILE* out, const Options& o, const UdpRunResult& r) {
    const UdpCounters& t = r.totals;
    std::fprintf(out, "--- %s tcpecho-probe UDP statistics ---\n", r.peer.c_str());
    std::fprintf(out,
                 "%s sent, %" PRIu64 " received, %" PRIu64 " lost (%.2f%%), %" PRIu64 " duplicated, %" PRIu64
                 " reordered, %" PRIu64 " corrupted, %" PRIu64 " late\n",
                 plural(t.sent, "datagram", "datagrams").c_str(), t.received, t.lost, t.loss_percent(), t.duplicated,
                 t.reordered, t.corrupted, t.late);
    print_latency(out, r.latency_ns, "");
    print_rate(out, r.seconds, t.received, "datagrams", t.bytes_received);
    if (t.probe_receive_drops > 0) {
        std::fprintf(out,
                     "note:     the probe's own receive buffers dropped at least %" PRIu64
                     " echoes (SO_RXQ_OVFL): that much of the loss is not the server's\n",
                     t.probe_receive_drops);
    }
    if (r.interrupted) std::fprintf(out, "interrupted: stopped sending early\n");
    const int status = r.exit_status();
    if (status == kExitOk) {
        std::fprintf(out, "RESULT: OK, every datagram received verified, loss within --max-loss %g%% (seed %" PRIu64
                          ")\n",
                     o.max_loss_percent, o.seed);
        return;
    }
    // The error that decided the status.
    std::string why;
    for (const UdpError& e : r.errors()) {
        if (exit_status_of(e.kind) == status) {
            why = e.kind == UdpErrorKind::Corrupted ? plural(t.corrupted, "corrupted datagram", "corrupted datagrams")
                                                    : e.detail;
            break;
        }
    }
    std::fprintf(out, "RESULT: FAILED (exit %d): %s (seed %" PRIu64 ")\n", status, why.c_str(), o.seed);
}

std::string udp_json_report(const Options& o, const UdpRunResult& r) {
    const UdpCounters& t = r.totals;
    const std::vector<UdpError> errors = r.errors();
    JsonWriter j;
    j.begin_object();
    j.value("tool", "tcpecho-probe");
    j.value("version", TCPECHO_VERSION);
    j.value("protocol", "udp");

    target_json(j, o, r.peer);

    j.begin_object("options");
    j.value("protocol", "udp");
    j.value("size_min", o.shape.size_min);
    j.value("size_max", o.shape.size_max);
    if (o.count) j.value("count", *o.count); else j.null("count");
    if (o.time_us) j.value("time_s", static_cast<double>(*o.time_us) / 1e6); else j.null("time_s");
    j.value("flows", o.connections);
    j.value("threads", o.threads);
    j.value("workload", to_string(o.workload));
    j.value("window", o.window);
    j.value("rate", o.rate);
    j.value("seed", o.seed);
    j.value("timeout_s", static_cast<double>(o.timeout_us) / 1e6);
    j.value("max_loss_percent", o.max_loss_percent);
    j.end_object();

    const int status = r.exit_status();
    unsigned failed_flows = 0;
    for (const UdpFlowResult& f : r.flows) {
        if (flow_error(f) != nullptr) ++failed_flows;
    }
    j.begin_object("result");
    j.value("status", status == kExitOk ? "ok" : "failed");
    j.value("exit_code", status);
    j.value("failed_flows", failed_flows);
    j.value("interrupted", r.interrupted);
    j.value("loss_percent", t.loss_percent());
    j.value("max_loss_percent", r.max_loss_percent);
    j.end_object();

    j.begin_array("errors");
    for (const UdpError& e : errors) {
        j.begin_object();
        j.value("kind", to_string(e.kind));
        j.value("exit_code", exit_status_of(e.kind));
        if (e.flow) j.value("flow", *e.flow); else j.null("flow");
        if (e.seq) j.value("seq", *e.seq); else j.null("seq");
        if (e.offset) j.value("offset", *e.offset); else j.null("offset");
        j.value("detail", e.detail);
        j.value("expected", e.expected);
        j.value("received", e.received);
        j.end_object();
    }
    j.end_array();

    latency_json(j, r.latency_ns, false);

    auto counters = [&](const UdpCounters& c) {
        j.value("sent", c.sent);
        j.value("received", c.received);
        j.value("lost", c.lost);
        j.value("duplicated", c.duplicated);
        j.value("reordered", c.reordered);
        j.value("corrupted", c.corrupted);
        j.value("late", c.late);
        j.value("probe_receive_drops", c.probe_receive_drops);
    };
    j.begin_object("udp");
    j.value("seconds", r.seconds);
    counters(t);
    j.value("loss_percent", t.loss_percent());
    j.value("bytes_sent", t.bytes_sent);
    j.value("bytes_received", t.bytes_received);
    j.value("datagrams_per_second", per_second(t.received, r.seconds));
    j.value("bytes_per_second", per_second(t.bytes_received, r.seconds));
    j.begin_array("flows");
    for (const UdpFlowResult& f : r.flows) {
        j.begin_object();
        j.value("id", f.id);
        j.value("local", f.local);
        counters(f.counters);
        j.value("bytes_sent", f.counters.bytes_sent);
        j.value("bytes_received", f.counters.bytes_received);
        if (const UdpError* e = flow_error(f)) j.value("error", to_string(e->kind)); else j.null("error");
        j.end_object();
    }
    j.end_array();
    j.end_object();
    j.end_object();
    return j.text() + "\n";
}

}  // namespace tcpecho::probe
