// Animated GIF writer, for denoising animations (a grid of samples at each
// sampling step, one frame per step).
//
// The file is GIF89a (https://www.w3.org/Graphics/GIF/spec-gif89a.txt):
//   "GIF89a"
//   logical screen descriptor   width, height, a 256-entry global color table
//   global color table          entry i = (i, i, i): byte value = gray level
//   NETSCAPE2.0 extension       loop count 0 = loop forever
//   per frame:
//     graphic control extension  delay in 1/100 s
//     image descriptor           the whole screen, no local color table
//     image data                 the frame's bytes (= palette indices),
//                                LZW-compressed, in sub-blocks of <= 255 bytes
//   trailer 0x3B
//
// The LZW encoder is written out in gif.cpp (GIF's variant: variable code
// width from 9 to 12 bits, clear and end codes, codes packed least
// significant bit first).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "apps/common/png.h"  // image::Image, write_file_atomically

namespace engine::image {

// Writes `frames` (all gray, channels 1, the same width and height, at most
// 65535 x 65535) as an animation that loops forever; frame i is shown for
// delays_cs[i] hundredths of a second (0..65535). Atomic write (temp + rename).
void write_gif(const std::string& path, const std::vector<Image>& frames, const std::vector<int>& delays_cs);
// Every frame shown for the same `delay_cs` hundredths of a second.
void write_gif(const std::string& path, const std::vector<Image>& frames, int delay_cs);

// The GIF encoding of the frames, as bytes (what write_gif writes).
std::vector<uint8_t> encode_gif(const std::vector<Image>& frames, const std::vector<int>& delays_cs);

// GIF's LZW compression of `indices` (each < 2^min_code_size) with the given
// minimum code size (8 for a 256-color palette), as the packed code stream
// (before it is cut into sub-blocks). Exposed for the tests.
std::vector<uint8_t> lzw_encode(const std::vector<uint8_t>& indices, int min_code_size);

}  // namespace engine::image
