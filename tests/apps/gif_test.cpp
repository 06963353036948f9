// GIF writer: the file is parsed block by block here, and its LZW data is
// decoded by a small decoder written from the GIF89a specification
// (independent of the encoder), which must give back every frame's pixels.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "apps/common/gif.h"
#include "tests/apps/app_test_util.h"

namespace engine::image {
namespace {

// --- An independent LZW decoder (GIF flavour) --------------------------------------
// Codes are read least significant bit first. The dictionary starts with the
// 2^m single symbols plus the clear and end codes; every code after the first
// one following a clear adds "previous string + first symbol of this one".
// When the dictionary size reaches 2^width (and width < 12), codes get one
// bit wider.
std::vector<uint8_t> lzw_decode(const std::vector<uint8_t>& data, int min_code_size) {
  const size_t clear = size_t{1} << min_code_size, end = clear + 1;
  std::vector<std::vector<uint8_t>> dictionary;
  int width = 0;
  auto reset = [&] {
    dictionary.assign(end + 1, {});
    for (size_t s = 0; s < clear; ++s) dictionary[s] = {static_cast<uint8_t>(s)};
    width = min_code_size + 1;
  };
  reset();
  size_t bit = 0;
  auto read_code = [&]() -> size_t {
    size_t code = 0;
    for (int i = 0; i < width; ++i, ++bit) {
      if (bit / 8 >= data.size()) throw std::runtime_error("LZW data ends before the end code");
      code |= static_cast<size_t>((data[bit / 8] >> (bit % 8)) & 1) << i;
    }
    return code;
  };
  std::vector<uint8_t> out;
  bool have_previous = false;
  size_t previous = 0;
  while (true) {
    const size_t code = read_code();
    if (code == clear) {
      reset();
      have_previous = false;
      continue;
    }
    if (code == end) break;
    std::vector<uint8_t> entry;
    if (code < dictionary.size()) {
      entry = dictionary[code];
    } else if (code == dictionary.size() && have_previous) {  // the string being defined right now
      entry = dictionary[previous];
      entry.push_back(dictionary[previous][0]);
    } else {
      throw std::runtime_error("LZW code " + std::to_string(code) + " not in the dictionary (size " +
                               std::to_string(dictionary.size()) + ")");
    }
    if (have_previous && dictionary.size() < 4096) {
      std::vector<uint8_t> learned = dictionary[previous];
      learned.push_back(entry[0]);
      dictionary.push_back(learned);
      if (dictionary.size() == (size_t{1} << width) && width < 12) ++width;
    }
    out.insert(out.end(), entry.begin(), entry.end());
    previous = code;
    have_previous = true;
  }
  // Only zero padding may follow the end code, within its last byte.
  EXPECT_EQ((bit + 7) / 8, data.size()) << "bytes after the end code";
  return out;
}

// --- A GIF parser --------------------------------------------------------------------
struct ParsedGif {
  int width = 0, height = 0;
  bool gray_palette = true;
  int loop_count = -1;  // from NETSCAPE2.0; -1 if absent
  std::vector<int> delays;
  std::vector<std::vector<uint8_t>> frames;
};

ParsedGif parse_gif(const std::vector<uint8_t>& bytes) {
  ParsedGif gif;
  size_t pos = 0;
  auto need = [&](size_t n) {
    if (pos + n > bytes.size()) throw std::runtime_error("GIF ends early at byte " + std::to_string(pos));
  };
  auto u8 = [&] { need(1); return bytes[pos++]; };
  auto u16 = [&] { need(2); const int v = bytes[pos] | (bytes[pos + 1] << 8); pos += 2; return v; };
  auto sub_blocks = [&] {  // concatenated data of size-prefixed sub-blocks, up to the empty one
    std::vector<uint8_t> data;
    for (uint8_t size; (size = u8()) != 0;) {
      need(size);
      data.insert(data.end(), bytes.begin() + static_cast<long>(pos), bytes.begin() + static_cast<long>(pos + size));
      pos += size;
    }
    return data;
  };

  need(6);
  if (std::string(bytes.begin(), bytes.begin() + 6) != "GIF89a") throw std::runtime_error("no GIF89a signature");
  pos = 6;
  gif.width = u16();
  gif.height = u16();
  const uint8_t packed = u8();
  u8();  // background
  u8();  // aspect
  if (packed & 0x80) {
    const int entries = 2 << (packed & 7);
    for (int i = 0; i < entries; ++i) {
      const uint8_t r = u8(), g = u8(), b = u8();
      if (r != i || g != i || b != i) gif.gray_palette = false;
    }
  }
  int pending_delay = -1;
  while (true) {
    const uint8_t introducer = u8();
    if (introducer == 0x3B) break;  // trailer
    if (introducer == 0x21) {       // extension
      const uint8_t label = u8();
      const std::vector<uint8_t> data = sub_blocks();
      if (label == 0xF9 && data.size() == 4) pending_delay = data[1] | (data[2] << 8);
      if (label == 0xFF && data.size() == 14 && std::string(data.begin(), data.begin() + 11) == "NETSCAPE2.0")
        gif.loop_count = data[12] | (data[13] << 8);
      continue;
    }
    if (introducer != 0x2C) throw std::runtime_error("unknown block 0x" + std::to_string(introducer));
    const int left = u16(), top = u16(), w = u16(), h = u16();
    const uint8_t image_packed = u8();
    if (left != 0 || top != 0 || w != gif.width || h != gif.height || image_packed != 0)
      throw std::runtime_error("unexpected image descriptor");
    const int min_code_size = u8();
    std::vector<uint8_t> pixels = lzw_decode(sub_blocks(), min_code_size);
    if (pixels.size() != static_cast<size_t>(w * h)) throw std::runtime_error("frame has the wrong pixel count");
    gif.frames.push_back(std::move(pixels));
    gif.delays.push_back(pending_delay);
    pending_delay = -1;
  }
  if (pos != bytes.size()) throw std::runtime_error("bytes after the trailer");
  return gif;
}

std::vector<uint8_t> read_bytes(const std::string& path) { return app_test::read_file_bytes(path); }

Image random_image(int64_t w, int64_t h, uint32_t seed, int levels = 256) {
  std::mt19937 rng(seed);
  Image image(w, h, 1);
  for (uint8_t& p : image.pixels) p = static_cast<uint8_t>(rng() % static_cast<uint32_t>(levels));
  return image;
}

using app_test::error_of;

// --- Tests ---------------------------------------------------------------------------
TEST(Gif, LzwRoundTripAtEveryLengthAndCodeSize) {
  // Every length from 0 to 700 crosses the points where the code width grows
  // (and, for m = 2 with random data, where the table fills and is cleared).
  for (int m : {2, 3, 8}) {
    std::mt19937 rng(static_cast<uint32_t>(m));
    for (size_t length = 0; length <= 700; ++length) {
      std::vector<uint8_t> symbols(length);
      for (uint8_t& s : symbols) s = static_cast<uint8_t>(rng() % (1u << m));
      ASSERT_EQ(lzw_decode(lzw_encode(symbols, m), m), symbols) << "m " << m << " length " << length;
    }
  }
}

TEST(Gif, LzwRoundTripLongInputsWithTableResets) {
  // Random bytes learn a new code nearly every symbol: 40000 symbols fill
  // the 4096-entry table many times over. A constant run exercises the
  // "code being defined right now" case (KwKwK) at every step.
  std::mt19937 rng(7);
  std::vector<uint8_t> noise(40000);
  for (uint8_t& s : noise) s = static_cast<uint8_t>(rng());
  EXPECT_EQ(lzw_decode(lzw_encode(noise, 8), 8), noise);
  const std::vector<uint8_t> run(100000, 42);
  const std::vector<uint8_t> encoded = lzw_encode(run, 8);
  EXPECT_EQ(lzw_decode(encoded, 8), run);
  EXPECT_LT(encoded.size(), 2000u) << "a constant run must compress";
  std::vector<uint8_t> few_levels(50000);
  for (uint8_t& s : few_levels) s = static_cast<uint8_t>(rng() % 4);
  EXPECT_EQ(lzw_decode(lzw_encode(few_levels, 2), 2), few_levels);
}

TEST(Gif, FileHasHeaderFramesDelaysLoopAndPixels) {
  std::vector<Image> frames = {random_image(61, 45, 1), Image(61, 45, 1, 0), Image(61, 45, 1, 255),
                               random_image(61, 45, 2, 3)};
  for (int64_t y = 0; y < 45; ++y)  // a gradient on frame 1
    for (int64_t x = 0; x < 61; ++x) frames[1].at(x, y) = static_cast<uint8_t>(4 * x);
  const std::vector<int> delays = {5, 10, 0, 300};
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "engine_gif_test.gif").string();
  write_gif(path, frames, delays);

  const std::vector<uint8_t> bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 6u);
  EXPECT_EQ(std::string(bytes.begin(), bytes.begin() + 6), "GIF89a");
  EXPECT_EQ(bytes, encode_gif(frames, delays));
  const ParsedGif gif = parse_gif(bytes);
  EXPECT_EQ(gif.width, 61);
  EXPECT_EQ(gif.height, 45);
  EXPECT_TRUE(gif.gray_palette);
  EXPECT_EQ(gif.loop_count, 0) << "0 = loop forever";
  ASSERT_EQ(gif.frames.size(), frames.size());
  EXPECT_EQ(gif.delays, delays);
  for (size_t i = 0; i < frames.size(); ++i) EXPECT_EQ(gif.frames[i], frames[i].pixels) << "frame " << i;
  // The atomic write leaves no temporary file behind.
  for (const auto& entry : std::filesystem::directory_iterator(::testing::TempDir()))
    EXPECT_EQ(entry.path().filename().string().find("engine_gif_test.gif.tmp"), std::string::npos);
}

TEST(Gif, LargeRandomFrameAndOnePixelFrame) {
  const Image big = random_image(300, 200, 3);  // 60000 pixels: many table resets
  const ParsedGif gif = parse_gif(encode_gif({big, big}, {7, 7}));
  ASSERT_EQ(gif.frames.size(), 2u);
  EXPECT_EQ(gif.frames[0], big.pixels);
  EXPECT_EQ(gif.frames[1], big.pixels);

  const Image dot(1, 1, 1, 200);
  const ParsedGif tiny = parse_gif(encode_gif({dot}, {1}));
  ASSERT_EQ(tiny.frames.size(), 1u);
  EXPECT_EQ(tiny.frames[0], dot.pixels);
}

TEST(Gif, SingleDelayOverload) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) / "engine_gif_test_delay.gif").string();
  write_gif(path, {Image(3, 2, 1, 9), Image(3, 2, 1, 10), Image(3, 2, 1, 11)}, 25);
  const ParsedGif gif = parse_gif(read_bytes(path));
  EXPECT_EQ(gif.delays, (std::vector<int>{25, 25, 25}));
  EXPECT_EQ(gif.frames[2], std::vector<uint8_t>(6, 11));
}

TEST(Gif, RejectsBadFramesWithClearMessages) {
  const std::string path = "/tmp/engine_gif_test_bad.gif";
  std::string message = error_of([&] { write_gif(path, {Image(4, 4, 1), Image(4, 5, 1)}, 10); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("frame 1: expected 4 x 4 like frame 0, got 4 x 5"), std::string::npos) << message;

  message = error_of([&] { write_gif(path, {Image(4, 4, 3)}, 10); });
  EXPECT_NE(message.find("frame 0: expected a gray image (1 channel), got 3 channels"), std::string::npos) << message;

  message = error_of([&] { write_gif(path, {Image(4, 4, 1), Image(4, 4, 1)}, std::vector<int>{10}); });
  EXPECT_NE(message.find("expected one delay per frame (2 frames), got 1 delays"), std::string::npos) << message;

  message = error_of([&] { write_gif(path, {}, 10); });
  EXPECT_NE(message.find("expected at least one frame"), std::string::npos) << message;

  message = error_of([&] { write_gif(path, {Image(4, 4, 1)}, -1); });
  EXPECT_NE(message.find("expected a delay in [0, 65535]"), std::string::npos) << message;

  message = error_of([&] { write_gif("/nonexistent-dir/x.gif", {Image(4, 4, 1)}, 10); });
  EXPECT_NE(message.find("/nonexistent-dir/x.gif"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace engine::image
