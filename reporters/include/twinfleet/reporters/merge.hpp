// Merging shard summaries — one summary.json per worker process of one run — into the run's
// summary, as `twinfleet report merge` does. docs/REPORTS.md ("Merging") lists each field's rule:
// counts add; latency histograms merge exactly and latency_ms is recomputed from the merged
// histogram (without histograms in every shard: the largest shard figure, an upper bound);
// timelines add by t_s (connected adds; per-second p50/p99 recomputed when the entries carry
// histograms, else the shards' maximum); the convergence ratio is recomputed from the sums;
// anomaly counts add and their examples are concatenated (at most max_examples_per_kind);
// duration_s is the longest shard's, started_at the earliest, interrupted if any was.
// Thresholds are dropped: verdicts on one shard say nothing about the run — evaluate the
// scenario's thresholds on the merged summary (thresholds.hpp).
#pragma once

#include <twinfleet/twin/error.hpp>

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace twinfleet::reporters {

inline constexpr std::size_t max_examples_per_kind = 10;

// `sources` name the shards in error messages (their file paths), index by index; without
// them a shard is "shard N" (1-based). Errors (report_code::bad_input): no shards; shards of
// different scenarios; a histogram that does not decode (naming the shard and the field).
[[nodiscard]] twin::result<boost::json::object> merge_summaries(std::vector<boost::json::object> shards,
                                                                const std::vector<std::string>& sources = {});

}  // namespace twinfleet::reporters
