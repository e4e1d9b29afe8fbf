// The UDP probe's output: a header, the ping-style summary, errors on stderr, and the -J
// document. The -J document keeps the TCP document's top-level keys where they mean the same
// ("tool", "version", "target", "options", "result", "errors", "latency_us"), and adds
//
//   "protocol": "udp"
//   "udp": {"seconds", "sent", "received", "lost", "duplicated", "reordered", "corrupted",
//           "late", "probe_receive_drops", "loss_percent", "bytes_sent", "bytes_received",
//           "datagrams_per_second", "bytes_per_second",
//           "flows": [{"id", "local", "sent", "received", "lost", "duplicated", "reordered",
//                      "corrupted", "late", "probe_receive_drops", "bytes_sent",
//                      "bytes_received",
//                      "error": null or the kind of its failure or first corruption}]}
//   (probe_receive_drops: echoes the probe's own sockets dropped, SO_RXQ_OVFL; part of lost)
//
// "options": {"protocol", "size_min", "size_max", "count", "time_s", "flows", "threads",
//             "workload", "window", "rate", "seed", "timeout_s", "max_loss_percent"}
// "result":  {"status": "ok"|"failed", "exit_code", "failed_flows", "interrupted",
//             "loss_percent", "max_loss_percent"}
// "errors":  [{"kind": "corrupted"|"loss"|"refused"|"network"|"message_too_long",
//              "exit_code", "flow", "seq", "offset" (null when not known), "detail",
//              "expected", "received" (hex, "[xx]" marks the byte at the offset; "" if none)}]
// "latency_us" as for TCP, from each received datagram's send time
// ("from_scheduled_time": false).
#pragma once

#include <cstdio>
#include <string>

#include "tools/probe_options.hpp"
#include "tools/udp_result.hpp"

namespace tcpecho::probe {

void print_udp_header(std::FILE* out, const Options& options);
void print_udp_summary(std::FILE* out, const Options& options, const UdpRunResult& result);
// Every error: the first corrupted datagram of each flow with the bytes around it, socket
// errors (grouped when flows share them), loss beyond --max-loss.
void print_udp_errors(std::FILE* err, const Options& options, const UdpRunResult& result);
std::string udp_json_report(const Options& options, const UdpRunResult& result);

}  // namespace tcpecho::probe
