// --hdr-out: a latency distribution in HdrHistogram's percentile-distribution text format
// (what HdrHistogram's outputPercentileDistribution writes and its plotter reads): a header,
// rows "Value Percentile TotalCount 1/(1-Percentile)" at HdrHistogram's percentile steps (5
// per halving of the distance to 100 %) ending with the row at percentile 1.0, then the
// "#[Mean ...", "#[Max ..." and "#[Buckets ..." footers. Values in milliseconds.
#pragma once

#include <string>

#include "tools/histogram.hpp"

namespace tcpecho::probe {

// `latency_ns`: one count per verified message (or datagram), in nanoseconds.
std::string hdr_percentile_distribution(const tcpecho::LogLinearHistogram& latency_ns);

}  // namespace tcpecho::probe
