// Image output for the apps: 8-bit PNG files (through libpng), image grids of
// samples, and line plots of loss curves, drawn by hand into a pixel buffer.
//
// An Image is a plain host buffer of 8-bit pixels, rows top to bottom,
// channels interleaved within a pixel:
//   pixels[(y * width + x) * channels + c]     c < channels, channels 1 (gray) or 3 (RGB)
// It is what PNG and GIF files store; tensors become Images through
// make_grid, which maps a float in [0, 1] to the byte round(255 x) the way
// torchvision.utils.save_image does.
//
// Every file is written atomically: to "<path>.tmp.<pid>" first, then renamed
// over <path>, so a crash never leaves a half-written figure behind and an
// existing file is replaced whole or not at all.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace engine::image {

struct Image {
  int64_t width = 0;
  int64_t height = 0;
  int64_t channels = 1;  // 1 = gray, 3 = RGB
  std::vector<uint8_t> pixels;  // height * width * channels bytes

  Image() = default;
  // A width x height image with every byte set to `fill`.
  Image(int64_t width, int64_t height, int64_t channels, uint8_t fill = 0);

  uint8_t& at(int64_t x, int64_t y, int64_t c = 0) { return pixels[static_cast<size_t>((y * width + x) * channels + c)]; }
  uint8_t at(int64_t x, int64_t y, int64_t c = 0) const {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
};

// --- Files ---------------------------------------------------------------------
// Writes `bytes` to `path` atomically (temp file + rename). Throws an
// engine::Error naming the file if any step fails. Shared by the PNG and GIF
// writers.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes);

// Writes an 8-bit gray (channels 1) or RGB (channels 3) PNG, atomically.
void write_png(const std::string& path, const Image& image);
// Reads any PNG libpng understands; returns gray (1 channel) if the file is
// gray, RGB (3 channels) otherwise (alpha, if any, is composited onto black).
Image read_png(const std::string& path);

// --- Tensors to images -------------------------------------------------------------
// Float in [0, 1] -> byte: clamp to [0, 1], then floor(255 x + 0.5) (NaN -> 0).
uint8_t to_byte(float value);

struct GridOptions {
  int64_t columns = 8;     // images per row (torchvision's nrow)
  int64_t padding = 2;     // pixels between images and around the border
  float pad_value = 0.0f;  // value of the padding, in [0, 1]
};

// Tiles a batch of images into one, the way torchvision.utils.make_grid does.
//   images: float tensor [N, C, H, W] on any device, C = 1 (gray) or 3 (RGB),
//           values clamped to [0, 1].
// With cols = min(columns, N) and rows = ceil(N / cols), the result is
//   width  = cols * (W + padding) + padding
//   height = rows * (H + padding) + padding
// and image n sits at column n % cols, row n / cols, its top-left pixel at
//   (padding + (n % cols) * (W + padding), padding + (n / cols) * (H + padding)).
Image make_grid(const Tensor& images, const GridOptions& options = {});

// make_grid + write_png.
void write_grid_png(const std::string& path, const Tensor& images, const GridOptions& options = {});

// --- Line plots ------------------------------------------------------------------------
// One curve: points (x[i], y[i]) joined by straight lines, in a color.
struct Series {
  std::vector<double> x;
  std::vector<double> y;
  uint8_t red = 31, green = 119, blue = 180;  // matplotlib's first color ("tab:blue")
};

struct PlotOptions {
  int64_t width = 640;
  int64_t height = 400;
  // Logarithmic y axis (base 10); points with y <= 0 are skipped.
  bool log_y = false;
};

// Draws the curves on white with a black frame, tick marks and numeric tick
// labels (a tiny built-in 3x5 pixel font for digits, '.', '-' and 'e'); the
// axes span the data range (y widened to "nice" round tick values).
// Non-finite points are skipped. There is no legend or title: name the
// curves in the caption of the report that shows the figure.
Image draw_line_plot(const std::vector<Series>& series, const PlotOptions& options = {});

// draw_line_plot + write_png.
void write_line_plot_png(const std::string& path, const std::vector<Series>& series,
                         const PlotOptions& options = {});

}  // namespace engine::image
