#include "apps/common/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "apps/common/png.h"  // image::write_file_atomically

namespace engine::report {

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Html::Html(std::string title) : title_(std::move(title)) {}

void Html::section(const std::string& heading) { body_ += "<h2>" + escape_html(heading) + "</h2>\n"; }

void Html::paragraph(const std::string& text) { body_ += "<p>" + escape_html(text) + "</p>\n"; }

void Html::key_values(const std::string& caption, const KeyValues& rows) {
  body_ += "<table class=\"kv\">\n";
  if (!caption.empty()) body_ += "<caption>" + escape_html(caption) + "</caption>\n";
  for (const auto& [name, value] : rows)
    body_ += "<tr><th>" + escape_html(name) + "</th><td>" + escape_html(value) + "</td></tr>\n";
  body_ += "</table>\n";
}

void Html::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                 const std::string& caption) {
  for (const auto& row : rows)  // check first: a bad table writes nothing
    ENGINE_CHECK(row.size() == header.size(), "report::Html::table: a row has ", row.size(), " cells, the header ",
                 header.size());
  body_ += "<table>\n";
  if (!caption.empty()) body_ += "<caption>" + escape_html(caption) + "</caption>\n";
  body_ += "<tr>";
  for (const auto& cell : header) body_ += "<th>" + escape_html(cell) + "</th>";
  body_ += "</tr>\n";
  for (const auto& row : rows) {
    body_ += "<tr>";
    for (const auto& cell : row) body_ += "<td>" + escape_html(cell) + "</td>";
    body_ += "</tr>\n";
  }
  body_ += "</table>\n";
}

void Html::figure(const std::string& file, const std::string& caption) {
  body_ += "<figure><img src=\"" + escape_html(file) + "\" alt=\"" + escape_html(caption) +
           "\"><figcaption>" + escape_html(caption) + " <span class=\"file\">(" + escape_html(file) +
           ")</span></figcaption></figure>\n";
}

std::string Html::str() const {
  // Pixel art (28x28 digits) must stay crisp when the browser scales it up:
  // image-rendering: pixelated.
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + escape_html(title_) +
         "</title>\n<style>\n"
         "body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }\n"
         "table { border-collapse: collapse; margin: 1em 0; }\n"
         "th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; font-variant-numeric: tabular-nums; }\n"
         "caption { text-align: left; font-weight: bold; padding: 0.3em 0; }\n"
         "table.kv th { background: #f4f4f4; }\n"
         "figure { margin: 1em 0; }\n"
         "img { image-rendering: pixelated; max-width: 100%; min-width: 320px; border: 1px solid #ddd; }\n"
         "figcaption { font-size: 0.9em; color: #444; }\n"
         ".file { color: #888; font-family: monospace; }\n"
         "</style>\n</head>\n<body>\n<h1>" +
         escape_html(title_) + "</h1>\n" + body_ + "</body>\n</html>\n";
}

void Html::write(const std::string& path) const { write_text_file(path, str()); }

void write_text_file(const std::string& path, const std::string& text) {
  image::write_file_atomically(path, std::vector<uint8_t>(text.begin(), text.end()));
}

void write_json(const std::string& path, const json::Value& value) { write_text_file(path, json::dump(value, 2) + "\n"); }

void write_losses_csv(const std::string& path, const std::vector<float>& losses, int64_t steps_per_epoch) {
  ENGINE_CHECK(steps_per_epoch >= 1, "write_losses_csv: steps_per_epoch must be >= 1, got ", steps_per_epoch);
  std::string text = "step,epoch,loss\n";
  char line[80];
  for (size_t i = 0; i < losses.size(); ++i) {
    const auto step = static_cast<long long>(i + 1);
    std::snprintf(line, sizeof(line), "%lld,%lld,%.9g\n", step, (step - 1) / steps_per_epoch + 1,
                  static_cast<double>(losses[i]));
    text += line;
  }
  write_text_file(path, text);
}

std::vector<float> read_losses_csv(const std::string& path) {
  std::ifstream in(path);
  ENGINE_CHECK(in, "read_losses_csv: cannot open '", path, "'");
  std::string line;
  ENGINE_CHECK(std::getline(in, line) && line == "step,epoch,loss", "read_losses_csv: '", path,
               "': expected the header 'step,epoch,loss', got '", line, "'");
  std::vector<float> losses;
  while (std::getline(in, line)) {
    long long step = 0, epoch = 0;
    float loss = 0;
    char rest = 0;
    // %f reads "nan" and "inf" too.
    const int fields = std::sscanf(line.c_str(), "%lld,%lld,%f%c", &step, &epoch, &loss, &rest);
    ENGINE_CHECK(fields == 3 && step == static_cast<long long>(losses.size()) + 1, "read_losses_csv: '", path,
                 "' line ", losses.size() + 2, ": expected 'step,epoch,loss' with step ", losses.size() + 1,
                 ", got '", line, "'");
    losses.push_back(loss);
  }
  return losses;
}

void set_run_metrics(json::Value& metrics, const TrainingFacts& facts, int64_t steps) {
  metrics.set("device", facts.device.str());
  metrics.set("threads", facts.threads);
  metrics.set("parameters", facts.parameters);
  metrics.set("steps", steps);
  metrics.set("steps_per_epoch", facts.steps_per_epoch);
  metrics.set("wall_seconds", facts.wall_seconds);
  metrics.set("train_seconds", facts.train_seconds);
  metrics.set("images_per_second", facts.images_per_second);
}

std::vector<double> epoch_mean_losses(const std::vector<float>& losses, int64_t steps_per_epoch) {
  ENGINE_CHECK(steps_per_epoch >= 1, "epoch_mean_losses: steps_per_epoch must be >= 1, got ", steps_per_epoch);
  const auto steps = static_cast<int64_t>(losses.size());
  std::vector<double> means;
  for (int64_t begin = 0; begin < steps; begin += steps_per_epoch) {
    const int64_t end = std::min(begin + steps_per_epoch, steps);
    double total = 0;  // summed in double: an epoch has thousands of steps
    for (int64_t i = begin; i < end; ++i) total += losses[static_cast<size_t>(i)];
    means.push_back(total / static_cast<double>(end - begin));
  }
  return means;
}

std::string format_number(double value, int significant_digits) {
  if (std::isnan(value)) return "nan";
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%.*g", significant_digits, value);
  return buffer;
}

}  // namespace engine::report
