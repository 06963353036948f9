// PNG files through libpng's "simplified API" (png_image_*, libpng >= 1.6),
// image grids, and hand-drawn line plots. See png.h for the contracts.
#include "apps/common/png.h"

#include <png.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace engine::image {

Image::Image(int64_t width_, int64_t height_, int64_t channels_, uint8_t fill)
    : width(width_), height(height_), channels(channels_) {
  ENGINE_CHECK(width_ >= 0 && height_ >= 0 && (channels_ == 1 || channels_ == 3),
               "Image: expected width, height >= 0 and 1 or 3 channels, got ", width_, " x ", height_, " x ",
               channels_);
  pixels.assign(static_cast<size_t>(width_ * height_ * channels_), fill);
}

// ---------------------------------------------------------------------------------
// Atomic file writes
// ---------------------------------------------------------------------------------
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  // The temp file sits next to the target (same directory, so the same
  // filesystem, where rename() replaces the target in one step) and carries
  // the process id, so two processes writing the same figure do not collide.
  const std::string temp_path = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp_path, std::ios::binary | std::ios::trunc);
    ENGINE_CHECK(out.is_open(), "cannot write '", path, "': cannot create the temporary file '", temp_path,
                 "' (does the directory exist and is it writable?)");
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      std::error_code ignored;
      std::filesystem::remove(temp_path, ignored);
      throw Error("cannot write '" + path + "': writing " + std::to_string(bytes.size()) + " bytes to '" +
                  temp_path + "' failed (disk full?)");
    }
  }
  std::error_code error;
  std::filesystem::rename(temp_path, path, error);
  if (error) {
    std::error_code ignored;
    std::filesystem::remove(temp_path, ignored);
    throw Error("cannot write '" + path + "': renaming '" + temp_path + "' to it failed: " + error.message());
  }
}

// ---------------------------------------------------------------------------------
// PNG
// ---------------------------------------------------------------------------------
namespace {

void check_image(const char* what, const std::string& path, const Image& image) {
  ENGINE_CHECK(image.channels == 1 || image.channels == 3, what, " '", path,
               "': expected an image with 1 (gray) or 3 (RGB) channels, got ", image.channels);
  ENGINE_CHECK(image.width >= 1 && image.height >= 1 && image.width <= (int64_t{1} << 24) &&
                   image.height <= (int64_t{1} << 24),
               what, " '", path, "': expected width and height in [1, 2^24], got ", image.width, " x ",
               image.height);
  ENGINE_CHECK(static_cast<int64_t>(image.pixels.size()) == image.width * image.height * image.channels, what,
               " '", path, "': expected ", image.width * image.height * image.channels,
               " pixel bytes (width x height x channels), got ", image.pixels.size());
}

}  // namespace

void write_png(const std::string& path, const Image& image) {
  check_image("write_png", path, image);
  png_image png;
  std::fill_n(reinterpret_cast<unsigned char*>(&png), sizeof png, 0);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = image.channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  const auto row_stride = static_cast<png_int_32>(image.width * image.channels);

  // First call: how many bytes the encoded file needs; second: encode.
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, image.pixels.data(), row_stride, nullptr)) {
    throw Error("write_png '" + path + "': libpng failed to encode the image: " + png.message);
  }
  std::vector<uint8_t> encoded(size);
  if (!png_image_write_to_memory(&png, encoded.data(), &size, 0, image.pixels.data(), row_stride, nullptr)) {
    throw Error("write_png '" + path + "': libpng failed to encode the image: " + png.message);
  }
  encoded.resize(size);
  write_file_atomically(path, encoded);
}

Image read_png(const std::string& path) {
  png_image png;
  std::fill_n(reinterpret_cast<unsigned char*>(&png), sizeof png, 0);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str())) {
    const std::string reason = png.message;
    png_image_free(&png);
    ENGINE_CHECK(std::filesystem::exists(path), "read_png '", path, "': no such file");
    throw Error("read_png '" + path + "': not a readable PNG file: " + reason);
  }
  const bool color = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  png.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;  // 8 bits per channel, no alpha
  Image image(png.width, png.height, color ? 3 : 1, 0);  // zeros: alpha composites onto black
  if (!png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr)) {
    const std::string reason = png.message;
    png_image_free(&png);
    throw Error("read_png '" + path + "': corrupt PNG data: " + reason);
  }
  return image;
}

// ---------------------------------------------------------------------------------
// Tensors to images
// ---------------------------------------------------------------------------------
uint8_t to_byte(float value) {
  if (!(value > 0.0f)) return 0;  // also NaN
  if (value >= 1.0f) return 255;
  return static_cast<uint8_t>(std::floor(value * 255.0f + 0.5f));
}

Image make_grid(const Tensor& images, const GridOptions& options) {
  check_defined("make_grid", "images", images);
  check_float32("make_grid", "images", images);
  check_dim("make_grid", "images", images, 4, "[N, C, H, W]");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  ENGINE_CHECK(c == 1 || c == 3, "make_grid: argument 'images': expected C = 1 (gray) or 3 (RGB) in [N, C, H, W], got ",
               shape_str(images.shape()));
  ENGINE_CHECK(n >= 1 && h >= 1 && w >= 1, "make_grid: argument 'images': expected a non-empty batch, got ",
               shape_str(images.shape()));
  ENGINE_CHECK(options.columns >= 1, "make_grid: option 'columns': expected >= 1, got ", options.columns);
  ENGINE_CHECK(options.padding >= 0, "make_grid: option 'padding': expected >= 0, got ", options.padding);

  const int64_t cols = std::min(options.columns, n);
  const int64_t rows = (n + cols - 1) / cols;
  Image grid(cols * (w + options.padding) + options.padding, rows * (h + options.padding) + options.padding, c,
             to_byte(options.pad_value));
  const std::vector<float> values = images.to_vector();  // host copy, from any device
  for (int64_t i = 0; i < n; ++i) {
    const int64_t left = options.padding + (i % cols) * (w + options.padding);
    const int64_t top = options.padding + (i / cols) * (h + options.padding);
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* plane = values.data() + (i * c + ch) * h * w;  // images[i, ch] is [H, W]
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) grid.at(left + x, top + y, ch) = to_byte(plane[y * w + x]);
    }
  }
  return grid;
}

void write_grid_png(const std::string& path, const Tensor& images, const GridOptions& options) {
  write_png(path, make_grid(images, options));
}

// ---------------------------------------------------------------------------------
// Line plots
// ---------------------------------------------------------------------------------
namespace {

// A 3x5 pixel font for tick labels. Each glyph is 5 rows, top to bottom; each
// row is 3 bits, the leftmost pixel in the highest bit (0b100).
struct Glyph {
  char symbol;
  std::array<uint8_t, 5> rows;
};
constexpr std::array<Glyph, 13> kFont = {{
    {'0', {0b111, 0b101, 0b101, 0b101, 0b111}},
    {'1', {0b010, 0b110, 0b010, 0b010, 0b111}},
    {'2', {0b111, 0b001, 0b111, 0b100, 0b111}},
    {'3', {0b111, 0b001, 0b111, 0b001, 0b111}},
    {'4', {0b101, 0b101, 0b111, 0b001, 0b001}},
    {'5', {0b111, 0b100, 0b111, 0b001, 0b111}},
    {'6', {0b111, 0b100, 0b111, 0b101, 0b111}},
    {'7', {0b111, 0b001, 0b001, 0b001, 0b001}},
    {'8', {0b111, 0b101, 0b111, 0b101, 0b111}},
    {'9', {0b111, 0b101, 0b111, 0b001, 0b111}},
    {'.', {0b000, 0b000, 0b000, 0b000, 0b010}},
    {'-', {0b000, 0b000, 0b111, 0b000, 0b000}},
    {'e', {0b010, 0b101, 0b111, 0b100, 0b011}},
}};
constexpr int64_t kFontScale = 2;                    // each font pixel is 2x2 image pixels
constexpr int64_t kGlyphWidth = 3 * kFontScale;      // 6
constexpr int64_t kGlyphHeight = 5 * kFontScale;     // 10
constexpr int64_t kGlyphAdvance = 4 * kFontScale;    // glyph + one blank column

struct Color {
  uint8_t r, g, b;
};

// An RGB canvas whose pixel writes outside a clip rectangle are dropped.
struct Canvas {
  Image image;
  int64_t clip_left, clip_top, clip_right, clip_bottom;  // inclusive

  Canvas(int64_t width, int64_t height)
      : image(width, height, 3, 255), clip_left(0), clip_top(0), clip_right(width - 1), clip_bottom(height - 1) {}

  void set(int64_t x, int64_t y, Color color) {
    if (x < clip_left || x > clip_right || y < clip_top || y > clip_bottom) return;
    image.at(x, y, 0) = color.r;
    image.at(x, y, 1) = color.g;
    image.at(x, y, 2) = color.b;
  }
  void unclip() {
    clip_left = clip_top = 0;
    clip_right = image.width - 1;
    clip_bottom = image.height - 1;
  }
  void horizontal(int64_t x0, int64_t x1, int64_t y, Color color) {
    for (int64_t x = std::min(x0, x1); x <= std::max(x0, x1); ++x) set(x, y, color);
  }
  void vertical(int64_t x, int64_t y0, int64_t y1, Color color) {
    for (int64_t y = std::min(y0, y1); y <= std::max(y0, y1); ++y) set(x, y, color);
  }
  // Bresenham's line from (x0, y0) to (x1, y1), two pixels thick (the pixel
  // below each one is set too).
  void line(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Color color) {
    const int64_t dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
    const int64_t step_x = x0 < x1 ? 1 : -1, step_y = y0 < y1 ? 1 : -1;
    int64_t error = dx + dy;  // error of the next candidate pixel, scaled by 1
    while (true) {
      set(x0, y0, color);
      set(x0, y0 + 1, color);
      if (x0 == x1 && y0 == y1) break;
      const int64_t doubled = 2 * error;
      if (doubled >= dy) { error += dy; x0 += step_x; }
      if (doubled <= dx) { error += dx; y0 += step_y; }
    }
  }
  // Draws `text` with its top-left corner at (x, y); unknown characters are blank.
  void text(int64_t x, int64_t y, const std::string& text, Color color) {
    for (size_t i = 0; i < text.size(); ++i) {
      for (const Glyph& glyph : kFont) {
        if (glyph.symbol != text[i]) continue;
        for (int64_t row = 0; row < 5; ++row)
          for (int64_t col = 0; col < 3; ++col)
            if (glyph.rows[static_cast<size_t>(row)] & (0b100 >> col))
              for (int64_t sy = 0; sy < kFontScale; ++sy)
                for (int64_t sx = 0; sx < kFontScale; ++sx)
                  set(x + static_cast<int64_t>(i) * kGlyphAdvance + col * kFontScale + sx, y + row * kFontScale + sy,
                      color);
      }
    }
  }
};

int64_t text_width(const std::string& text) {
  return text.empty() ? 0 : static_cast<int64_t>(text.size()) * kGlyphAdvance - kFontScale;
}

// The "nice" step for about `target` intervals over `span`: 1, 2 or 5 x 10^k.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / magnitude;
  return (fraction <= 1.0 ? 1.0 : fraction <= 2.0 ? 2.0 : fraction <= 5.0 ? 5.0 : 10.0) * magnitude;
}

// "%g" with at most 4 significant digits, exponent compacted: 1e+06 -> 1e6, 2.5e-05 -> 2.5e-5.
std::string format_number(double value) {
  if (std::abs(value) < 1e-300) return "0";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.4g", value);
  std::string text = buffer;
  const size_t e = text.find('e');
  if (e == std::string::npos) return text;
  std::string mantissa = text.substr(0, e), exponent = text.substr(e + 1);
  const bool negative = exponent[0] == '-';
  exponent = exponent.substr(1);  // drop the sign
  while (exponent.size() > 1 && exponent[0] == '0') exponent.erase(0, 1);
  return mantissa + "e" + (negative ? "-" : "") + exponent;
}

struct Axis {
  double low, high;            // the axis range (in log10 units for a log axis)
  std::vector<double> ticks;   // tick positions, inside [low, high], same units
  std::vector<std::string> labels;
};

// A linear axis over the data range [low, high]. With `widen`, the range is
// extended outward to whole multiples of the tick step.
Axis linear_axis(double low, double high, bool widen) {
  if (high - low < 1e-12 * std::max(1.0, std::abs(high))) {  // a constant: give it room
    const double pad = std::abs(low) > 0 ? 0.5 * std::abs(low) : 1.0;
    low -= pad;
    high += pad;
  }
  const double step = nice_step(high - low, 5);
  if (widen) {
    low = std::floor(low / step) * step;
    high = std::ceil(high / step) * step;
  }
  Axis axis{low, high, {}, {}};
  for (int64_t k = static_cast<int64_t>(std::ceil(low / step - 1e-9)); k * step <= high + 1e-9 * step; ++k) {
    axis.ticks.push_back(static_cast<double>(k) * step);
    axis.labels.push_back(format_number(static_cast<double>(k) * step));  // k * step: no drift
  }
  return axis;
}

// A log10 axis over data [low, high] (both > 0), widened to whole decades,
// with a tick at every decade (every 2nd, 3rd, ... when there are many).
Axis log_axis(double low, double high) {
  double low_decade = std::floor(std::log10(low));
  double high_decade = std::ceil(std::log10(high));
  if (high_decade <= low_decade) high_decade = low_decade + 1;
  const int64_t every = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((high_decade - low_decade) / 8)));
  Axis axis{low_decade, high_decade, {}, {}};
  for (auto k = static_cast<int64_t>(low_decade); k <= static_cast<int64_t>(high_decade); k += every) {
    axis.ticks.push_back(static_cast<double>(k));
    axis.labels.push_back(k >= -2 && k <= 4 ? format_number(std::pow(10.0, static_cast<double>(k)))
                                            : "1e" + std::to_string(k));
  }
  return axis;
}

}  // namespace

Image draw_line_plot(const std::vector<Series>& series, const PlotOptions& options) {
  ENGINE_CHECK(options.width >= 120 && options.height >= 80 && options.width <= 8192 && options.height <= 8192,
               "draw_line_plot: expected width in [120, 8192] and height in [80, 8192], got ", options.width, " x ",
               options.height);
  for (size_t s = 0; s < series.size(); ++s)
    ENGINE_CHECK(series[s].x.size() == series[s].y.size(), "draw_line_plot: series ", s, ": expected as many x as y values, got ",
                 series[s].x.size(), " x and ", series[s].y.size(), " y");

  // 1. The data range over the points we can draw (in log10 units for log_y).
  auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!options.log_y || y > 0); };
  double x_low = std::numeric_limits<double>::infinity(), x_high = -x_low, y_low = x_low, y_high = -x_low;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i)
      if (usable(s.x[i], s.y[i])) {
        x_low = std::min(x_low, s.x[i]);
        x_high = std::max(x_high, s.x[i]);
        y_low = std::min(y_low, s.y[i]);
        y_high = std::max(y_high, s.y[i]);
      }
  if (!(x_low <= x_high)) {  // nothing to draw: empty axes over [0, 1]
    x_low = 0, x_high = 1, y_low = options.log_y ? 0.1 : 0, y_high = 1;
  }
  const Axis x_axis = linear_axis(x_low, x_high, /*widen=*/false);
  const Axis y_axis = options.log_y ? log_axis(y_low, y_high) : linear_axis(y_low, y_high, /*widen=*/true);

  // 2. Layout: the plot area is [left, right] x [top, bottom] in pixels; the
  // margins hold the tick labels.
  int64_t longest_label = 0;
  for (const std::string& label : y_axis.labels) longest_label = std::max(longest_label, text_width(label));
  const int64_t left = longest_label + 14, right = options.width - 16;
  const int64_t top = 12, bottom = options.height - kGlyphHeight - 14;
  auto to_px = [&](double x) {
    return left + static_cast<int64_t>(std::llround((x - x_axis.low) / (x_axis.high - x_axis.low) * double(right - left)));
  };
  auto to_py = [&](double y) {  // y in axis units (log10 already applied)
    return bottom - static_cast<int64_t>(std::llround((y - y_axis.low) / (y_axis.high - y_axis.low) * double(bottom - top)));
  };

  // 3. Grid lines, curves (clipped to the plot area), frame, ticks, labels.
  const Color black{0, 0, 0}, grid_gray{225, 225, 225};
  Canvas canvas(options.width, options.height);
  for (double t : x_axis.ticks) canvas.vertical(to_px(t), top, bottom, grid_gray);
  for (double t : y_axis.ticks) canvas.horizontal(left, right, to_py(t), grid_gray);

  canvas.clip_left = left, canvas.clip_right = right, canvas.clip_top = top, canvas.clip_bottom = bottom;
  for (const Series& s : series) {
    const Color color{s.red, s.green, s.blue};
    bool have_previous = false;
    int64_t previous_x = 0, previous_y = 0;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!usable(s.x[i], s.y[i])) {  // a gap in the curve
        have_previous = false;
        continue;
      }
      const int64_t px = to_px(s.x[i]), py = to_py(options.log_y ? std::log10(s.y[i]) : s.y[i]);
      if (have_previous) canvas.line(previous_x, previous_y, px, py, color);
      else canvas.line(px, py, px, py, color);  // a lone point still shows
      previous_x = px, previous_y = py, have_previous = true;
    }
  }
  canvas.unclip();

  canvas.horizontal(left, right, top, black);
  canvas.horizontal(left, right, bottom, black);
  canvas.vertical(left, top, bottom, black);
  canvas.vertical(right, top, bottom, black);
  for (size_t i = 0; i < x_axis.ticks.size(); ++i) {
    const int64_t px = to_px(x_axis.ticks[i]);
    canvas.vertical(px, bottom, bottom + 4, black);
    const int64_t label_x = std::clamp(px - text_width(x_axis.labels[i]) / 2, int64_t{0},
                                       options.width - text_width(x_axis.labels[i]));
    canvas.text(label_x, bottom + 8, x_axis.labels[i], black);
  }
  for (size_t i = 0; i < y_axis.ticks.size(); ++i) {
    const int64_t py = to_py(y_axis.ticks[i]);
    canvas.horizontal(left - 4, left, py, black);
    canvas.text(left - 8 - text_width(y_axis.labels[i]), py - kGlyphHeight / 2, y_axis.labels[i], black);
  }
  return std::move(canvas.image);
}

void write_line_plot_png(const std::string& path, const std::vector<Series>& series, const PlotOptions& options) {
  write_png(path, draw_line_plot(series, options));
}

}  // namespace engine::image
