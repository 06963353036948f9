// Golden files from the PyTorch reference, and how the parity tests compare
// against them.
//
// The files in tests/data/golden/ are written by tools/parity/make_golden.py
// (see tools/parity/README.md); CI needs only the files, never PyTorch.
// Every expected tensor NAME was computed by PyTorch in float64 from float32
// inputs and rounded to float32 once, so it is the exact answer; beside it
// the scalar "f32err.NAME" holds the largest absolute error PyTorch's own
// float32 computation of NAME makes. That is the yardstick of float32
// round-off for that tensor, measured rather than guessed: it already knows
// how long the reductions behind the tensor are (a sum of K terms errs by
// about sqrt(K) eps times the size of its terms) and how much a whole UNet
// amplifies them.
//
// A tensor matches when
//     max_i |actual_i - expected_i|  <=  tol
//     tol = max(factor * f32err, rel_floor * max_i |expected_i|, abs_floor)
// factor: the engine may round differently from PyTorch (another summation
//   order in its GEMM, another erf), but by the same order of magnitude; the
//   tests use 8 for single ops and 16 through a whole UNet, where one sample of
//   the round-off of ~20 layers can land farther from its typical size.
// rel_floor: a few float32 ulps of the tensor's largest element, for tensors
//   PyTorch happens to compute exactly (f32err = 0: concat, add) while the
//   engine may round once (2^-24 = 6e-8 is one ulp; the default allows ~16).
// abs_floor: for tensors that are zero in exact arithmetic (see the tests).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <string>

#include "core/safetensors.h"
#include "core/tensor.h"

namespace engine::parity {

// <repo>/tests/data/golden/<file>.
inline std::string golden_path(const std::string& file) {
  return std::string(ENGINE_TEST_DATA_DIR) + "/golden/" + file;
}

struct Tolerance {
  double factor = 8.0;
  double rel_floor = 1e-6;
  double abs_floor = 0.0;
};

class GoldenFile {
 public:
  explicit GoldenFile(const std::string& file) : file_(file) {
    SafetensorsContents contents = load_safetensors(golden_path(file));
    for (auto& [name, tensor] : contents.tensors) tensors_.emplace(name, tensor);
    metadata_ = std::move(contents.metadata);
  }

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }

  // The tensor `name`; throws (failing the test with a message) when missing.
  const Tensor& get(const std::string& name) const {
    auto it = tensors_.find(name);
    ENGINE_CHECK(it != tensors_.end(), "golden file ", file_, " has no tensor '", name,
                 "': regenerate it with tools/parity/make_golden.py");
    return it->second;
  }

  // A fresh copy (the golden tensors are never modified by a test).
  Tensor copy(const std::string& name) const { return get(name).clone(); }

  // The float32 round-off PyTorch makes on `name` (0 when not recorded).
  double f32err(const std::string& name) const {
    return has("f32err." + name) ? static_cast<double>(get("f32err." + name).item()) : 0.0;
  }

  // All tensors whose name starts with `prefix`, the prefix cut off, in
  // sorted order (a state dict to load; load_state_dict matches by key).
  NamedTensors with_prefix(const std::string& prefix) const {
    NamedTensors out;
    for (const auto& [name, tensor] : tensors_)
      if (name.rfind(prefix, 0) == 0) out.emplace_back(name.substr(prefix.size()), tensor.clone());
    return out;
  }

  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::map<std::string, Tensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The tolerance of `name` under `tol` (see the top of this file).
inline double tolerance_of(const GoldenFile& golden, const std::string& name, const Tolerance& tol) {
  const Tensor& expected = golden.get(name);
  double max_expected = 0.0;
  for (float v : expected.to_vector()) max_expected = std::max(max_expected, std::fabs(static_cast<double>(v)));
  return std::max({tol.factor * golden.f32err(name), tol.rel_floor * max_expected, tol.abs_floor});
}

// The largest engine/PyTorch float32 error ratio seen since the last report,
// and where: the tests print it, so the margin under the tolerance is visible.
struct WorstRatio {
  double ratio = 0.0;
  std::string where;
};
inline WorstRatio& worst_ratio() {
  static WorstRatio worst;
  return worst;
}
// Prints "[parity] <what>: worst engine error = R x PyTorch's float32 error (NAME)" and resets.
inline void report_worst_ratio(const std::string& what) {
  std::cout << "[parity] " << what << ": worst engine error = " << worst_ratio().ratio
            << " x PyTorch's own float32 error (" << worst_ratio().where << ")\n";
  worst_ratio() = WorstRatio{};
}

// EXPECTs that `actual` has the shape of golden tensor `name` and matches it
// within the tolerance; the message gives the worst element, the tolerance
// and the engine's error in units of PyTorch's own float32 error.
// Returns max |actual - expected| (for reports).
inline double expect_matches_golden(const GoldenFile& golden, const std::string& name, const Tensor& actual,
                                    const Tolerance& tol = {}) {
  const Tensor& expected = golden.get(name);
  EXPECT_TRUE(actual.defined()) << golden.file() << ": " << name << ": the engine produced no tensor";
  if (!actual.defined()) return INFINITY;
  EXPECT_EQ(shape_str(actual.shape()), shape_str(expected.shape())) << golden.file() << ": " << name;
  if (actual.shape() != expected.shape()) return INFINITY;
  const std::vector<float> a = actual.to_vector(), e = expected.to_vector();
  double worst = 0.0;
  size_t worst_index = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::fabs(static_cast<double>(a[i]) - static_cast<double>(e[i]));
    if (std::isnan(d)) {  // a NaN fails whatever the tolerance
      worst = d;
      worst_index = i;
      break;
    }
    if (d > worst) {
      worst = d;
      worst_index = i;
    }
  }
  const double limit = tolerance_of(golden, name, tol);
  const double f32 = golden.f32err(name);
  if (f32 > 0 && limit == tol.factor * f32 && worst / f32 > worst_ratio().ratio) worst_ratio() = WorstRatio{worst / f32, name};
  EXPECT_LE(worst, limit) << golden.file() << ": " << name << " " << shape_str(expected.shape())
                          << ": worst element " << worst_index << " engine " << a[worst_index] << " expected "
                          << e[worst_index] << "; max error " << worst << " > tolerance " << limit
                          << " (PyTorch's own float32 error: " << f32 << ", engine/PyTorch = "
                          << (f32 > 0 ? worst / f32 : 0.0) << ")";
  return worst;
}

// EXPECTs bit equality of two I64 tensors (num_batches_tracked, ...).
inline void expect_equal_i64(const GoldenFile& golden, const std::string& name, const Tensor& actual) {
  const Tensor& expected = golden.get(name);
  ASSERT_EQ(actual.dtype(), DType::I64) << name;
  EXPECT_EQ(actual.to_vector_i64(), expected.to_vector_i64()) << golden.file() << ": " << name;
}

}  // namespace engine::parity
