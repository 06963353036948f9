#include "models/unet.h"

#include "core/ops.h"

namespace engine {

std::shared_ptr<Sequential> make_conv(int64_t in, int64_t out, Generator& gen) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<Conv2d>(in, out, 3, 1, 1, true, gen));
  seq->push_back(std::make_shared<BatchNorm2d>(out));
  seq->push_back(std::make_shared<GELU>());
  return seq;
}

std::shared_ptr<Sequential> make_down_conv(int64_t in, int64_t out, Generator& gen) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<Conv2d>(in, out, 3, 2, 1, true, gen));
  seq->push_back(std::make_shared<BatchNorm2d>(out));
  seq->push_back(std::make_shared<GELU>());
  return seq;
}

std::shared_ptr<Sequential> make_up_conv(int64_t in, int64_t out, Generator& gen) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<ConvTranspose2d>(in, out, 4, 2, 1, 0, true, gen));
  seq->push_back(std::make_shared<BatchNorm2d>(out));
  seq->push_back(std::make_shared<GELU>());
  return seq;
}

std::shared_ptr<Sequential> make_flatten() {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<AvgPool2d>(7));
  seq->push_back(std::make_shared<GELU>());
  return seq;
}

std::shared_ptr<Sequential> make_unflatten(int64_t channels, Generator& gen) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<ConvTranspose2d>(channels, channels, 7, 7, 0, 0, true, gen));
  seq->push_back(std::make_shared<BatchNorm2d>(channels));
  seq->push_back(std::make_shared<GELU>());
  return seq;
}

std::shared_ptr<Sequential> make_conv_block(int64_t in, int64_t out, Generator& gen) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(make_conv(in, out, gen));
  seq->push_back(make_conv(out, out, gen));
  return seq;
}

std::shared_ptr<Sequential> make_down_block(int64_t in, int64_t out, Generator& gen) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(make_down_conv(in, out, gen));
  seq->push_back(make_conv_block(out, out, gen));
  return seq;
}

std::shared_ptr<Sequential> make_up_block(int64_t in, int64_t out, Generator& gen) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(make_up_conv(in, out, gen));
  seq->push_back(make_conv_block(out, out, gen));
  return seq;
}

std::shared_ptr<Sequential> make_fc_block(int64_t in, int64_t out, Generator& gen) {
  auto seq = std::make_shared<Sequential>();
  seq->push_back(std::make_shared<Linear>(in, out, true, gen));
  seq->push_back(std::make_shared<GELU>());
  seq->push_back(std::make_shared<Linear>(out, out, true, gen));
  return seq;
}

UNet::UNet(int64_t hidden_channels, UNetConditioning mode, Generator& gen)
    : hidden(hidden_channels), conditioning(mode) {
  ENGINE_CHECK(hidden > 0, "UNet: hidden width D must be positive, got ", hidden);
  const int64_t D = hidden;
  inc = register_module("inc", make_conv_block(1, D, gen));
  down1 = register_module("down1", make_down_block(D, D, gen));
  down2 = register_module("down2", make_down_block(D, 2 * D, gen));
  flat = register_module("flat", make_flatten());
  unflat = register_module("unflat", make_unflatten(2 * D, gen));
  up1 = register_module("up1", make_up_block(4 * D, D, gen));
  up2 = register_module("up2", make_up_block(2 * D, D, gen));
  outc = register_module("outc", make_conv_block(2 * D, D, gen));
  out = register_module("out", std::make_shared<Conv2d>(D, 1, 3, 1, 1, true, gen));
  if (conditioning != UNetConditioning::none) {
    fc1_t = register_module("fc1_t", make_fc_block(1, 2 * D, gen));
    fc2_t = register_module("fc2_t", make_fc_block(1, D, gen));
  }
  if (conditioning == UNetConditioning::time_and_class) {
    fc1_c = register_module("fc1_c", make_fc_block(kNumClasses, 2 * D, gen));
    fc2_c = register_module("fc2_c", make_fc_block(kNumClasses, D, gen));
  }
}

Tensor UNet::forward(const Tensor& x, const Tensor& t, const Tensor& c) {
  check_float32("UNet", "x", x);
  ENGINE_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == kImageSize && x.size(3) == kImageSize,
               "UNet: argument 'x': expected shape [N, 1, 28, 28], got ", shape_str(x.shape()));
  const int64_t N = x.size(0), D = hidden;
  const bool uses_time = conditioning != UNetConditioning::none;
  const bool uses_class = conditioning == UNetConditioning::time_and_class;
  if (uses_time) {
    check_float32("UNet", "t", t);
    ENGINE_CHECK(t.shape() == (Shape{N, 1}), "UNet: argument 't': expected shape [", N,
                 ", 1] (timestep / T per image), got ", shape_str(t.shape()));
  } else {
    ENGINE_CHECK(!t.defined(), "UNet: argument 't': this UNet is not time-conditioned");
  }
  if (uses_class) {
    check_float32("UNet", "c", c);
    ENGINE_CHECK(c.shape() == (Shape{N, kNumClasses}), "UNet: argument 'c': expected shape [", N, ", ",
                 kNumClasses, "] (one-hot class, zeros for none), got ", shape_str(c.shape()));
  } else {
    ENGINE_CHECK(!c.defined(), "UNet: argument 'c': this UNet is not class-conditioned");
  }

  const Tensor e1 = inc->forward(x);
  const Tensor e2 = down1->forward(e1);
  const Tensor e3 = down2->forward(e2);
  Tensor u = unflat->forward(flat->forward(e3));
  if (uses_time) {
    const Tensor t1 = fc1_t->forward(t).reshape({N, 2 * D, 1, 1});
    u = uses_class ? fc1_c->forward(c).reshape({N, 2 * D, 1, 1}) * u + t1 : u + t1;
  }
  Tensor d2 = up1->forward(concat({e3, u}, 1));
  if (uses_time) {
    const Tensor t2 = fc2_t->forward(t).reshape({N, D, 1, 1});
    d2 = uses_class ? fc2_c->forward(c).reshape({N, D, 1, 1}) * d2 + t2 : d2 + t2;
  }
  const Tensor d1 = up2->forward(concat({e2, d2}, 1));
  return out->forward(outc->forward(concat({e1, d1}, 1)));
}

}  // namespace engine
