// conv2d and conv_transpose2d: forward values against direct loops written
// here (independent of im2col + GEMM), gradients of x, weight and bias by
// finite differences, the adjoint identity between the two ops, determinism
// across thread counts, and the argument checks.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/ops.h"
#include "kernels/common/conv_params.h"
#include "kernels/cpu/conv.h"
#include "tests/gradcheck.h"

namespace engine {
namespace {

using testing::expect_close;
using testing::expect_gradients_match;
using testing::random_tensor;

// One test configuration. For conv2d the weight is [c_out, c_in, k, k]; for
// conv_transpose2d it is [c_in, c_out, k, k].
struct Config {
  bool transposed;
  int64_t batch, c_in, c_out, height, width, kernel, stride, padding, output_padding;
  int64_t expected_height, expected_width;  // by hand, from PyTorch's formulas
};

std::string describe(const Config& c) {
  return std::string(c.transposed ? "conv_transpose2d" : "conv2d") + " x [" + std::to_string(c.batch) + ", " +
         std::to_string(c.c_in) + ", " + std::to_string(c.height) + ", " + std::to_string(c.width) + "] -> " +
         std::to_string(c.c_out) + " channels, kernel " + std::to_string(c.kernel) + " stride " +
         std::to_string(c.stride) + " padding " + std::to_string(c.padding) + " output_padding " +
         std::to_string(c.output_padding);
}

// The shapes the UNet uses (3x3 s1 p1; 3x3 s2 p1 at odd 7 and even 28;
// transposed 4/2/1 at 7 and 14; transposed 7/7/0 from 1x1; 2/2/0 both ways)
// plus odd channel counts, non-square images and output_padding.
const std::vector<Config> kConfigs = {
    // transposed, N, C_in, C_out, H, W, k, s, p, op, expected OH, OW
    {false, 2, 3, 5, 6, 5, 3, 1, 1, 0, 6, 5},
    {false, 1, 5, 3, 7, 7, 3, 2, 1, 0, 4, 4},
    {false, 2, 3, 2, 28, 28, 3, 2, 1, 0, 14, 14},
    {false, 1, 3, 4, 8, 7, 3, 2, 1, 0, 4, 4},
    {false, 2, 3, 5, 6, 5, 2, 2, 0, 0, 3, 2},
    {false, 2, 2, 3, 7, 7, 7, 7, 0, 0, 1, 1},
    {true, 2, 3, 5, 7, 7, 4, 2, 1, 0, 14, 14},
    {true, 1, 5, 3, 14, 14, 4, 2, 1, 0, 28, 28},
    {true, 2, 5, 3, 1, 1, 7, 7, 0, 0, 7, 7},
    {true, 2, 3, 5, 3, 4, 2, 2, 0, 0, 6, 8},
    {true, 1, 3, 5, 5, 4, 3, 1, 1, 0, 5, 4},
    {true, 2, 3, 2, 4, 3, 3, 2, 1, 1, 8, 6},
    // Batches that the kernels split into uneven groups of images (7x7 = 49
    // positions per image: groups of 6 images share a GEMM, here 6 + 1).
    {false, 7, 2, 3, 13, 13, 3, 2, 1, 0, 7, 7},
    {true, 7, 2, 3, 7, 7, 4, 2, 1, 0, 14, 14},
    {true, 5, 3, 2, 1, 1, 7, 7, 0, 0, 7, 7},
};

struct Inputs {
  Tensor x, weight, bias;
};

Inputs make_inputs(const Config& c, bool with_bias, uint64_t seed) {
  Inputs in;
  in.x = random_tensor({c.batch, c.c_in, c.height, c.width}, seed);
  in.weight = c.transposed ? random_tensor({c.c_in, c.c_out, c.kernel, c.kernel}, seed + 1)
                           : random_tensor({c.c_out, c.c_in, c.kernel, c.kernel}, seed + 1);
  if (with_bias) in.bias = random_tensor({c.c_out}, seed + 2);
  return in;
}

Tensor run(const Config& c, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return c.transposed ? conv_transpose2d(x, weight, bias, c.stride, c.padding, c.output_padding)
                      : conv2d(x, weight, bias, c.stride, c.padding);
}

// The definition of conv2d, one output element at a time (7 loops + bias).
std::vector<float> naive_conv2d(const Config& c, const Tensor& x_t, const Tensor& w_t, const Tensor& b_t) {
  const std::vector<float> x = x_t.to_vector(), w = w_t.to_vector();
  const std::vector<float> b = b_t.defined() ? b_t.to_vector() : std::vector<float>(c.c_out, 0.0f);
  const int64_t OH = c.expected_height, OW = c.expected_width, H = c.height, W = c.width, K = c.kernel;
  std::vector<float> y(static_cast<std::size_t>(c.batch * c.c_out * OH * OW));
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t co = 0; co < c.c_out; ++co)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b[co];
          for (int64_t ci = 0; ci < c.c_in; ++ci)
            for (int64_t ki = 0; ki < K; ++ki)
              for (int64_t kj = 0; kj < K; ++kj) {
                const int64_t ih = oh * c.stride - c.padding + ki, iw = ow * c.stride - c.padding + kj;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += static_cast<double>(x[((n * c.c_in + ci) * H + ih) * W + iw]) *
                       w[((co * c.c_in + ci) * K + ki) * K + kj];
              }
          y[((n * c.c_out + co) * OH + oh) * OW + ow] = static_cast<float>(acc);
        }
  return y;
}

// The definition of conv_transpose2d as a scatter:
// y[n, co, i*s - p + ki, j*s - p + kj] += x[n, ci, i, j] * w[ci, co, ki, kj].
std::vector<float> naive_conv_transpose2d(const Config& c, const Tensor& x_t, const Tensor& w_t,
                                          const Tensor& b_t) {
  const std::vector<float> x = x_t.to_vector(), w = w_t.to_vector();
  const int64_t OH = c.expected_height, OW = c.expected_width, H = c.height, W = c.width, K = c.kernel;
  std::vector<double> y(static_cast<std::size_t>(c.batch * c.c_out * OH * OW), 0.0);
  for (int64_t n = 0; n < c.batch; ++n)
    for (int64_t ci = 0; ci < c.c_in; ++ci)
      for (int64_t i = 0; i < H; ++i)
        for (int64_t j = 0; j < W; ++j)
          for (int64_t co = 0; co < c.c_out; ++co)
            for (int64_t ki = 0; ki < K; ++ki)
              for (int64_t kj = 0; kj < K; ++kj) {
                const int64_t oh = i * c.stride - c.padding + ki, ow = j * c.stride - c.padding + kj;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                y[((n * c.c_out + co) * OH + oh) * OW + ow] +=
                    static_cast<double>(x[((n * c.c_in + ci) * H + i) * W + j]) *
                    w[((ci * c.c_out + co) * K + ki) * K + kj];
              }
  std::vector<float> out(y.size());
  const std::vector<float> b = b_t.defined() ? b_t.to_vector() : std::vector<float>(c.c_out, 0.0f);
  for (std::size_t e = 0; e < y.size(); ++e) {
    const int64_t co = (static_cast<int64_t>(e) / (OH * OW)) % c.c_out;
    out[e] = static_cast<float>(y[e] + b[co]);
  }
  return out;
}

TEST(Conv, OutputSizeFormulas) {
  EXPECT_EQ(conv2d_output_size(28, 3, 1, 1), 28);
  EXPECT_EQ(conv2d_output_size(28, 3, 2, 1), 14);
  EXPECT_EQ(conv2d_output_size(7, 3, 2, 1), 4);
  EXPECT_EQ(conv2d_output_size(7, 7, 7, 0), 1);
  EXPECT_EQ(conv2d_output_size(2, 3, 1, 0), 0);   // too small: reported, not wrapped
  EXPECT_EQ(conv2d_output_size(1, 5, 2, 0), -1);  // floor((1 - 5) / 2) + 1 = -2 + 1
  EXPECT_EQ(conv_transpose2d_output_size(7, 4, 2, 1, 0), 14);
  EXPECT_EQ(conv_transpose2d_output_size(14, 4, 2, 1, 0), 28);
  EXPECT_EQ(conv_transpose2d_output_size(1, 7, 7, 0, 0), 7);
  EXPECT_EQ(conv_transpose2d_output_size(4, 3, 2, 1, 1), 8);
}

TEST(Conv, ForwardMatchesDirectLoops) {
  uint64_t seed = 100;
  for (const Config& c : kConfigs) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(describe(c) + (with_bias ? ", with bias" : ", no bias"));
      const Inputs in = make_inputs(c, with_bias, seed += 10);
      const Tensor y = run(c, in.x, in.weight, in.bias);
      ASSERT_EQ(y.shape(), (Shape{c.batch, c.c_out, c.expected_height, c.expected_width}));
      const std::vector<float> expected = c.transposed ? naive_conv_transpose2d(c, in.x, in.weight, in.bias)
                                                       : naive_conv2d(c, in.x, in.weight, in.bias);
      expect_close(y, expected, 1e-5, 1e-5, "forward");
    }
  }
}

TEST(Conv, ForwardHandComputed) {
  // x = 1..9 in a 3x3 image, a 2x2 kernel of ones, stride 1, padding 0:
  // each output is the sum of a 2x2 window.
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = Tensor::ones({1, 1, 2, 2});
  expect_close(conv2d(x, w, Tensor::from_vector({0.5f}, {1}), 1, 0), {12.5f, 16.5f, 24.5f, 28.5f}, 0, 0, "conv");
  // Transposed, kernel 2 stride 2: each input pixel becomes a 2x2 block of itself.
  Tensor x2 = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2});
  expect_close(conv_transpose2d(x2, w, Tensor(), 2, 0),
               {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0, 0, "conv_transpose");
}

TEST(Conv, EmptyBatch) {
  // PyTorch accepts N = 0: an empty output, and zero weight/bias gradients.
  Tensor x = Tensor::zeros({0, 3, 5, 5}).set_requires_grad();
  Tensor w = random_tensor({4, 3, 3, 3}, 7).set_requires_grad();
  Tensor b = random_tensor({4}, 8).set_requires_grad();
  Tensor y = conv2d(x, w, b, 2, 1);
  EXPECT_EQ(y.shape(), (Shape{0, 4, 3, 3}));
  sum(y).backward();
  expect_close(w.grad(), std::vector<float>(4 * 3 * 3 * 3, 0.0f), 0, 0, "grad weight");
  expect_close(b.grad(), std::vector<float>(4, 0.0f), 0, 0, "grad bias");
  EXPECT_EQ(conv_transpose2d(Tensor::zeros({0, 4, 3, 3}), w, Tensor(), 2, 1).shape(), (Shape{0, 3, 5, 5}));
}

// Convolution is linear in each of x, weight and bias, so the central
// difference has no truncation error whatever the step; a step of 0.1 keeps
// the float rounding of the forward pass, divided by 2h, well below atol.
testing::GradCheckOptions linear_op_options() {
  testing::GradCheckOptions options;
  options.step = 0.1f;
  options.max_elements_per_input = 40;
  return options;
}

TEST(Conv, GradientsOfEveryInput) {
  uint64_t seed = 500;
  for (const Config& c : kConfigs) {
    // Shrink the two 28/14-pixel configurations: same geometry class, fewer pixels.
    Config small = c;
    if (small.height > 8) {
      small.height = small.width = small.transposed ? 7 : 14;
      small.expected_height = small.expected_width = small.transposed ? 14 : 7;
    }
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(describe(small) + (with_bias ? ", with bias" : ", no bias"));
      Inputs in = make_inputs(small, with_bias, seed += 10);
      in.x.set_requires_grad();
      in.weight.set_requires_grad();
      std::vector<Tensor> inputs{in.x, in.weight};
      if (with_bias) {
        in.bias.set_requires_grad();
        inputs.push_back(in.bias);
      }
      expect_gradients_match(
          [&](const std::vector<Tensor>& v) { return run(small, v[0], v[1], v.size() > 2 ? v[2] : Tensor()); },
          inputs, linear_op_options());
    }
  }
}

TEST(Conv, GradientOfOneArgumentOnly) {
  // Exercises the null-gradient paths of the kernels: each argument alone.
  for (const Config& c : {kConfigs[1], kConfigs[6]}) {
    for (int which = 0; which < 3; ++which) {
      SCOPED_TRACE(describe(c) + ", gradient of argument " + std::to_string(which));
      Inputs in = make_inputs(c, true, 900 + which);
      std::vector<Tensor> inputs{in.x, in.weight, in.bias};
      inputs[static_cast<std::size_t>(which)].set_requires_grad();
      expect_gradients_match([&](const std::vector<Tensor>& v) { return run(c, v[0], v[1], v[2]); }, inputs,
                             linear_op_options());
    }
  }
}

double dot(const Tensor& a, const Tensor& b) {
  const std::vector<float> va = a.to_vector(), vb = b.to_vector();
  EXPECT_EQ(va.size(), vb.size());
  double s = 0.0;
  for (std::size_t i = 0; i < va.size() && i < vb.size(); ++i) s += static_cast<double>(va[i]) * vb[i];
  return s;
}

TEST(Conv, TransposeIsTheAdjointOfConv) {
  // <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> with the same weight
  // tensor: [C_b, C_a, k, k] is conv2d's [C_out, C_in, ..] and
  // conv_transpose2d's [C_in, C_out, ..]. output_padding restores x's size
  // where the conv's floor dropped a remainder.
  struct Case {
    int64_t size, kernel, stride, padding;
  };
  for (const Case& k : {Case{6, 3, 1, 1}, Case{7, 3, 2, 1}, Case{8, 3, 2, 1}, Case{14, 4, 2, 1}, Case{7, 7, 7, 0},
                        Case{6, 2, 2, 0}, Case{9, 2, 2, 0}}) {
    SCOPED_TRACE("size " + std::to_string(k.size) + " kernel " + std::to_string(k.kernel) + " stride " +
                 std::to_string(k.stride) + " padding " + std::to_string(k.padding));
    const int64_t remainder = (k.size + 2 * k.padding - k.kernel) % k.stride;
    Tensor x = random_tensor({2, 3, k.size, k.size}, 40);
    Tensor w = random_tensor({5, 3, k.kernel, k.kernel}, 41);
    Tensor cx = conv2d(x, w, Tensor(), k.stride, k.padding);
    Tensor y = random_tensor(cx.shape(), 42);
    Tensor ty = conv_transpose2d(y, w, Tensor(), k.stride, k.padding, remainder);
    ASSERT_EQ(ty.shape(), x.shape());
    const double lhs = dot(cx, y), rhs = dot(x, ty);
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1.0 + std::abs(lhs)));
  }
}

TEST(Conv, Col2imIsTheAdjointOfIm2col) {
  // <im2col(a), B> == <a, col2im(B)> for every geometry, including padding
  // wider than the kernel reach and strides that skip pixels.
  for (const cpu::ImageGeometry& g :
       {cpu::ImageGeometry{2, 7, 6, 3, 3, 2, 1, 4, 3}, cpu::ImageGeometry{1, 5, 5, 2, 2, 3, 0, 2, 2},
        cpu::ImageGeometry{3, 4, 4, 3, 3, 1, 2, 6, 6}}) {
    const int64_t image_size = g.channels * g.height * g.width;
    const int64_t column_size = g.channels * g.kernel_h * g.kernel_w * g.out_height * g.out_width;
    const std::vector<float> a = random_tensor({image_size}, 1).to_vector();
    const std::vector<float> b = random_tensor({column_size}, 2).to_vector();
    std::vector<float> columns(static_cast<std::size_t>(column_size), -7.0f);  // im2col must overwrite all
    cpu::im2col(g, a.data(), columns.data(), g.out_height * g.out_width);
    std::vector<float> image(static_cast<std::size_t>(image_size), 0.0f);
    cpu::col2im_add(g, b.data(), g.out_height * g.out_width, image.data());
    double lhs = 0.0, rhs = 0.0;
    for (std::size_t i = 0; i < columns.size(); ++i) lhs += static_cast<double>(columns[i]) * b[i];
    for (std::size_t i = 0; i < image.size(); ++i) rhs += static_cast<double>(a[i]) * image[i];
    EXPECT_NEAR(lhs, rhs, 1e-4 * (1.0 + std::abs(lhs)));
  }
}

TEST(Conv, Im2colMatchesItsDefinition) {
  // columns[(c KH + ki) KW + kj, oh OW + ow] = image[c, oh s - p + ki, ow s - p + kj] (0 outside),
  // entry by entry. The stride-1 "same" geometries (W == OW) take im2col's
  // shifted-plane path, whose clipping at the plane's ends and border
  // columns this pins down; the others take the row-by-row path.
  for (const cpu::ImageGeometry& g :
       {cpu::ImageGeometry{2, 5, 7, 3, 3, 1, 1, 5, 7}, cpu::ImageGeometry{3, 6, 4, 5, 5, 1, 2, 6, 4},
        cpu::ImageGeometry{2, 3, 3, 1, 1, 1, 0, 3, 3}, cpu::ImageGeometry{1, 1, 9, 3, 3, 1, 1, 1, 9},
        cpu::ImageGeometry{2, 7, 6, 3, 3, 2, 1, 4, 3}, cpu::ImageGeometry{3, 4, 4, 3, 3, 1, 2, 6, 6},
        cpu::ImageGeometry{2, 6, 5, 3, 3, 1, 0, 4, 3}}) {
    const int64_t positions = g.out_height * g.out_width;
    const std::vector<float> image = random_tensor({g.channels * g.height * g.width}, 3).to_vector();
    const int64_t stride = positions + 2;  // a wider row stride: the 2 spare entries must be left alone
    std::vector<float> columns(static_cast<std::size_t>(g.channels * g.kernel_h * g.kernel_w * stride), -7.0f);
    cpu::im2col(g, image.data(), columns.data(), stride);
    for (int64_t c = 0; c < g.channels; ++c)
      for (int64_t ki = 0; ki < g.kernel_h; ++ki)
        for (int64_t kj = 0; kj < g.kernel_w; ++kj) {
          const int64_t row = (c * g.kernel_h + ki) * g.kernel_w + kj;
          for (int64_t oh = 0; oh < g.out_height; ++oh)
            for (int64_t ow = 0; ow < g.out_width; ++ow) {
              const int64_t ih = oh * g.stride - g.padding + ki, iw = ow * g.stride - g.padding + kj;
              const bool inside = ih >= 0 && ih < g.height && iw >= 0 && iw < g.width;
              const float expected = inside ? image[static_cast<std::size_t>((c * g.height + ih) * g.width + iw)] : 0.0f;
              ASSERT_EQ(columns[static_cast<std::size_t>(row * stride + oh * g.out_width + ow)], expected)
                  << "geometry " << g.height << "x" << g.width << " k" << g.kernel_h << " s" << g.stride << " p"
                  << g.padding << " at tap (" << c << ", " << ki << ", " << kj << ") output (" << oh << ", " << ow
                  << ")";
            }
          EXPECT_EQ(columns[static_cast<std::size_t>(row * stride + positions)], -7.0f);
          EXPECT_EQ(columns[static_cast<std::size_t>(row * stride + positions + 1)], -7.0f);
        }
  }
}

TEST(Conv, BackwardAccumulatesIntoGradients) {
  // Kernel contract: backward adds to what is already in the gradient buffers.
  const ConvParams p = make_conv2d_params(3, 2, 5, 5, 4, 3, 3, 2, 1);
  for (bool transposed : {false, true}) {
    const ConvParams q = transposed ? make_conv_transpose2d_params(3, 2, 5, 5, 4, 3, 3, 2, 1, 1) : p;
    const int64_t x_size = q.batch * q.in_channels * q.in_height * q.in_width;
    const int64_t y_size = q.batch * q.out_channels * q.out_height * q.out_width;
    const int64_t w_size = q.in_channels * q.out_channels * q.kernel_h * q.kernel_w;
    const std::vector<float> x = random_tensor({x_size}, 3).to_vector(), w = random_tensor({w_size}, 4).to_vector();
    const std::vector<float> gy = random_tensor({y_size}, 5).to_vector();
    std::vector<float> gx(x_size, 0.0f), gw(w_size, 0.0f), gb(q.out_channels, 0.0f);
    auto backward = transposed ? cpu::conv_transpose2d_backward : cpu::conv2d_backward;
    backward(q, x.data(), w.data(), gy.data(), gx.data(), gw.data(), gb.data());
    const std::vector<float> once_x = gx, once_w = gw, once_b = gb;
    backward(q, x.data(), w.data(), gy.data(), gx.data(), gw.data(), gb.data());
    // Not bit-exact: the second pass adds each contribution to a non-zero value.
    auto doubled = [](const std::vector<float>& twice, const std::vector<float>& once, const char* what) {
      for (std::size_t i = 0; i < twice.size(); ++i)
        EXPECT_NEAR(twice[i], 2 * once[i], 1e-5 * (1 + std::fabs(once[i]))) << what << " element " << i;
    };
    doubled(gx, once_x, "grad_x");
    doubled(gw, once_w, "grad_weight");
    doubled(gb, once_b, "grad_bias");
  }
}

TEST(Conv, SameBitsWhateverTheThreadCount) {
  // Weight and bias gradients sum over the batch in a partition fixed by the
  // batch size alone: 1 thread and 3 threads must give identical bits.
  const int saved_threads = omp_get_max_threads();
  for (const Config& c : {kConfigs[0], kConfigs[6]}) {
    Config big = c;
    big.batch = 7;
    std::vector<std::vector<float>> results[2];
    for (int t = 0; t < 2; ++t) {
      omp_set_num_threads(t == 0 ? 1 : 3);
      Inputs in = make_inputs(big, true, 77);
      in.x.set_requires_grad();
      in.weight.set_requires_grad();
      in.bias.set_requires_grad();
      Tensor y = run(big, in.x, in.weight, in.bias);
      sum(mul(y, random_tensor(y.shape(), 78))).backward();
      results[t] = {y.to_vector(), in.x.grad().to_vector(), in.weight.grad().to_vector(), in.bias.grad().to_vector()};
    }
    omp_set_num_threads(saved_threads);
    for (std::size_t k = 0; k < results[0].size(); ++k)
      EXPECT_EQ(results[0][k], results[1][k]) << describe(c) << ", result " << k << " (y, grad x, weight, bias)";
  }
}

// --- Argument checks ------------------------------------------------------------

void expect_error(const std::function<void()>& call, const std::vector<std::string>& fragments) {
  try {
    call();
    ADD_FAILURE() << "expected an engine::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& f : fragments) EXPECT_NE(msg.find(f), std::string::npos) << "'" << f << "' not in: " << msg;
  }
}

TEST(Conv, RejectsBadArguments) {
  const Tensor x = Tensor::zeros({2, 3, 5, 5});
  const Tensor w = Tensor::zeros({4, 3, 3, 3});
  expect_error([&] { conv2d(Tensor::zeros({3, 5, 5}), w, Tensor(), 1, 1); },
               {"conv2d", "'x'", "4-d", "[N, C_in, H, W]", "[3, 5, 5]"});
  expect_error([&] { conv2d(x, Tensor::zeros({4, 3, 3}), Tensor(), 1, 1); },
               {"conv2d", "'weight'", "[C_out, C_in, KH, KW]", "[4, 3, 3]"});
  expect_error([&] { conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), 1, 1); },
               {"conv2d", "'weight'", "C_in = 3", "[2, 3, 5, 5]", "[4, 2, 3, 3]"});
  expect_error([&] { conv2d(x, w, Tensor::zeros({3}), 1, 1); }, {"conv2d", "'bias'", "[4]", "got [3]"});
  expect_error([&] { conv2d(x, w, Tensor::zeros({4, 1}), 1, 1); }, {"conv2d", "'bias'", "[4, 1]"});
  expect_error([&] { conv2d(x, w, Tensor(), 0, 1); }, {"conv2d", "'stride'", "positive", "got 0"});
  expect_error([&] { conv2d(x, w, Tensor(), 1, -1); }, {"conv2d", "'padding'", ">= 0", "got -1"});
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 2, 2}), w, Tensor(), 1, 0); },
               {"conv2d", "output size 0x0", "[1, 3, 2, 2]", "kernel 3x3", "stride 1", "padding 0"});
  expect_error([&] { conv2d(Tensor::zeros({1, 3, 0, 5}), w, Tensor(), 1, 1); }, {"conv2d", "'x'", "[1, 3, 0, 5]"});
  expect_error([&] { conv2d(Tensor::from_vector_i64(std::vector<int64_t>(50), {2, 1, 5, 5}), w, Tensor(), 1, 1); },
               {"conv2d", "'x'", "F32"});
  expect_error([&] { conv2d(Tensor(), w, Tensor(), 1, 1); }, {"conv2d", "'x'", "undefined"});
}

TEST(Conv, TransposedRejectsBadArguments) {
  const Tensor x = Tensor::zeros({2, 3, 7, 7});
  const Tensor w = Tensor::zeros({3, 5, 4, 4});  // [C_in, C_out, KH, KW]
  // A conv2d-layout weight [C_out, C_in, ..] is the classic mistake: name the layout.
  expect_error([&] { conv_transpose2d(x, Tensor::zeros({5, 3, 4, 4}), Tensor(), 2, 1); },
               {"conv_transpose2d", "'weight'", "[C_in, C_out, KH, KW]", "C_in = 3", "dimension 0", "[5, 3, 4, 4]"});
  expect_error([&] { conv_transpose2d(x, w, Tensor::zeros({3}), 2, 1); }, {"conv_transpose2d", "'bias'", "[5]", "[3]"});
  expect_error([&] { conv_transpose2d(x, w, Tensor(), 2, 1, 2); },
               {"conv_transpose2d", "'output_padding'", "smaller than stride (2)", "got 2"});
  expect_error([&] { conv_transpose2d(x, w, Tensor(), 2, 1, -1); }, {"conv_transpose2d", "'output_padding'", "got -1"});
  expect_error([&] { conv_transpose2d(x, w, Tensor(), -2, 1); }, {"conv_transpose2d", "'stride'", "got -2"});
  // (1 - 1) * 1 - 2 * 2 + 1 = -3
  expect_error([&] { conv_transpose2d(Tensor::zeros({1, 3, 1, 1}), Tensor::zeros({3, 5, 1, 1}), Tensor(), 1, 2); },
               {"conv_transpose2d", "output size -3x-3", "[1, 3, 1, 1]", "kernel 1x1", "padding 2",
                "output_padding 0"});
}

TEST(Conv, RejectsMixedDevices) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device: the mixed-device check needs one";
  const Tensor x = Tensor::zeros({1, 3, 5, 5});
  const Tensor w = Tensor::zeros({4, 3, 3, 3}, DType::F32, Device::cuda());
  expect_error([&] { conv2d(x, w, Tensor(), 1, 1); }, {"conv2d", "'x'", "'weight'", "same device", "cpu", "cuda:0"});
  expect_error([&] { conv2d(x, w.to(Device::cpu()), Tensor::zeros({4}, DType::F32, Device::cuda()), 1, 1); },
               {"conv2d", "'bias'", "same device"});
}

}  // namespace
}  // namespace engine
