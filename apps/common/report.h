// The run report: what a run folder holds besides figures and checkpoints.
//
//   report.html    one self-contained page (inline CSS, no scripts, nothing
//                  fetched from the network): title, a settings table, the
//                  run's facts (device, wall time, images/s), then sections of
//                  figures (<img> of the PNG/GIF files next to it in the run
//                  folder, each with a caption), tables and paragraphs.
//   metrics.json   the numbers of the run (core/json.h), for scripts; the
//                  facts every training run has (TrainingFacts below) have
//                  the same names and order in every app.
//   losses.csv     one row per optimiser step: step,epoch,loss.
//
// Every file is written atomically (temp file + rename), so a report that
// is being rewritten is never seen half-written.
//
//   report::Html page("Denoiser run");
//   page.key_values("Settings", {{"sigma", "0.5"}, {"batch size", "256"}});
//   page.section("Training loss");
//   page.figure("loss.png", "Training loss of every step (log scale).");
//   page.table({"sigma", "MSE"}, {{"0.5", "0.0123"}});
//   page.write(folder.file("report.html"));
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "core/json.h"

namespace engine::report {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// Escapes & < > " ' for HTML text and attribute values.
std::string escape_html(const std::string& text);

class Html {
 public:
  explicit Html(std::string title);

  // A heading that starts a new section.
  void section(const std::string& heading);
  // A paragraph of plain text (escaped).
  void paragraph(const std::string& text);
  // A two-column table of names and values, with an optional caption.
  void key_values(const std::string& caption, const KeyValues& rows);
  // A table with a header row; every row must have as many cells as the header.
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
             const std::string& caption = "");
  // An image file in the run folder, by its file name relative to report.html.
  void figure(const std::string& file, const std::string& caption);

  std::string str() const;
  void write(const std::string& path) const;

 private:
  std::string title_;
  std::string body_;
};

// Writes `text` to `path` atomically.
void write_text_file(const std::string& path, const std::string& text);
// Writes metrics.json (indented by 2).
void write_json(const std::string& path, const json::Value& value);
// Writes losses.csv: header "step,epoch,loss", then for step s = 1, 2, ...
// (1-based) the epoch (s - 1) / steps_per_epoch + 1 and the loss with 9
// significant digits (enough to read a float back exactly).
void write_losses_csv(const std::string& path, const std::vector<float>& losses, int64_t steps_per_epoch);
// Reads losses.csv back (the loss column), checking the header and the step numbers.
std::vector<float> read_losses_csv(const std::string& path);

// --- What every training run reports ---------------------------------------------------
// The facts of a finished training run that every app's report holds; an
// app's own facts (its sampling time, its evaluation set) extend it.
struct TrainingFacts {
  std::string command_line;       // the command as typed
  Device device;
  int threads = 1;                // CPU threads of the kernels
  int64_t parameters = 0;         // of the model
  std::string train_description;  // the training set
  int64_t steps_per_epoch = 0;
  double wall_seconds = 0;        // this session, start to finish
  double train_seconds = 0;       // all sessions, training steps only
  double images_per_second = 0;   // this session
  bool resumed = false;           // continued from a checkpoint
};

// Sets the run's entries of metrics.json, in this order: device, threads,
// parameters, steps (optimiser steps over all sessions), steps_per_epoch,
// wall_seconds, train_seconds, images_per_second.
void set_run_metrics(json::Value& metrics, const TrainingFacts& facts, int64_t steps);

// The mean loss of each epoch e = 0, 1, ...: over the steps
// [e * steps_per_epoch, (e + 1) * steps_per_epoch), the last epoch possibly
// partial (a run that stopped inside it).
std::vector<double> epoch_mean_losses(const std::vector<float>& losses, int64_t steps_per_epoch);

// "%.4g"-style formatting for tables: 0.01234 -> "0.01234", 1234567 -> "1.235e+06".
std::string format_number(double value, int significant_digits = 4);

}  // namespace engine::report
