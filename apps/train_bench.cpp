// train_bench: times the engine's side of the side-by-side benchmark
// (tools/parity/side_by_side.py) and prints one JSON object on stdout.
//
//   train_bench train  --model denoiser|time|class [--hidden D] [--batch N] [--warmup W] [--steps S]
//   train_bench sample --model time|class [--hidden D] [--batch N] [--warmup W] [--steps S] [--guidance G]
//   train_bench ops    [--hidden D] [--batch N] [--warmup W] [--steps S]
//
// train: W untimed warm-up steps, then S timed training steps of the
//   assignment's loop: forward, mse loss, backward, Adam (lr 1e-3). Each step
//   is timed whole and by phase (forward + loss, backward, optimiser).
//   denoiser: loss = mse(unet(x + 0.5 eps), x)           (Part 1)
//   time:     loss = mse(unet(x_t, t/T), eps)              (Part 2, DDPM)
//   class:    loss = mse(unet(x_t, t/T, c), eps), 10% of the classes dropped
//   Images are synthetic (uniform [0, 1]): the benchmark measures the model,
//   and the reference does the same, so the data loader plays no part.
// sample: S timed reverse steps of the DDPM sampler (eval mode, no grad) on a
//   batch of N images: one UNet forward per step for the time model; for the
//   class model with --guidance G > 0 one forward of 2N images (conditional +
//   unconditional, classifier-free guidance), with --guidance 0 a plain
//   conditional forward of N. images/s through the whole sampler =
//   N / (seconds per step * T), T = 300: extrapolated from S steps, since
//   every step costs the same.
// ops: the UNet's costly ops one by one at the shapes of a width-D UNet on
//   batch N (default: the time model's, D 64, N 128), forward and backward
//   (autograd from a random upstream gradient) timed separately, medians of
//   S repetitions after W: where a training step's time goes, op by op, to be
//   set beside PyTorch's (tools/parity/bench_torch.py ops).
//
// Threads: OpenMP's (set OMP_NUM_THREADS). The JSON carries the load average
// before and after, since other processes on the machine skew the numbers.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/common/cli.h"
#include "core/autograd.h"
#include "core/ops.h"
#include "core/rng.h"
#include "layers/optim.h"
#include "models/ddpm.h"
#include "models/unet.h"

namespace engine {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The 1-minute load average from /proc/loadavg (-1 when unreadable).
double load_average() {
  std::ifstream in("/proc/loadavg");
  double one = -1.0;
  in >> one;
  return one;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

std::string json_list(const std::vector<double>& values) {
  std::ostringstream out;
  out << '[';
  for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
  out << ']';
  return out.str();
}

UNetConditioning conditioning_of(const std::string& model) {
  if (model == "denoiser") return UNetConditioning::none;
  if (model == "time") return UNetConditioning::time;
  return UNetConditioning::time_and_class;
}

struct Options {
  std::string model = "time";
  int64_t hidden = 0;  // 0: the assignment's (denoiser 128, time/class 64)
  int64_t batch = 0;   // 0: the assignment's (denoiser 256, time/class 128) for train; 64 for sample
  int64_t warmup = 1;
  int64_t steps = 3;
  double guidance = 5.0;
  int64_t seed = 0;
};

void print_common(std::ostream& out, const std::string& kind, const Options& o) {
  out << "{\"impl\": \"engine\", \"kind\": \"" << kind << "\", \"model\": \"" << o.model
      << "\", \"hidden\": " << o.hidden << ", \"batch\": " << o.batch << ", \"warmup\": " << o.warmup
      << ", \"steps\": " << o.steps << ", \"threads\": " << omp_get_max_threads();
}

int run_train(Options o) {
  const UNetConditioning conditioning = conditioning_of(o.model);
  Generator gen(static_cast<uint64_t>(o.seed));
  UNet net(o.hidden, conditioning, gen);
  net.train();
  Adam optimizer(net.parameters(), 1e-3);
  const DdpmSchedule schedule;
  std::vector<int64_t> labels(static_cast<size_t>(o.batch));
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % 10);

  std::vector<double> step_s, forward_s, backward_s, optimizer_s;
  const double load_before = load_average();
  for (int64_t step = 0; step < o.warmup + o.steps; ++step) {
    const Tensor x0 = rand({o.batch, 1, 28, 28}, gen);
    const auto start = Clock::now();
    Tensor loss;
    if (conditioning == UNetConditioning::none) {
      const Tensor eps = randn(x0.shape(), gen);
      loss = mse_loss(net.forward(add(x0, scale(eps, 0.5f))), x0);
    } else {
      const bool classes = conditioning == UNetConditioning::time_and_class;
      DdpmTrainingBatch b = make_ddpm_training_batch(schedule, x0, classes ? labels : std::vector<int64_t>{},
                                                     classes ? 0.1 : 0.0, gen);
      loss = mse_loss(net.forward(b.x_t, b.t_input, b.class_input), b.noise);
    }
    const double t_forward = seconds_since(start);
    optimizer.zero_grad();
    loss.backward();
    const double t_backward = seconds_since(start);
    optimizer.step();
    const double t_step = seconds_since(start);
    const float value = loss.item();  // the loss is read back every step here, as a training loop logs it
    if (step == 0) std::cerr << "train_bench: first loss " << value << "\n";
    if (step >= o.warmup) {
      step_s.push_back(t_step);
      forward_s.push_back(t_forward);
      backward_s.push_back(t_backward - t_forward);
      optimizer_s.push_back(t_step - t_backward);
    }
  }
  const double load_after = load_average();
  const double med = median(step_s);
  print_common(std::cout, "train", o);
  std::cout << ", \"step_seconds\": " << json_list(step_s) << ", \"median_step_s\": " << med
            << ", \"images_per_s\": " << (med > 0 ? static_cast<double>(o.batch) / med : 0.0)
            << ", \"median_forward_s\": " << median(forward_s) << ", \"median_backward_s\": " << median(backward_s)
            << ", \"median_optimizer_s\": " << median(optimizer_s) << ", \"loadavg_before\": " << load_before
            << ", \"loadavg_after\": " << load_after << "}" << std::endl;
  return 0;
}

int run_sample(Options o) {
  const UNetConditioning conditioning = conditioning_of(o.model);
  ENGINE_CHECK(conditioning != UNetConditioning::none, "train_bench sample: --model must be time or class");
  Generator gen(static_cast<uint64_t>(o.seed));
  UNet net(o.hidden, conditioning, gen);
  net.eval();
  const DdpmSchedule schedule;
  const int64_t T = schedule.num_steps();
  std::vector<int64_t> labels;
  if (conditioning == UNetConditioning::time_and_class)
    for (int64_t i = 0; i < o.batch; ++i) labels.push_back(i % 10);
  // --guidance 0 on the class model: a plain conditional forward of N images.
  const bool guided = conditioning == UNetConditioning::time_and_class && o.guidance > 0.0;

  autograd::NoGradGuard no_grad;
  Tensor x = randn({o.batch, 1, 28, 28}, gen);
  std::vector<double> step_s;
  const double load_before = load_average();
  for (int64_t k = 0; k < o.warmup + o.steps; ++k) {
    const int64_t t = T - k;  // T, T-1, ...: every step costs the same; t stays >= 2 here
    const auto start = Clock::now();
    Tensor eps;
    if (conditioning == UNetConditioning::time_and_class && !guided) {
      const Tensor c = class_one_hot(labels, {}, x.device());
      eps = net.forward(x, Tensor::full({o.batch, 1}, static_cast<float>(t) / static_cast<float>(T)), c);
    } else {
      eps = ddpm_predict_noise(net, schedule, x, t, labels, o.guidance);
    }
    x = ddpm_reverse_step(schedule, x, eps, t, randn(x.shape(), gen));
    const float probe = x.data<float>()[0];  // the step is complete (matters once steps run asynchronously)
    (void)probe;
    if (k >= o.warmup) step_s.push_back(seconds_since(start));
  }
  const double load_after = load_average();
  const double med = median(step_s);
  print_common(std::cout, "sample", o);
  std::cout << ", \"guidance\": " << (guided ? o.guidance : 0.0) << ", \"sampler_steps\": " << T
            << ", \"step_seconds\": " << json_list(step_s) << ", \"median_step_s\": " << med
            << ", \"images_per_s\": " << (med > 0 ? static_cast<double>(o.batch) / (med * T) : 0.0)
            << ", \"loadavg_before\": " << load_before << ", \"loadavg_after\": " << load_after << "}"
            << std::endl;
  return 0;
}

// One op of the `ops` profile: builds its inputs (requiring grad) and runs it.
struct OpCase {
  std::string name;
  std::vector<Shape> inputs;
  std::function<Tensor(const std::vector<Tensor>&)> run;
};

std::vector<OpCase> unet_op_cases(int64_t N, int64_t D) {
  auto conv = [](int64_t s, int64_t p) {
    return [s, p](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], s, p); };
  };
  auto tconv = [](int64_t s, int64_t p) {
    return [s, p](const std::vector<Tensor>& in) { return conv_transpose2d(in[0], in[1], in[2], s, p); };
  };
  return {
      {"conv3x3 D->D 28x28", {{N, D, 28, 28}, {D, D, 3, 3}, {D}}, conv(1, 1)},
      {"conv3x3 2D->D 28x28", {{N, 2 * D, 28, 28}, {D, 2 * D, 3, 3}, {D}}, conv(1, 1)},
      {"conv3x3 D->D 14x14", {{N, D, 14, 14}, {D, D, 3, 3}, {D}}, conv(1, 1)},
      {"conv3x3 2D->2D 7x7", {{N, 2 * D, 7, 7}, {2 * D, 2 * D, 3, 3}, {2 * D}}, conv(1, 1)},
      {"conv3x3 s2 D->D 28->14", {{N, D, 28, 28}, {D, D, 3, 3}, {D}}, conv(2, 1)},
      {"convT4 s2 2D->D 14->28", {{N, 2 * D, 14, 14}, {2 * D, D, 4, 4}, {D}}, tconv(2, 1)},
      {"convT4 s2 4D->D 7->14", {{N, 4 * D, 7, 7}, {4 * D, D, 4, 4}, {D}}, tconv(2, 1)},
      {"convT7 s7 2D->2D 1->7", {{N, 2 * D, 1, 1}, {2 * D, 2 * D, 7, 7}, {2 * D}}, tconv(7, 0)},
      {"batchnorm train D 28x28", {{N, D, 28, 28}, {D}, {D}},
       [D](const std::vector<Tensor>& in) {
         Tensor mean = Tensor::zeros({D}), var = Tensor::ones({D});
         return batch_norm2d(in[0], in[1], in[2], mean, var, true);
       }},
      {"gelu D 28x28", {{N, D, 28, 28}}, [](const std::vector<Tensor>& in) { return gelu(in[0]); }},
      {"concat D+D 28x28", {{N, D, 28, 28}, {N, D, 28, 28}},
       [](const std::vector<Tensor>& in) { return concat({in[0], in[1]}, 1); }},
  };
}

int run_ops(Options o) {
  Generator gen(static_cast<uint64_t>(o.seed));
  const double load_before = load_average();
  std::cout << "{\"impl\": \"engine\", \"kind\": \"ops\", \"hidden\": " << o.hidden << ", \"batch\": " << o.batch
            << ", \"threads\": " << omp_get_max_threads() << ", \"ops\": {";
  bool first = true;
  for (const OpCase& op : unet_op_cases(o.batch, o.hidden)) {
    std::vector<Tensor> inputs;
    for (const Shape& shape : op.inputs) {
      Tensor t = randn(shape, gen);
      if (shape.size() == 1) uniform_(t, 0.5f, 1.5f, gen);  // weights/biases of BatchNorm: away from 0
      inputs.push_back(t.set_requires_grad(true));
    }
    std::vector<double> forward_s, backward_s;
    for (int64_t rep = 0; rep < o.warmup + o.steps; ++rep) {
      for (Tensor& t : inputs) t.zero_grad();
      auto start = Clock::now();
      Tensor y = op.run(inputs);
      const double t_forward = seconds_since(start);
      const Tensor gy = Tensor::ones(y.shape());
      start = Clock::now();
      autograd::backward(y, gy);
      const double t_backward = seconds_since(start);
      if (rep >= o.warmup) {
        forward_s.push_back(t_forward);
        backward_s.push_back(t_backward);
      }
    }
    std::cout << (first ? "" : ", ") << "\"" << op.name << "\": {\"forward_s\": " << median(forward_s)
              << ", \"backward_s\": " << median(backward_s) << "}";
    first = false;
  }
  std::cout << "}, \"loadavg_before\": " << load_before << ", \"loadavg_after\": " << load_average() << "}"
            << std::endl;
  return 0;
}

}  // namespace
}  // namespace engine

int main(int argc, char** argv) {
  using namespace engine;
  cli::Program program("train_bench", "Times training or sampling steps of the assignment's UNets; prints JSON.");
  Options o;
  cli::Command& train = program.add_command("train", "Time training steps (forward, loss, backward, Adam).");
  cli::Command& sample = program.add_command("sample", "Time DDPM sampler steps (eval mode, no grad).");
  cli::Command& ops = program.add_command("ops", "Time the UNet's ops one by one, forward and backward.");
  for (cli::Command* cmd : {&train, &sample, &ops}) {
    if (cmd != &ops) cmd->choice("model", &o.model, {"denoiser", "time", "class"}, "which UNet");
    cmd->flag("hidden", &o.hidden, "UNet width D (0: denoiser 128, time/class 64)").at_least(0);
    cmd->flag("batch", &o.batch, "images per step (0: train 256/128/128, sample 64, ops 128)").at_least(0);
    cmd->flag("warmup", &o.warmup, "untimed steps first").at_least(0);
    cmd->flag("steps", &o.steps, "timed steps (ops: repetitions)").at_least(1);
    cmd->flag("seed", &o.seed, "seed of the weights and the data").at_least(0);
  }
  sample.flag("guidance", &o.guidance, "classifier-free guidance scale (class model; 0: plain conditional)")
      .at_least(0);
  try {
    cli::Command* chosen = program.parse(argc, argv);
    if (chosen == nullptr) return cli::kExitOk;
    const bool is_train = chosen == &train;
    if (o.hidden == 0) o.hidden = o.model == "denoiser" ? 128 : 64;
    if (chosen == &ops) {
      if (o.batch == 0) o.batch = 128;
      return run_ops(o);
    }
    if (o.batch == 0) o.batch = is_train ? (o.model == "denoiser" ? 256 : 128) : 64;
    return is_train ? run_train(o) : run_sample(o);
  } catch (const cli::UsageError& e) {
    std::cerr << e.what() << "\n";
    return cli::kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "train_bench: " << e.what() << "\n";
    return cli::kExitError;
  }
}
