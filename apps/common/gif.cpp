// GIF89a writer with its own LZW encoder. See gif.h for the file layout.
#include "apps/common/gif.h"

#include <algorithm>

#include "core/error.h"

namespace engine::image {

// ---------------------------------------------------------------------------------
// LZW, GIF flavour
// ---------------------------------------------------------------------------------
// The encoder reads the pixels as a string of symbols (palette indices,
// 0 .. 2^m - 1 for minimum code size m) and emits codes:
//   0 .. 2^m - 1     the single symbols
//   clear = 2^m      "forget all learned strings, start over"
//   end   = 2^m + 1  "end of the image data"
//   2^m + 2 .. 4095  strings learned on the way: each is a known string
//                    plus one symbol.
// Greedy parsing: extend the current string `prefix` symbol by symbol while
// the extended string is known; when prefix + c is new, emit prefix's code,
// learn prefix + c as the next free code, and restart from c.
//
// Codes are written with a variable width, least significant bit first,
// starting at m + 1 bits. The decoder learns each string one code later
// than the encoder (it needs the first symbol of the following code to
// complete it), and it widens its codes as soon as its own next free code
// reaches 2^width. So the encoder widens when ITS next free code reaches
// 2^width + 1 — the moment the decoder's reaches 2^width. Codes stop at 12
// bits: when the table is full (4096 codes) the encoder emits clear and both
// sides start over at m + 1 bits.
namespace {

constexpr int kMaxCodeBits = 12;
constexpr int kMaxCodes = 1 << kMaxCodeBits;  // 4096

// Packs variable-width codes into bytes, least significant bit first.
class BitWriter {
 public:
  explicit BitWriter(std::vector<uint8_t>& out) : out_(out) {}
  void write(uint32_t code, int width) {
    pending_ |= code << pending_bits_;
    pending_bits_ += width;
    while (pending_bits_ >= 8) {
      out_.push_back(static_cast<uint8_t>(pending_ & 0xFF));
      pending_ >>= 8;
      pending_bits_ -= 8;
    }
  }
  void flush() {  // the last partial byte, zero-padded
    if (pending_bits_ > 0) out_.push_back(static_cast<uint8_t>(pending_ & 0xFF));
    pending_ = 0;
    pending_bits_ = 0;
  }

 private:
  std::vector<uint8_t>& out_;
  uint32_t pending_ = 0;  // bits not yet written; at most 7 + 12 used
  int pending_bits_ = 0;
};

}  // namespace

std::vector<uint8_t> lzw_encode(const std::vector<uint8_t>& indices, int min_code_size) {
  ENGINE_CHECK(min_code_size >= 2 && min_code_size <= 8, "lzw_encode: expected min_code_size in [2, 8], got ",
               min_code_size);
  const int alphabet = 1 << min_code_size;
  const uint32_t clear_code = static_cast<uint32_t>(alphabet), end_code = clear_code + 1;
  for (size_t i = 0; i < indices.size(); ++i)
    ENGINE_CHECK(indices[i] < alphabet, "lzw_encode: index ", i, " is ", int(indices[i]),
                 ", expected < 2^min_code_size = ", alphabet);

  // The dictionary as a trie: child[code * alphabet + symbol] is the code of
  // the string (code's string + symbol), or 0 when that string is not known
  // yet (0 can never be a learned code: learned codes start at clear + 2).
  std::vector<uint16_t> child(static_cast<size_t>(kMaxCodes) * static_cast<size_t>(alphabet), 0);
  int width = min_code_size + 1;
  uint32_t next_code = end_code + 1;
  auto start_over = [&] {
    std::fill(child.begin(), child.end(), uint16_t{0});
    width = min_code_size + 1;
    next_code = end_code + 1;
  };

  std::vector<uint8_t> out;
  BitWriter bits(out);
  bits.write(clear_code, width);  // decoders expect a clear first
  if (!indices.empty()) {
    uint32_t prefix = indices[0];
    for (size_t i = 1; i < indices.size(); ++i) {
      const uint8_t symbol = indices[i];
      const uint16_t known = child[prefix * static_cast<uint32_t>(alphabet) + symbol];
      if (known != 0) {  // prefix + symbol is a known string: keep extending
        prefix = known;
        continue;
      }
      bits.write(prefix, width);
      child[prefix * static_cast<uint32_t>(alphabet) + symbol] = static_cast<uint16_t>(next_code++);
      if (next_code == kMaxCodes) {  // table full: both sides start over
        bits.write(clear_code, width);
        start_over();
      } else if (next_code == (1u << width) + 1) {
        ++width;
      }
      prefix = symbol;
    }
    bits.write(prefix, width);
    // The decoder learns one more string when it reads that last code; keep
    // the code width in step with it for the end code.
    ++next_code;
    if (next_code == (1u << width) + 1 && width < kMaxCodeBits) ++width;
  }
  bits.write(end_code, width);
  bits.flush();
  return out;
}

// ---------------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------------
namespace {

void put_u16(std::vector<uint8_t>& out, int64_t value) {  // little-endian
  out.push_back(static_cast<uint8_t>(value & 0xFF));
  out.push_back(static_cast<uint8_t>((value >> 8) & 0xFF));
}

void put_bytes(std::vector<uint8_t>& out, const std::string& text) { out.insert(out.end(), text.begin(), text.end()); }

}  // namespace

std::vector<uint8_t> encode_gif(const std::vector<Image>& frames, const std::vector<int>& delays_cs) {
  ENGINE_CHECK(!frames.empty(), "encode_gif: expected at least one frame, got none");
  ENGINE_CHECK(delays_cs.size() == frames.size(), "encode_gif: expected one delay per frame (", frames.size(),
               " frames), got ", delays_cs.size(), " delays");
  const int64_t width = frames[0].width, height = frames[0].height;
  ENGINE_CHECK(width >= 1 && height >= 1 && width <= 65535 && height <= 65535,
               "encode_gif: expected frames of 1 .. 65535 pixels a side, got ", width, " x ", height);
  for (size_t i = 0; i < frames.size(); ++i) {
    const Image& frame = frames[i];
    ENGINE_CHECK(frame.channels == 1, "encode_gif: frame ", i, ": expected a gray image (1 channel), got ",
                 frame.channels, " channels");
    ENGINE_CHECK(frame.width == width && frame.height == height, "encode_gif: frame ", i, ": expected ", width,
                 " x ", height, " like frame 0, got ", frame.width, " x ", frame.height);
    ENGINE_CHECK(static_cast<int64_t>(frame.pixels.size()) == width * height, "encode_gif: frame ", i,
                 ": expected ", width * height, " pixel bytes, got ", frame.pixels.size());
    ENGINE_CHECK(delays_cs[i] >= 0 && delays_cs[i] <= 65535, "encode_gif: frame ", i,
                 ": expected a delay in [0, 65535] hundredths of a second, got ", delays_cs[i]);
  }

  std::vector<uint8_t> out;
  put_bytes(out, "GIF89a");
  // Logical screen descriptor. Packed byte 0xF7 = global color table present
  // (1), 8 bits of color resolution (7 = 8 - 1), not sorted (0), table size
  // 2^(7 + 1) = 256 entries (7).
  put_u16(out, width);
  put_u16(out, height);
  out.push_back(0xF7);
  out.push_back(0);  // background color index
  out.push_back(0);  // pixel aspect ratio: unspecified (square)
  for (int level = 0; level < 256; ++level)  // global color table: gray ramp
    for (int rgb = 0; rgb < 3; ++rgb) out.push_back(static_cast<uint8_t>(level));
  // Application extension NETSCAPE2.0, sub-block 1: loop count (0 = forever).
  out.push_back(0x21);
  out.push_back(0xFF);
  out.push_back(11);
  put_bytes(out, "NETSCAPE2.0");
  out.push_back(3);
  out.push_back(1);
  put_u16(out, 0);
  out.push_back(0);  // block terminator

  for (size_t i = 0; i < frames.size(); ++i) {
    // Graphic control extension: disposal 1 (leave the frame in place), no
    // transparency, the delay.
    out.push_back(0x21);
    out.push_back(0xF9);
    out.push_back(4);
    out.push_back(1 << 2);
    put_u16(out, delays_cs[i]);
    out.push_back(0);  // transparent color index (unused)
    out.push_back(0);  // block terminator
    // Image descriptor: the whole screen, no local color table, not interlaced.
    out.push_back(0x2C);
    put_u16(out, 0);
    put_u16(out, 0);
    put_u16(out, width);
    put_u16(out, height);
    out.push_back(0);
    // Image data: LZW minimum code size, then the codes in sub-blocks of at
    // most 255 bytes, each preceded by its length, ended by an empty one.
    constexpr int kMinCodeSize = 8;
    out.push_back(kMinCodeSize);
    const std::vector<uint8_t> codes = lzw_encode(frames[i].pixels, kMinCodeSize);
    for (size_t start = 0; start < codes.size(); start += 255) {
      const size_t length = std::min<size_t>(255, codes.size() - start);
      out.push_back(static_cast<uint8_t>(length));
      out.insert(out.end(), codes.begin() + static_cast<std::ptrdiff_t>(start),
                 codes.begin() + static_cast<std::ptrdiff_t>(start + length));
    }
    out.push_back(0);
  }
  out.push_back(0x3B);  // trailer
  return out;
}

void write_gif(const std::string& path, const std::vector<Image>& frames, const std::vector<int>& delays_cs) {
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_gif(frames, delays_cs);
  } catch (const Error& error) {
    throw Error("write_gif '" + path + "': " + error.what());
  }
  write_file_atomically(path, bytes);
}

void write_gif(const std::string& path, const std::vector<Image>& frames, int delay_cs) {
  write_gif(path, frames, std::vector<int>(frames.size(), delay_cs));
}

}  // namespace engine::image
