// PNG files, image grids and line plots: round trips through libpng, the
// grid layout checked pixel by pixel against the torchvision formula, the
// plot's curve where the axes say it must be.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "apps/common/png.h"
#include "tests/apps/app_test_util.h"

namespace engine::image {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) { return (fs::path(::testing::TempDir()) / name).string(); }

using app_test::error_of;

Image random_image(int64_t w, int64_t h, int64_t channels, uint32_t seed) {
  std::mt19937 rng(seed);
  Image image(w, h, channels);
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(rng());
  return image;
}

TEST(Png, GrayAndRgbRoundTripExactly) {
  for (int64_t channels : {1, 3}) {
    const Image original = random_image(37, 23, channels, static_cast<uint32_t>(channels));
    const std::string path = temp_path("engine_png_test_" + std::to_string(channels) + ".png");
    write_png(path, original);
    const Image back = read_png(path);
    EXPECT_EQ(back.width, 37);
    EXPECT_EQ(back.height, 23);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, original.pixels) << channels << " channels";
  }
}

TEST(Png, OverwritesAtomicallyWithoutLeavingTemporaryFiles) {
  const std::string dir = temp_path("engine_png_test_atomic");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = dir + "/figure.png";
  write_png(path, Image(5, 4, 1, 10));
  write_png(path, Image(6, 3, 1, 20));  // replaces the first
  const Image back = read_png(path);
  EXPECT_EQ(back.width, 6);
  EXPECT_EQ(back.pixels, std::vector<uint8_t>(18, 20));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    ++files;
    EXPECT_EQ(entry.path().filename(), "figure.png");
  }
  EXPECT_EQ(files, 1);
}

TEST(Png, ToByteRoundsAndClamps) {
  EXPECT_EQ(to_byte(0.0f), 0);
  EXPECT_EQ(to_byte(1.0f), 255);
  EXPECT_EQ(to_byte(-0.5f), 0);
  EXPECT_EQ(to_byte(7.0f), 255);
  EXPECT_EQ(to_byte(std::nanf("")), 0);
  EXPECT_EQ(to_byte(0.5f), 128);                 // 127.5 rounds up
  EXPECT_EQ(to_byte(100.4f / 255.0f), 100);
  EXPECT_EQ(to_byte(100.6f / 255.0f), 101);
}

TEST(Png, GridLayoutFollowsTorchvisionMakeGrid) {
  // N = 5 images of H x W = 4 x 6 in 3 columns with padding 2:
  //   width  = 3 * (6 + 2) + 2 = 26,  height = 2 * (4 + 2) + 2 = 14.
  const int64_t n = 5, h = 4, w = 6;
  std::vector<float> values(n * h * w);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 97) / 96.0f;
  const Tensor images = Tensor::from_vector(values, {n, 1, h, w});
  const GridOptions options{.columns = 3, .padding = 2, .pad_value = 0.5f};
  const Image grid = make_grid(images, options);
  ASSERT_EQ(grid.width, 26);
  ASSERT_EQ(grid.height, 14);
  ASSERT_EQ(grid.channels, 1);
  // Every pixel is either image i's pixel or padding.
  std::vector<bool> covered(static_cast<size_t>(grid.width * grid.height), false);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const int64_t gx = 2 + (i % 3) * (w + 2) + x, gy = 2 + (i / 3) * (h + 2) + y;
        EXPECT_EQ(grid.at(gx, gy), to_byte(values[static_cast<size_t>((i * h + y) * w + x)])) << i << " " << y << " " << x;
        covered[static_cast<size_t>(gy * grid.width + gx)] = true;
      }
  for (int64_t gy = 0; gy < grid.height; ++gy) {
    for (int64_t gx = 0; gx < grid.width; ++gx) {
      if (!covered[static_cast<size_t>(gy * grid.width + gx)]) {
        EXPECT_EQ(grid.at(gx, gy), 128) << gx << " " << gy;
      }
    }
  }

  // Fewer images than columns: the grid is as wide as the batch.
  const Image narrow = make_grid(Tensor::zeros({2, 1, 3, 3}), {.columns = 8, .padding = 1});
  EXPECT_EQ(narrow.width, 2 * (3 + 1) + 1);
  EXPECT_EQ(narrow.height, 3 + 2);
}

TEST(Png, GridPngRoundTripWithinQuantisation) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> uniform(-0.2f, 1.2f);  // includes values that must clamp
  std::vector<float> values(6 * 3 * 5 * 4);
  for (float& v : values) v = uniform(rng);
  const Tensor images = Tensor::from_vector(values, {6, 3, 5, 4});
  const std::string path = temp_path("engine_png_test_grid.png");
  write_grid_png(path, images, {.columns = 4, .padding = 1});
  const Image back = read_png(path);
  ASSERT_EQ(back.channels, 3);
  ASSERT_EQ(back.width, 4 * (4 + 1) + 1);
  ASSERT_EQ(back.height, 2 * (5 + 1) + 1);
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 5; ++y)
        for (int64_t x = 0; x < 4; ++x) {
          const float expected = std::clamp(values[static_cast<size_t>(((i * 3 + c) * 5 + y) * 4 + x)], 0.0f, 1.0f);
          const float actual = back.at(1 + (i % 4) * 5 + x, 1 + (i / 4) * 6 + y, c) / 255.0f;
          EXPECT_LE(std::abs(actual - expected), 0.5f / 255.0f + 1e-6f) << i << " " << c << " " << y << " " << x;
        }
}

TEST(Png, ErrorsNameTheFile) {
  std::string message = error_of([] { write_png("/nonexistent-dir/out.png", Image(2, 2, 1)); });
  EXPECT_NE(message.find("/nonexistent-dir/out.png"), std::string::npos) << message;

  message = error_of([] { read_png("/nonexistent-dir/in.png"); });
  EXPECT_NE(message.find("'/nonexistent-dir/in.png': no such file"), std::string::npos) << message;

  const std::string not_png = temp_path("engine_png_test_not_a_png.png");
  std::ofstream(not_png) << "hello, not a PNG";
  message = error_of([&] { read_png(not_png); });
  EXPECT_NE(message.find(not_png), std::string::npos) << message;
  EXPECT_NE(message.find("not a readable PNG"), std::string::npos) << message;

  Image wrong(3, 3, 1);
  wrong.pixels.pop_back();
  message = error_of([&] { write_png(temp_path("engine_png_test_wrong.png"), wrong); });
  EXPECT_NE(message.find("expected 9 pixel bytes"), std::string::npos) << message;

  message = error_of([] { make_grid(Tensor::zeros({2, 2, 3, 3})); });
  EXPECT_NE(message.find("expected C = 1 (gray) or 3 (RGB)"), std::string::npos) << message;
  EXPECT_NE(message.find("[2, 2, 3, 3]"), std::string::npos) << message;
  message = error_of([] { make_grid(Tensor::zeros({2, 3, 3})); });
  EXPECT_NE(message.find("make_grid"), std::string::npos) << message;
  message = error_of([] { make_grid(Tensor::zeros({2, 1, 3, 3}), {.columns = 0}); });
  EXPECT_NE(message.find("'columns': expected >= 1, got 0"), std::string::npos) << message;
}

// The column span [first, last] of pixels with exactly this color, per row.
struct ColorPixels {
  std::vector<std::pair<int64_t, int64_t>> points;  // (x, y)
};
ColorPixels find_color(const Image& image, uint8_t r, uint8_t g, uint8_t b) {
  ColorPixels found;
  for (int64_t y = 0; y < image.height; ++y)
    for (int64_t x = 0; x < image.width; ++x)
      if (image.at(x, y, 0) == r && image.at(x, y, 1) == g && image.at(x, y, 2) == b) found.points.push_back({x, y});
  return found;
}

// Mean y of the curve's pixels in column x (-1 if none).
double curve_y_at(const ColorPixels& curve, int64_t x) {
  double sum = 0;
  int count = 0;
  for (const auto& [px, py] : curve.points)
    if (px == x) sum += static_cast<double>(py), ++count;
  return count ? sum / count : -1;
}

TEST(Png, LinePlotDrawsCurvesWhereTheAxesPutThem) {
  // A straight rising line on linear axes, and a decaying exponential that
  // is straight on a log axis: in both, the curve's middle column lies
  // halfway between its ends.
  Series rising;
  for (int i = 0; i <= 100; ++i) rising.x.push_back(i), rising.y.push_back(3.0 + 0.5 * i);
  rising.red = 200, rising.green = 30, rising.blue = 40;
  Series decaying;
  for (int i = 0; i <= 100; ++i) decaying.x.push_back(i), decaying.y.push_back(std::pow(10.0, -3.0 * i / 100.0));

  for (const bool log_y : {false, true}) {
    const Series& series = log_y ? decaying : rising;
    const Image plot = draw_line_plot({series}, {.width = 400, .height = 300, .log_y = log_y});
    ASSERT_EQ(plot.width, 400);
    ASSERT_EQ(plot.height, 300);
    ASSERT_EQ(plot.channels, 3);
    const ColorPixels curve = find_color(plot, series.red, series.green, series.blue);
    ASSERT_GT(curve.points.size(), 100u) << "log_y " << log_y;
    int64_t left = plot.width, right = 0;
    for (const auto& [x, y] : curve.points) left = std::min(left, x), right = std::max(right, x);
    const double y_left = curve_y_at(curve, left), y_right = curve_y_at(curve, right);
    const double y_middle = curve_y_at(curve, (left + right) / 2);
    if (log_y) EXPECT_LT(y_left, y_right) << "decaying: starts high (small pixel y)";
    else EXPECT_GT(y_left, y_right) << "rising: ends high";
    EXPECT_NEAR(y_middle, 0.5 * (y_left + y_right), 3.0) << "log_y " << log_y;
  }
}

TEST(Png, LinePlotHandlesGapsConstantsAndEmptyInput) {
  Series gappy;
  gappy.x = {0, 1, 2, 3, 4};
  gappy.y = {1.0, std::nan(""), 2.0, -1.0, 3.0};  // NaN is a gap; -1 is a gap on a log axis
  EXPECT_NO_THROW(draw_line_plot({gappy}, {.log_y = true}));
  Series flat;
  flat.x = {0, 1};
  flat.y = {2.0, 2.0};
  EXPECT_NO_THROW(draw_line_plot({flat}));
  EXPECT_NO_THROW(draw_line_plot({}));
  const std::string path = temp_path("engine_png_test_plot.png");
  write_line_plot_png(path, {gappy, flat}, {.width = 320, .height = 200});
  const Image back = read_png(path);
  EXPECT_EQ(back.width, 320);
  EXPECT_EQ(back.height, 200);

  Series bad;
  bad.x = {0, 1};
  bad.y = {1};
  const std::string message = error_of([&] { draw_line_plot({flat, bad}); });
  EXPECT_NE(message.find("series 1: expected as many x as y values, got 2 x and 1 y"), std::string::npos) << message;
}

}  // namespace
}  // namespace engine::image
