#include <twinfleet/reporters/html.hpp>
#include <twinfleet/reporters/summary.hpp>
#include <twinfleet/reporters/thresholds.hpp>

#include "format.hpp"
#include "histogram.hpp"

#include <boost/json.hpp>

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

namespace twinfleet::reporters {

namespace json = boost::json;
using detail::format_number;
using detail::html_escape;

namespace {

// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
constexpr const char* palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7A5195", "#555555"};
constexpr std::size_t palette_size = sizeof(palette) / sizeof(palette[0]);

// The operations in the order a person reads a device's life; others follow alphabetically.
constexpr const char* operation_order[] = {"connect",       "subscribe",           "twin_get",    "reported_patch",
                                           "telemetry",     "desired_write",       "shadow_update", "desired_propagation",
                                           "delta_delivery", "convergence",        "method",      "twin_read",
                                           "shadow_read"};

std::vector<std::string> ordered_operations(const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const char* n : operation_order) {
    if (std::find(names.begin(), names.end(), n) != names.end()) out.emplace_back(n);
  }
  std::vector<std::string> rest;
  for (const auto& n : names) {
    if (std::find(out.begin(), out.end(), n) == out.end()) rest.push_back(n);
  }
  std::sort(rest.begin(), rest.end());
  out.insert(out.end(), rest.begin(), rest.end());
  return out;
}

// ---- charts -------------------------------------------------------------------------------

constexpr double chart_w = 720;
constexpr double chart_h = 240;
constexpr double margin_l = 60;
constexpr double margin_r = 16;
constexpr double margin_t = 12;
constexpr double margin_b = 40;
constexpr double plot_w = chart_w - margin_l - margin_r;
constexpr double plot_h = chart_h - margin_t - margin_b;

struct point {
  double x;
  double y;
};

struct series {
  std::string name;
  std::vector<point> points;
  std::string colour;
  bool dashed = false;
};

struct axis {
  double lo = 0;
  double hi = 1;
  std::vector<double> ticks;
};

double nice_step(double raw) {
  if (raw <= 0 || !std::isfinite(raw)) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / p;
  const double n = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return n * p;
}

axis linear_axis(double lo, double hi, int ticks = 5) {
  if (!(hi > lo)) hi = lo + 1;
  const double step = nice_step((hi - lo) / ticks);
  axis a;
  a.lo = std::floor(lo / step) * step;
  a.hi = std::ceil(hi / step) * step;
  for (double t = a.lo; t <= a.hi + step * 1e-9; t += step) a.ticks.push_back(std::fabs(t) < step * 1e-9 ? 0 : t);
  return a;
}

std::string num(double v) { return fmt::format("{:.1f}", v); }

double sx(const axis& x, double v) { return margin_l + (v - x.lo) / (x.hi - x.lo) * plot_w; }
double sy(const axis& y, double v) { return margin_t + plot_h - (v - y.lo) / (y.hi - y.lo) * plot_h; }

std::string svg_open(const std::string& chart, const std::string& label) {
  return fmt::format(R"(<svg class="chart" data-chart="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">)",
                     html_escape(chart), chart_w, chart_h, html_escape(label));
}

std::string x_grid(const axis& x, const std::vector<std::string>& labels, const std::string& title) {
  std::string s;
  for (std::size_t i = 0; i < x.ticks.size(); ++i) {
    const double px = sx(x, x.ticks[i]);
    s += fmt::format(R"(<line class="grid" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>)", num(px), num(margin_t), num(margin_t + plot_h));
    s += fmt::format(R"(<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>)", num(px), num(margin_t + plot_h + 14),
                     html_escape(labels[i]));
  }
  s += fmt::format(R"(<text class="axis-title" x="{}" y="{}" text-anchor="middle">{}</text>)", num(margin_l + plot_w / 2),
                   num(chart_h - 6), html_escape(title));
  return s;
}

std::string y_grid(const axis& y, const std::string& title) {
  std::string s;
  for (const double t : y.ticks) {
    const double py = sy(y, t);
    s += fmt::format(R"(<line class="grid" x1="{0}" x2="{1}" y1="{2}" y2="{2}"/>)", num(margin_l), num(margin_l + plot_w), num(py));
    s += fmt::format(R"(<text class="tick" x="{}" y="{}" text-anchor="end">{}</text>)", num(margin_l - 6), num(py + 4),
                     html_escape(format_number(t)));
  }
  s += fmt::format(R"~(<text class="axis-title" transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>)~",
                   num(margin_t + plot_h / 2), html_escape(title));
  return s;
}

std::string no_data(const std::string& chart, const std::string& label, const std::string& why) {
  return svg_open(chart, label) +
         fmt::format(R"(<text class="empty" x="{}" y="{}" text-anchor="middle">{}</text></svg>)", num(chart_w / 2), num(chart_h / 2),
                     html_escape(why));
}

std::string legend(const std::vector<series>& all) {
  std::string s = R"(<div class="legend">)";
  for (const auto& se : all) {
    s += fmt::format(R"(<span><i style="border-color:{}" class="{}"></i>{}</span>)", se.colour, se.dashed ? "dashed" : "solid",
                     html_escape(se.name));
  }
  return s + "</div>";
}

// A time chart: one polyline per series over a shared x (seconds) and y (from 0) axis.
// `x_max`: the timeline's last second, so that every time chart shares one x axis.
std::string line_chart(const std::string& chart, const std::string& title, const std::vector<series>& all, const std::string& y_title,
                       double x_max) {
  double x_hi = x_max;
  double y_hi = 0;
  bool any = false;
  for (const auto& se : all) {
    for (const auto& p : se.points) {
      if (std::isnan(p.y)) continue;
      x_hi = std::max(x_hi, p.x);
      y_hi = std::max(y_hi, p.y);
      any = true;
    }
  }
  std::string s = "<figure>" + fmt::format("<figcaption>{}</figcaption>", html_escape(title));
  if (!any) return s + no_data(chart, title, "no samples in the timeline") + "</figure>";
  const axis x = linear_axis(0, std::max(x_hi, 1.0), 8);
  const axis y = linear_axis(0, y_hi > 0 ? y_hi * 1.05 : 1, 5);
  std::vector<std::string> x_labels;
  for (const double t : x.ticks) x_labels.push_back(format_number(t));
  s += svg_open(chart, title) + y_grid(y, y_title) + x_grid(x, x_labels, "time since start (s)");
  for (const auto& se : all) {
    if (se.points.empty()) continue;
    // A NaN sample is a second without data: the line breaks there instead of bridging it.
    std::string d;
    bool pen_down = false;
    std::size_t drawn = 0;
    for (const auto& p : se.points) {
      if (std::isnan(p.y)) {
        pen_down = false;
        continue;
      }
      d += fmt::format("{}{} {}", d.empty() ? "M" : pen_down ? " L" : " M", num(sx(x, p.x)), num(sy(y, p.y)));
      pen_down = true;
      ++drawn;
    }
    if (drawn == 0) continue;
    if (drawn == 1) d += " h0.1";  // a path needs extent to have a rendered box
    s += fmt::format(R"(<path class="series{}" d="{}" stroke="{}"><title>{}</title></path>)", se.dashed ? " dashed" : "", d, se.colour,
                     html_escape(se.name));
    // A line of one or two samples is easy to miss: mark them.
    if (drawn <= 2) {
      for (const auto& p : se.points) {
        if (std::isnan(p.y)) continue;
        s += fmt::format(R"(<circle class="point" cx="{}" cy="{}" r="3" fill="{}"><title>{}: {} at {} s</title></circle>)", num(sx(x, p.x)),
                         num(sy(y, p.y)), se.colour, html_escape(se.name), format_number(p.y), format_number(p.x));
      }
    }
  }
  return s + "</svg>" + legend(all) + "</figure>";
}

// A latency histogram: the log-linear buckets regrouped into 20 bins per decade on a log
// axis of milliseconds, bar height the sample count, with p50 and p99 marked.
std::string histogram_chart(const std::string& op, const metrics::histogram& h, const std::string& colour) {
  const std::string title = op + " latency distribution";
  std::string s = "<figure>" + fmt::format("<figcaption>{} <small>({} samples)</small></figcaption>", html_escape(op),
                                           format_number(static_cast<double>(h.count())));
  const auto buckets = h.buckets();
  std::size_t first = buckets.size();
  std::size_t last = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i] == 0) continue;
    first = std::min(first, i);
    last = i;
  }
  if (buckets.empty() || h.count() == 0 || first > last) return s + no_data("histogram-" + op, title, "no samples") + "</figure>";
  constexpr double per_decade = 20;
  const double lo_ms = static_cast<double>(metrics::layout::lower_ns(first)) / 1e6;
  const double hi_ms = static_cast<double>(metrics::layout::upper_ns(last)) / 1e6;
  const double d_lo = std::floor(std::log10(std::max(lo_ms, 1e-6)));
  double d_hi = std::ceil(std::log10(hi_ms));
  if (d_hi <= d_lo) d_hi = d_lo + 1;
  const auto bins = static_cast<std::size_t>((d_hi - d_lo) * per_decade);
  std::vector<double> counts(bins, 0);
  for (std::size_t i = first; i <= last; ++i) {
    if (buckets[i] == 0) continue;
    const double ms = std::max(static_cast<double>(metrics::layout::representative_ns(i)) / 1e6, 1e-6);
    auto b = static_cast<std::ptrdiff_t>(std::floor((std::log10(ms) - d_lo) * per_decade));
    b = std::clamp<std::ptrdiff_t>(b, 0, static_cast<std::ptrdiff_t>(bins) - 1);
    counts[static_cast<std::size_t>(b)] += static_cast<double>(buckets[i]);
  }
  const double peak = *std::max_element(counts.begin(), counts.end());
  const axis y = linear_axis(0, peak * 1.05, 4);
  axis x;
  x.lo = d_lo;
  x.hi = d_hi;
  std::vector<std::string> labels;
  for (double d = d_lo; d <= d_hi + 1e-9; d += 1) {
    x.ticks.push_back(d);
    labels.push_back(format_number(std::pow(10.0, d), 3) + " ms");
  }
  s += svg_open("histogram-" + op, title) + y_grid(y, "samples") + x_grid(x, labels, "latency (ms, log scale)");
  for (std::size_t b = 0; b < bins; ++b) {
    if (counts[b] == 0) continue;
    const double l = d_lo + static_cast<double>(b) / per_decade;
    const double r = l + 1 / per_decade;
    const double top = sy(y, counts[b]);
    s += fmt::format(R"(<rect class="bar" x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}–{} ms: {}</title></rect>)",
                     num(sx(x, l) + 0.5), num(top), num(std::max(sx(x, r) - sx(x, l) - 1, 0.5)), num(margin_t + plot_h - top), colour,
                     format_number(std::pow(10.0, l)), format_number(std::pow(10.0, r)), format_number(counts[b]));
  }
  for (const auto& [label, q] : {std::pair<const char*, double>{"p50", 0.5}, {"p99", 0.99}}) {
    const double ms = static_cast<double>(h.value_at_quantile(q)) / 1e6;
    if (ms <= 0) continue;
    const double px = sx(x, std::clamp(std::log10(ms), d_lo, d_hi));
    // Labels near the right edge go to the left of their line.
    const bool left = px > margin_l + plot_w - 90;
    s += fmt::format(R"(<line class="marker" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/><text class="marker-label" x="{3}" y="{4}" text-anchor="{5}">{6} {7} ms</text>)",
                     num(px), num(margin_t), num(margin_t + plot_h), num(left ? px - 3 : px + 3), num(margin_t + (q < 0.9 ? 10 : 22)),
                     left ? "end" : "start", label, format_number(ms));
  }
  return s + "</svg></figure>";
}

// ---- tables and facts ---------------------------------------------------------------------

std::string ms_cell(const json::object* latency, std::string_view key) {
  const auto v = latency ? detail::number_at(*latency, key) : std::nullopt;
  return v ? "<td class=\"num\">" + format_number(*v) + "</td>" : "<td class=\"num muted\">–</td>";
}

std::string num_cell(std::optional<double> v) {
  return v ? "<td class=\"num\">" + format_number(*v) + "</td>" : "<td class=\"num muted\">–</td>";
}

std::string fact(const std::string& label, const std::string& value) {
  return "<div class=\"fact\"><span>" + html_escape(label) + "</span><b>" + html_escape(value) + "</b></div>";
}

std::string json_scalar_text(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (const auto n = detail::as_number(&v)) return format_number(*n, 6);
  return json::serialize(v);
}

std::string thresholds_section(const json::object& summary) {
  const auto results = threshold_results_from(summary);
  std::string s = "<section><h2>Thresholds</h2>";
  if (results.empty()) {
    return s + "<p class=\"muted\">The scenario sets no thresholds (or they were not evaluated).</p></section>";
  }
  s += "<table id=\"thresholds\"><thead><tr><th></th><th>metric</th><th>condition</th><th class=\"num\">observed</th><th>verdict</th></tr></thead><tbody>";
  for (const auto& r : results) {
    s += fmt::format("<tr class=\"{}\"><td class=\"mark\">{}</td><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td><td>{}</td></tr>",
                     r.ok ? "pass" : "fail", r.ok ? "\u2713" : "\u2717", html_escape(r.name), html_escape(r.expr),
                     html_escape(r.value_text.empty() ? "–" : r.value_text), html_escape(r.message));
  }
  return s + "</tbody></table></section>";
}

std::string anomalies_section(const json::object& summary) {
  std::string s = "<section><h2>Sync anomalies</h2>";
  const auto* anomalies = detail::object_at(summary, "sync.anomalies");
  const auto* examples = detail::object_at(summary, "sync.examples");
  if (!anomalies) return s + "<p class=\"muted\">This summary carries no sync-checker results.</p></section>";
  s += "<table id=\"anomalies\"><thead><tr><th>kind</th><th class=\"num\">count</th><th>examples</th></tr></thead><tbody>";
  if (anomalies->empty()) s += "<tr class=\"zero\"><td colspan=\"3\">the sync checker recorded no anomalies</td></tr>";
  for (const auto& [kind, v] : *anomalies) {
    const double n = detail::as_number(&v).value_or(0);
    std::string ex;
    if (const auto* list = examples ? detail::array_at(*examples, kind) : nullptr) {
      for (const auto& e : *list) {
        if (!e.is_object()) continue;
        const auto& o = e.get_object();
        std::string versions;
        if (const auto* vs = detail::array_at(o, "versions")) {
          for (const auto& x : *vs) versions += (versions.empty() ? "" : ", ") + json_scalar_text(x);
        }
        const auto at = detail::number_at(o, "at_s");
        ex += "<li><code>" + html_escape(detail::string_at(o, "device", "?")) + "</code>";
        if (!versions.empty()) ex += " versions " + html_escape(versions);
        if (at) ex += " at " + format_number(*at) + " s";
        if (const auto d = detail::string_at(o, "detail"); !d.empty()) ex += ": " + html_escape(d);
        ex += "</li>";
      }
    }
    s += fmt::format("<tr class=\"{}\"><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>", n > 0 ? "fail" : "zero", html_escape(kind),
                     format_number(n), ex.empty() ? "" : "<ul class=\"examples\">" + ex + "</ul>");
  }
  s += "</tbody></table>";
  if (const auto* observed = detail::object_at(summary, "sync.observed"); observed && !observed->empty()) {
    s += "<p class=\"note\">Observed, tolerated by the protocol: ";
    bool first = true;
    for (const auto& [k, v] : *observed) {
      s += (first ? "" : ", ") + html_escape(k) + " " + format_number(detail::as_number(&v).value_or(0));
      first = false;
    }
    s += "</p>";
  }
  return s + "</section>";
}

std::string operations_table(const json::object& summary, const std::vector<std::string>& names) {
  const auto* ops = detail::object_at(summary, "operations");
  std::string s =
      "<table id=\"operations\"><thead><tr><th>operation</th><th class=\"num\">count</th><th class=\"num\">errors</th>"
      "<th class=\"num\">p50 ms</th><th class=\"num\">p90 ms</th><th class=\"num\">p99 ms</th><th class=\"num\">max ms</th>"
      "<th class=\"num\">mean ms</th></tr></thead><tbody>";
  for (const auto& name : names) {
    const auto* op = detail::object_at(*ops, name);
    if (!op) continue;
    const auto* lat = detail::object_at(*op, "latency_ms");
    const auto errors = detail::number_at(*op, "errors").value_or(0);
    s += "<tr><td>" + html_escape(name) + "</td>" + num_cell(detail::number_at(*op, "count")) +
         (errors > 0 ? "<td class=\"num bad\">" + format_number(errors) + "</td>" : num_cell(errors)) + ms_cell(lat, "p50") +
         ms_cell(lat, "p90") + ms_cell(lat, "p99") + ms_cell(lat, "max") + ms_cell(lat, "mean") + "</tr>";
  }
  return s + "</tbody></table>";
}

std::string devices_section(const json::object& summary) {
  std::string s = "<section><h2>Devices</h2><div class=\"facts\">";
  for (const auto& [key, label] : {std::pair<const char*, const char*>{"planned", "planned"},
                                   {"connected_peak", "connected at peak"},
                                   {"connect_failures", "connect failures"},
                                   {"disconnects", "disconnects"}}) {
    if (const auto v = detail::number_at(summary, std::string("devices.") + key)) s += fact(label, format_number(*v));
  }
  s += "</div>";
  if (const auto* groups = detail::array_at(summary, "devices.by_group"); groups && !groups->empty()) {
    // The numeric columns the groups carry (planned, connected_peak, …), in first-seen order.
    std::vector<std::string> columns;
    for (const auto& g : *groups) {
      if (!g.is_object()) continue;
      for (const auto& [k, v] : g.get_object()) {
        if (v.is_number() && std::find(columns.begin(), columns.end(), k) == columns.end()) columns.emplace_back(k);
      }
    }
    s += "<table id=\"groups\"><thead><tr><th>backend</th><th>profile</th>";
    for (const auto& c : columns) s += "<th class=\"num\">" + html_escape(c) + "</th>";
    s += "</tr></thead><tbody>";
    for (const auto& g : *groups) {
      if (!g.is_object()) continue;
      const auto& o = g.get_object();
      s += "<tr><td>" + html_escape(detail::string_at(o, "backend")) + "</td><td>" + html_escape(detail::string_at(o, "profile")) + "</td>";
      for (const auto& c : columns) s += num_cell(detail::number_at(o, c));
      s += "</tr>";
    }
    s += "</tbody></table>";
  }
  return s + "</section>";
}

std::string engine_section(const json::object& summary) {
  const auto* engine = detail::object_at(summary, "engine");
  std::string s = "<section><h2>Engine</h2>";
  if (!engine) return s + "<p class=\"muted\">No engine figures in this summary.</p></section>";
  s += "<div class=\"facts\">";
  if (const auto v = detail::number_at(*engine, "workers")) s += fact("worker processes", format_number(*v));
  if (const auto v = detail::number_at(*engine, "threads")) s += fact("threads", format_number(*v));
  for (const auto& [key, label] : {std::pair<const char*, const char*>{"p50", "lag p50"}, {"p99", "lag p99"}, {"max", "lag max"}}) {
    if (const auto v = detail::number_at(*engine, std::string("lag_ms.") + key)) s += fact(label, format_number(*v) + " ms");
  }
  if (const auto v = detail::number_at(*engine, "rss_bytes_peak")) s += fact("peak memory (RSS)", detail::format_bytes(*v));
  s += "</div><p class=\"note\">Lag is how late the engine started work against its schedule; a large lag means the load "
       "generator, not the system under test, limited the run.</p>";
  return s + "</section>";
}

// ---- timeline ------------------------------------------------------------------------------

struct timeline_data {
  double t_max = 0;
  series connected;
  std::map<std::string, series> throughput;
  std::map<std::string, std::pair<series, series>> latency;  // p50, p99
};

timeline_data read_timeline(const json::object& summary) {
  timeline_data d;
  d.connected.name = "connected devices";
  d.connected.colour = palette[0];
  const auto* tl = detail::array_at(summary, "timeline");
  if (!tl) return d;
  // An operation missing from a second did not happen in it: throughput 0, latency no sample.
  std::vector<std::string> names;
  for (const auto& e : *tl) {
    const auto* ops = e.is_object() ? detail::object_at(e.get_object(), "ops") : nullptr;
    if (!ops) continue;
    for (const auto& [name, op] : *ops) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
    }
  }
  constexpr double no_sample = std::numeric_limits<double>::quiet_NaN();
  double prev_t = 0;
  for (const auto& e : *tl) {
    if (!e.is_object()) continue;
    const auto& o = e.get_object();
    const auto t = detail::number_at(o, "t_s");
    if (!t) continue;
    // Entries are one per second; a gap still gives a rate per second.
    const double dt = *t - prev_t > 0 ? *t - prev_t : 1;
    prev_t = *t;
    d.t_max = std::max(d.t_max, *t);
    if (const auto c = detail::number_at(o, "connected")) d.connected.points.push_back({*t, *c});
    const auto* ops = detail::object_at(o, "ops");
    for (const auto& n : names) {
      const auto* oo = ops ? detail::object_at(*ops, n) : nullptr;
      const auto count = oo ? detail::number_at(*oo, "count") : std::nullopt;
      d.throughput[n].points.push_back({*t, count.value_or(0) / dt});
      const auto p50 = oo ? detail::number_at(*oo, "p50_ms") : std::nullopt;
      const auto p99 = oo ? detail::number_at(*oo, "p99_ms") : std::nullopt;
      if (!p50 && !p99) {
        // Only operations that ever report latencies get a latency chart.
        if (d.latency.contains(n)) {
          d.latency[n].first.points.push_back({*t, no_sample});
          d.latency[n].second.points.push_back({*t, no_sample});
        }
        continue;
      }
      d.latency[n].first.points.push_back({*t, p50.value_or(no_sample)});
      d.latency[n].second.points.push_back({*t, p99.value_or(no_sample)});
    }
  }
  return d;
}

constexpr const char* style = R"css(
:root{--pass:#1a7f37;--pass-bg:#e6f4ea;--fail:#b42318;--fail-bg:#fdecea;--muted:#6b7280;--line:#e5e7eb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111827;margin:0;background:#f8fafc}
header{background:#0f172a;color:#f8fafc;padding:20px 28px}
header h1{margin:0 0 6px;font-size:22px}
header .sub{color:#cbd5e1}
main{max-width:1560px;margin:0 auto;padding:8px 28px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;margin:18px 0;padding:14px 18px}
h2{font-size:17px;margin:2px 0 12px}
.badge{display:inline-block;padding:3px 10px;border-radius:999px;font-weight:600;margin-right:8px;font-size:13px}
.badge.pass{background:var(--pass-bg);color:var(--pass)}.badge.fail{background:var(--fail-bg);color:var(--fail)}
.badge.warn{background:#fff4e5;color:#9a3412}
.facts{display:flex;flex-wrap:wrap;gap:10px 26px;margin-bottom:8px}
.fact span{display:block;color:var(--muted);font-size:12px}.fact b{font-size:18px}
header .fact span{color:#94a3b8}
.grid2{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0}figcaption{font-weight:600;margin-bottom:4px}
svg.chart{width:100%;height:auto;display:block;background:#fff}
svg .grid{stroke:#eef0f3;stroke-width:1}
svg .tick{fill:#6b7280;font-size:11px}svg .axis-title{fill:#374151;font-size:12px}
svg .series{fill:none;stroke-width:1.8;stroke-linejoin:round}svg .series.dashed{stroke-dasharray:5 4}
svg .marker{stroke:#111827;stroke-dasharray:3 3}svg .marker-label{font-size:11px;fill:#111827}
svg .empty{fill:var(--muted);font-size:14px}svg .point{stroke:#fff;stroke-width:1}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:12px;color:#374151;margin-top:4px}
.legend i{display:inline-block;width:22px;height:0;border-top:3px solid;vertical-align:middle;margin-right:6px}
.legend i.dashed{border-top-style:dashed}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{color:#374151;font-weight:600;background:#f9fafb}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.pass td{background:var(--pass-bg)}tr.fail td{background:var(--fail-bg)}
tr.pass td.mark{color:var(--pass);font-weight:700}tr.fail td.mark{color:var(--fail);font-weight:700}
tr.zero td{color:var(--muted)}
.bad{color:var(--fail);font-weight:600}.muted{color:var(--muted)}.note{color:var(--muted);font-size:12px}
ul.examples{margin:0;padding-left:18px}code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:10px}
)css";

// Marks what rendered, for people debugging a report and for the headless-browser test.
constexpr const char* script = R"js(
(function () {
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var drawn = 0;
    svg.querySelectorAll('path.series, rect.bar').forEach(function (el) {
      var b = el.getBBox();
      if (b.width > 0 || b.height > 0) drawn++;
    });
    svg.setAttribute('data-drawn', String(drawn));
  });
  document.body.setAttribute('data-rendered', '1');
})();
)js";

// The summary as a JSON data block. Inside <script> only "</" could end the element early;
// escaping every '<' (and '>' and '&' for good measure) as \u00XX keeps the JSON identical.
std::string json_data_block(const json::object& summary) {
  const auto text = json::serialize(summary);
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string render_html(const json::object& summary) {
  const auto scenario = detail::string_at(summary, "scenario", "(unnamed)");
  const auto thresholds = threshold_results_from(summary);
  std::size_t failed = 0;
  for (const auto& r : thresholds) failed += r.ok ? 0 : 1;
  const auto* interrupted_v = summary.if_contains("interrupted");
  const bool interrupted = interrupted_v && interrupted_v->is_bool() && interrupted_v->get_bool();
  double anomalies = 0;
  const auto* anomaly_counts = detail::object_at(summary, "sync.anomalies");
  if (anomaly_counts) {
    for (const auto& [k, v] : *anomaly_counts) anomalies += detail::as_number(&v).value_or(0);
  }

  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">";
  h += "<title>twinfleet report: " + html_escape(scenario) + "</title><style>" + style + "</style></head><body>\n";

  // Header: the verdict first, then the run's identity.
  h += "<header><h1>twinfleet report: " + html_escape(scenario) + "</h1><div class=\"sub\">";
  if (thresholds.empty()) {
    h += "<span class=\"badge warn\">no thresholds</span>";
  } else if (failed == 0) {
    h += fmt::format("<span class=\"badge pass\" id=\"verdict\">all {} thresholds held</span>", thresholds.size());
  } else {
    h += fmt::format("<span class=\"badge fail\" id=\"verdict\">{} of {} thresholds failed</span>", failed, thresholds.size());
  }
  if (anomaly_counts) {
    h += anomalies > 0 ? fmt::format("<span class=\"badge fail\">{} sync anomalies</span>", format_number(anomalies))
                       : std::string("<span class=\"badge pass\">no sync anomalies</span>");
  }
  if (interrupted) h += "<span class=\"badge warn\">interrupted</span>";
  h += "</div><div class=\"facts\" style=\"margin-top:12px\">";
  if (const auto* seed = summary.if_contains("seed"); seed && seed->is_number()) h += fact("seed", json::serialize(*seed));
  if (const auto t = detail::string_at(summary, "target"); !t.empty()) h += fact("target", t);
  if (const auto t = detail::string_at(summary, "started_at"); !t.empty()) h += fact("started", t);
  if (const auto d = detail::number_at(summary, "duration_s")) h += fact("duration", format_number(*d) + " s");
  if (const auto v = detail::number_at(summary, "devices.planned")) h += fact("devices", format_number(*v));
  const auto writes = detail::number_at(summary, "sync.desired_writes");
  if (const auto v = detail::number_at(summary, "sync.convergence_ratio"); v && writes && *writes > 0) {
    h += fact("converged", format_number(*v * 100, 4) + " % of " + format_number(*writes) + " writes");
  } else if (writes) {
    h += fact("desired writes", format_number(*writes));
  }
  h += "</div></header><main>\n";

  h += thresholds_section(summary);

  // Over time.
  const auto tl = read_timeline(summary);
  h += "<section><h2>Over time</h2><div class=\"grid2\">";
  h += line_chart("connected", "Connected devices", {tl.connected}, "devices", tl.t_max);
  std::vector<std::string> tl_ops;
  for (const auto& [name, se] : tl.throughput) tl_ops.push_back(name);
  tl_ops = ordered_operations(tl_ops);
  std::vector<series> throughput;
  for (std::size_t i = 0; i < tl_ops.size(); ++i) {
    auto se = tl.throughput.at(tl_ops[i]);
    se.name = tl_ops[i];
    se.colour = palette[i % palette_size];
    se.dashed = i >= palette_size;
    throughput.push_back(std::move(se));
  }
  h += line_chart("throughput", "Throughput by operation (per second)", throughput, "operations / s", tl.t_max);
  h += "</div>";
  std::vector<std::string> lat_ops;
  for (const auto& [name, p] : tl.latency) lat_ops.push_back(name);
  lat_ops = ordered_operations(lat_ops);
  if (!lat_ops.empty()) {
    h += "<h2 style=\"margin-top:16px\">Latency over time (p50 and p99, ms)</h2><div class=\"grid2\">";
    for (const auto& name : lat_ops) {
      auto [p50, p99] = tl.latency.at(name);
      p50.name = "p50";
      p50.colour = palette[0];
      p99.name = "p99";
      p99.colour = palette[1];
      h += line_chart("latency-" + name, name, {p50, p99}, "ms", tl.t_max);
    }
    h += "</div>";
  } else {
    h += "<p class=\"muted\">The timeline has no per-second latencies.</p>";
  }
  h += "</section>\n";

  // Distributions and the operations table.
  std::vector<std::string> op_names;
  if (const auto* ops = detail::object_at(summary, "operations")) {
    for (const auto& [name, op] : *ops) op_names.emplace_back(name);
  }
  op_names = ordered_operations(op_names);
  h += "<section><h2>Operations</h2>";
  if (!op_names.empty()) h += operations_table(summary, op_names);
  std::string histograms;
  std::size_t colour = 0;
  for (const auto& name : op_names) {
    const auto* op = detail::object_at(summary, "operations." + name);
    if (!op) continue;
    const auto d = detail::decode_histogram(op->if_contains("histogram"), "operations." + name + ".histogram");
    if (!d.histogram) continue;
    histograms += histogram_chart(name, *d.histogram, palette[colour++ % palette_size]);
  }
  if (!histograms.empty()) {
    h += "<h2 style=\"margin-top:16px\">Latency distributions</h2><div class=\"grid2\">" + histograms + "</div>";
  } else {
    h += "<p class=\"note\">No latency histograms in this summary.</p>";
  }
  h += "</section>\n";

  h += anomalies_section(summary);
  h += devices_section(summary);
  h += engine_section(summary);

  h += "</main><footer>Generated by twinfleet from summary.json; the data is embedded below as "
       "<code>script#summary-data</code>.</footer>\n";
  h += "<script type=\"application/json\" id=\"summary-data\">" + json_data_block(summary) + "</script>\n";
  h += std::string("<script>") + script + "</script>\n</body></html>\n";
  return h;
}

twin::result<void> write_html(const json::object& summary, const std::filesystem::path& path) {
  return write_text_file(path, render_html(summary));
}

}  // namespace twinfleet::reporters
