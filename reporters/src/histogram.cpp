#include "histogram.hpp"

#include <twinfleet/metrics/json.hpp>

#include <boost/json.hpp>

namespace twinfleet::reporters::detail {

namespace json = boost::json;

decoded_histogram decode_histogram(const json::value* v, std::string_view path) {
  decoded_histogram d;
  if (!v || v->is_null()) return d;
  auto h = metrics::from_json(*v);
  if (!h) {
    d.error = std::string(path) + ": not a histogram: " + h.error().message;
    return d;
  }
  d.histogram = std::move(*h);
  return d;
}

json::value encode_histogram(const metrics::histogram& h) { return metrics::to_json(h); }

json::object latency_ms_of(const metrics::histogram& h) {
  auto ms = [](double ns) { return ns / 1e6; };
  return json::object{{"p50", ms(static_cast<double>(h.value_at_quantile(0.50)))},
                      {"p90", ms(static_cast<double>(h.value_at_quantile(0.90)))},
                      {"p99", ms(static_cast<double>(h.value_at_quantile(0.99)))},
                      {"max", ms(static_cast<double>(h.max_ns()))},
                      {"mean", ms(h.mean_ns())}};
}

}  // namespace twinfleet::reporters::detail
