// The UNets of the diffusion assignment, with hidden width D, on 28x28 images.
//
//   Conv(in, out)      = Sequential(Conv2d(in, out, 3, 1, 1), BatchNorm2d(out), GELU)
//   DownConv(in, out)  = Sequential(Conv2d(in, out, 3, 2, 1), BatchNorm2d(out), GELU)
//   UpConv(in, out)    = Sequential(ConvTranspose2d(in, out, 4, 2, 1), BatchNorm2d(out), GELU)
//   Flatten            = Sequential(AvgPool2d(7), GELU)                       7x7 -> 1x1
//   Unflatten(c)       = Sequential(ConvTranspose2d(c, c, 7, 7, 0), BatchNorm2d(c), GELU)   1x1 -> 7x7
//   ConvBlock(in, out) = Sequential(Conv(in, out), Conv(out, out))
//   DownBlock(in, out) = Sequential(DownConv(in, out), ConvBlock(out, out))
//   UpBlock(in, out)   = Sequential(UpConv(in, out), ConvBlock(out, out))
//   FCBlock(in, out)   = Sequential(Linear(in, out), GELU, Linear(out, out))
//
// Forward (shapes for batch N; every concat puts the skip tensor first):
//   e1 = inc(x)                      inc   = ConvBlock(1, D)      [N, D, 28, 28]
//   e2 = down1(e1)                   down1 = DownBlock(D, D)      [N, D, 14, 14]
//   e3 = down2(e2)                   down2 = DownBlock(D, 2D)     [N, 2D, 7, 7]
//   u  = unflat(flat(e3))            flat, unflat = Unflatten(2D) [N, 2D, 7, 7]
//        time:  u = u + t1,  class: u = c1 * u + t1
//   d2 = up1(cat[e3, u])             up1   = UpBlock(4D, D)       [N, D, 14, 14]
//        time:  d2 = d2 + t2, class: d2 = c2 * d2 + t2
//   d1 = up2(cat[e2, d2])            up2   = UpBlock(2D, D)       [N, D, 28, 28]
//   y  = out(outc(cat[e1, d1]))      outc  = ConvBlock(2D, D), out = Conv2d(D, 1, 3, 1, 1)
// with, for the conditioned variants, t [N, 1] = timestep / T in [0, 1] and
// c [N, 10] a one-hot class (all zeros = unconditional):
//   t1 = fc1_t(t) [N, 2D, 1, 1], t2 = fc2_t(t) [N, D, 1, 1]   fc1_t = FCBlock(1, 2D), fc2_t = FCBlock(1, D)
//   c1 = fc1_c(c) [N, 2D, 1, 1], c2 = fc2_c(c) [N, D, 1, 1]   fc1_c = FCBlock(10, 2D), fc2_c = FCBlock(10, D)
// The module tree (and so every state-dict key: "inc.0.0.weight",
// "down1.1.0.1.running_var", "unflat.1.num_batches_tracked", "out.bias",
// "fc1_t.0.weight", ...) is the PyTorch reference's, so checkpoints load into
// it with load_state_dict(strict=True) and back. See docs/unet.md.
#pragma once
#include <memory>

#include "layers/layers.h"

namespace engine {

enum class UNetConditioning {
  none,            // Part 1: the one-step denoiser
  time,            // Part 2: the time-conditioned DDPM
  time_and_class,  // Part 2: the class-conditioned DDPM (classifier-free guidance)
};

// The blocks of the table above, as functions that build Sequentials.
std::shared_ptr<Sequential> make_conv(int64_t in, int64_t out, Generator& gen);
std::shared_ptr<Sequential> make_down_conv(int64_t in, int64_t out, Generator& gen);
std::shared_ptr<Sequential> make_up_conv(int64_t in, int64_t out, Generator& gen);
std::shared_ptr<Sequential> make_flatten();
std::shared_ptr<Sequential> make_unflatten(int64_t channels, Generator& gen);
std::shared_ptr<Sequential> make_conv_block(int64_t in, int64_t out, Generator& gen);
std::shared_ptr<Sequential> make_down_block(int64_t in, int64_t out, Generator& gen);
std::shared_ptr<Sequential> make_up_block(int64_t in, int64_t out, Generator& gen);
std::shared_ptr<Sequential> make_fc_block(int64_t in, int64_t out, Generator& gen);

class UNet : public Module {
 public:
  static constexpr int64_t kImageSize = 28;
  static constexpr int64_t kNumClasses = 10;

  UNet(int64_t hidden, UNetConditioning conditioning, Generator& gen = default_generator());
  std::string type_name() const override { return "UNet"; }

  // x [N, 1, 28, 28]; t [N, 1] (required for time/time_and_class, else must
  // be undefined); c [N, 10] (required for time_and_class only).
  Tensor forward(const Tensor& x, const Tensor& t, const Tensor& c);
  // The unconditional model's forward.
  Tensor forward(const Tensor& x) override { return forward(x, Tensor(), Tensor()); }

  const int64_t hidden;
  const UNetConditioning conditioning;
  std::shared_ptr<Sequential> inc, down1, down2, flat, unflat, up1, up2, outc;
  std::shared_ptr<Conv2d> out;
  std::shared_ptr<Sequential> fc1_t, fc2_t, fc1_c, fc2_c;  // null when unused
};

}  // namespace engine
