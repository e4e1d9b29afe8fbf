#include "tools/udp_result.hpp"

#include <cstdio>

#include "tools/probe_options.hpp"

namespace tcpecho::probe {

namespace {

// "12.50", or "0.004" where two decimals would print a loss as 0.00.
std::string percent_text(double p) {
    char b[32];
    std::snprintf(b, sizeof b, p > 0 && p < 0.005 ? "%.2g" : "%.2f", p);
    return b;
}

bool any_flow_failed(const std::vector<UdpFlowResult>& flows, UdpErrorKind kind) {
    for (const UdpFlowResult& f : flows) {
        if (f.failure && f.failure->kind == kind) return true;
    }
    return false;
}

}  // namespace

std::string_view to_string(UdpErrorKind kind) noexcept {
    switch (kind) {
    case UdpErrorKind::Corrupted:
        return "corrupted";
    case UdpErrorKind::Loss:
        return "loss";
    case UdpErrorKind::Refused:
        return "refused";
    case UdpErrorKind::Network:
        return "network";
    case UdpErrorKind::MessageTooLong:
        return "message_too_long";
    }
    return "?";
}

int exit_status_of(UdpErrorKind kind) noexcept {
    switch (kind) {
    case UdpErrorKind::Corrupted:
    case UdpErrorKind::Loss:
        return kExitMismatch;
    case UdpErrorKind::MessageTooLong:
        return kExitUsage;
    case UdpErrorKind::Refused:
    case UdpErrorKind::Network:
        return kExitNetwork;
    }
    return kExitNetwork;
}

std::vector<UdpError> UdpRunResult::errors() const {
    std::vector<UdpError> all;
    bool socket_failure = false;
    for (const UdpFlowResult& f : flows) {
        if (f.corruption) all.push_back(*f.corruption);
        if (f.failure) {
            all.push_back(*f.failure);
            socket_failure = true;
        }
    }
    // Loss is reported on its own only when no flow failed: a failed flow's losses are the
    // consequence of its socket error, which is what the run reports.
    if (!socket_failure && loss_exceeded()) {
        char max[32];
        std::snprintf(max, sizeof max, "%g", max_loss_percent);
        all.push_back(UdpError{UdpErrorKind::Loss, std::nullopt, std::nullopt, std::nullopt,
                               "loss " + percent_text(totals.loss_percent()) + "% exceeds --max-loss " + max + "% (" +
                                   std::to_string(totals.lost) + " of " + std::to_string(totals.sent) +
                                   " datagrams lost)",
                               {}, {}});
    }
    return all;
}

int UdpRunResult::exit_status() const noexcept {
    if (any_flow_failed(flows, UdpErrorKind::MessageTooLong)) return kExitUsage;
    if (totals.corrupted > 0) return kExitMismatch;
    for (const UdpFlowResult& f : flows) {
        if (f.failure) return kExitNetwork;
    }
    if (loss_exceeded()) return kExitMismatch;
    return kExitOk;
}

}  // namespace tcpecho::probe
