// The flag parser of the apps (apps/common/cli.h): typed values, ranges,
// defaults in --help, subcommands, and the error message of every kind of
// bad command line.
#include "apps/common/cli.h"
#include "tests/apps/app_test_util.h"

#include <gtest/gtest.h>

#include <functional>

namespace engine::cli {
namespace {

// The message of the UsageError `f` throws ("" and a test failure if none).
template <typename F>
std::string usage_error_of(F&& f) {
  return app_test::error_of<UsageError>(f);
}

struct Flags {
  int64_t batch = 256;
  double sigma = 0.5;
  double lr = 1e-4;
  std::string out;
  bool quick = false;
  std::string dataset = "mnist";
};

// A command with one flag of every type.
std::unique_ptr<Command> make_command(Flags& f) {
  auto cmd = std::make_unique<Command>("app", "train", "Trains it.");
  cmd->flag("batch-size", &f.batch, "images per step").at_least(1);
  cmd->flag("sigma", &f.sigma, "noise level").at_least(0).at_most(10);
  cmd->flag("lr", &f.lr, "learning rate").greater_than(0);
  cmd->flag("out", &f.out, "run folder").value_name("DIR");
  cmd->flag("quick", &f.quick, "small preset");
  cmd->choice("dataset", &f.dataset, {"mnist", "fashion"}, "which data");
  return cmd;
}

TEST(Cli, ParsesEveryTypeInBothForms) {
  Flags f;
  auto cmd = make_command(f);
  ASSERT_TRUE(cmd->parse({"--batch-size", "64", "--sigma=0.25", "--lr", "3e-4", "--out=runs/x", "--quick",
                          "--dataset", "fashion"}));
  EXPECT_EQ(f.batch, 64);
  EXPECT_EQ(f.sigma, 0.25);
  EXPECT_EQ(f.lr, 3e-4);
  EXPECT_EQ(f.out, "runs/x");
  EXPECT_TRUE(f.quick);
  EXPECT_EQ(f.dataset, "fashion");
  EXPECT_TRUE(cmd->was_set("sigma"));
}

TEST(Cli, UnsetFlagsKeepTheirDefaultsAndAreNotMarkedSet) {
  Flags f;
  auto cmd = make_command(f);
  ASSERT_TRUE(cmd->parse({"--quick=false"}));
  EXPECT_FALSE(f.quick);
  EXPECT_TRUE(cmd->was_set("quick"));
  EXPECT_FALSE(cmd->was_set("batch-size"));
  EXPECT_EQ(f.batch, 256);
  EXPECT_EQ(f.sigma, 0.5);
  // Boundary values of the ranges are accepted.
  Flags g;
  auto cmd2 = make_command(g);
  ASSERT_TRUE(cmd2->parse({"--sigma", "0", "--batch-size", "1"}));
  EXPECT_EQ(g.sigma, 0.0);
  Flags h;
  auto cmd3 = make_command(h);
  ASSERT_TRUE(cmd3->parse({"--sigma", "10"}));
  EXPECT_EQ(h.sigma, 10.0);
}

TEST(Cli, HelpListsEveryFlagWithItsDefaultAndRange) {
  Flags f;
  auto cmd = make_command(f);
  EXPECT_FALSE(cmd->parse({"--sigma", "1", "--help"}));  // help wins, nothing parsed
  EXPECT_EQ(f.sigma, 0.5);
  const std::string help = cmd->help();
  EXPECT_NE(help.find("Usage: app train [flags]"), std::string::npos) << help;
  EXPECT_NE(help.find("--batch-size INT\n      images per step [>= 1; default: 256]"), std::string::npos) << help;
  EXPECT_NE(help.find("--sigma NUM\n      noise level [>= 0, <= 10; default: 0.5]"), std::string::npos) << help;
  EXPECT_NE(help.find("--lr NUM\n      learning rate [> 0; default: 0.0001]"), std::string::npos) << help;
  EXPECT_NE(help.find("--out DIR\n      run folder [default: none]"), std::string::npos) << help;
  EXPECT_NE(help.find("--quick\n      small preset\n"), std::string::npos) << help;
  EXPECT_NE(help.find("--dataset mnist|fashion\n      which data [default: mnist]"), std::string::npos) << help;
  EXPECT_NE(help.find("-h, --help"), std::string::npos) << help;
}

TEST(Cli, BadValuesNameTheFlagAndTheValue) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--batch-size", "0"}, "app train: flag '--batch-size': expected an integer >= 1, got '0'"},
      {{"--batch-size", "-5"}, "flag '--batch-size': expected an integer >= 1, got '-5'"},
      {{"--batch-size", "12abc"}, "flag '--batch-size': expected an integer, got '12abc'"},
      {{"--batch-size", "1.5"}, "flag '--batch-size': expected an integer, got '1.5'"},
      {{"--batch-size", "99999999999999999999"}, "expected an integer that fits in 64 bits, got '99999999999999999999'"},
      {{"--sigma", "-0.1"}, "flag '--sigma': expected a number >= 0, <= 10, got '-0.1'"},
      {{"--sigma", "11"}, "flag '--sigma': expected a number >= 0, <= 10, got '11'"},
      {{"--sigma", "nan"}, "flag '--sigma': expected a finite number, got 'nan'"},
      {{"--sigma", "1e999"}, "flag '--sigma': expected a finite number, got '1e999'"},
      {{"--sigma", ""}, "flag '--sigma': expected a finite number, got ''"},
      {{"--lr", "0"}, "flag '--lr': expected a number > 0, got '0'"},
      {{"--quick=yes"}, "flag '--quick': expected no value, or =true / =false, got 'yes'"},
      {{"--dataset", "cifar"}, "flag '--dataset': expected one of mnist, fashion, got 'cifar'"},
      {{"--out="}, "flag '--out': expected a non-empty value, got ''"},
      {{"--sigma"}, "flag '--sigma' needs a value (NUM)"},
      {{"--sigma", "1", "--sigma", "2"}, "flag '--sigma' given twice"},
      {{"--sigmaa", "1"}, "unknown flag '--sigmaa' (did you mean '--sigma'?); see 'app train --help'"},
      {{"--frobnicate"}, "unknown flag '--frobnicate'; see 'app train --help'"},
      {{"runs/x"}, "unexpected argument 'runs/x' (this command takes only --flags"},
      {{"--"}, "unexpected argument '--'"},
  };
  for (const Case& c : cases) {
    Flags f;
    auto cmd = make_command(f);
    const std::string message = usage_error_of([&] { cmd->parse(c.args); });
    EXPECT_NE(message.find(c.expected), std::string::npos) << "args " << c.args[0] << "\n got: " << message;
  }
}

TEST(Cli, RequiredFlags) {
  std::string path;
  Command cmd("app", "apply", "Applies it.");
  cmd.flag("checkpoint", &path, "a file").required().value_name("FILE");
  EXPECT_NE(usage_error_of([&] { cmd.parse({}); }).find("app apply: flag '--checkpoint' is required"), std::string::npos);
  EXPECT_NE(cmd.help().find("--checkpoint FILE\n      a file [required]"), std::string::npos) << cmd.help();
}

TEST(Cli, DeclarationMistakesAreProgrammingErrors) {
  int64_t a = 0, b = 0;
  std::string choice = "x";
  Command cmd("app", "c", "");
  cmd.flag("alpha", &a, "");
  EXPECT_THROW(cmd.flag("alpha", &b, ""), Error);       // twice
  EXPECT_THROW(cmd.flag("Alpha", &b, ""), Error);       // not kebab-case
  EXPECT_THROW(cmd.flag("snake_case", &b, ""), Error);  // not kebab-case
  EXPECT_THROW(cmd.flag("help", &b, ""), Error);        // reserved
  EXPECT_THROW(cmd.choice("mode", &choice, {"a", "b"}, ""), Error);  // default not a choice
}

TEST(Cli, ProgramPicksTheCommandOrTheDefault) {
  Program program("app", "Does things.");
  Flags train_flags, apply_flags;
  Command& train = program.add_command("train", "Trains.");
  train.flag("sigma", &train_flags.sigma, "noise");
  Command& apply = program.add_command("apply", "Applies.");
  apply.flag("out", &apply_flags.out, "where");

  std::string help;
  // No default command yet: a command is required; no arguments print help.
  EXPECT_EQ(program.parse({}, &help), nullptr);
  EXPECT_NE(help.find("Usage: app <command> [flags]"), std::string::npos);
  EXPECT_NE(usage_error_of([&] { program.parse({"--sigma", "1"}, nullptr); }).find("a command is required first"),
            std::string::npos);

  program.set_default_command("train");
  EXPECT_EQ(program.parse({"--sigma", "1"}, nullptr), &train);
  EXPECT_EQ(train_flags.sigma, 1.0);
  EXPECT_EQ(program.parse({"apply", "--out", "d"}, nullptr), &apply);
  EXPECT_EQ(apply_flags.out, "d");

  help.clear();
  EXPECT_EQ(program.parse({"--help"}, &help), nullptr);
  EXPECT_NE(help.find("train (default)"), std::string::npos) << help;
  EXPECT_NE(help.find("apply\n      Applies."), std::string::npos) << help;
  help.clear();
  EXPECT_EQ(program.parse({"apply", "-h"}, &help), nullptr);
  EXPECT_NE(help.find("Usage: app apply [flags]"), std::string::npos) << help;

  EXPECT_NE(usage_error_of([&] { program.parse({"trian"}, nullptr); })
                .find("app: unknown command 'trian' (commands: train, apply; see 'app --help')"),
            std::string::npos);
  EXPECT_THROW(program.set_default_command("nope"), Error);
}

TEST(Cli, CommonFlagsAndDevices) {
  CommonOptions options;
  Command cmd("app", "train", "");
  add_device_flags(cmd, options);
  add_out_flag(cmd, options, "runs/app-<time>");
  add_training_flags(cmd, options, "small preset");
  add_data_flags(cmd, options);
  ASSERT_TRUE(cmd.parse({"--device", "cpu", "--seed", "7", "--threads", "1", "--out", "o", "--quick", "--resume",
                         "--data-dir", "d", "--dataset", "fashion"}));
  EXPECT_EQ(options.device, "cpu");
  EXPECT_EQ(options.seed, 7);
  EXPECT_EQ(options.threads, 1);
  EXPECT_EQ(options.out, "o");
  EXPECT_TRUE(options.quick && options.resume);
  EXPECT_EQ(options.data_dir, "d");
  EXPECT_EQ(options.dataset, "fashion");
  const std::string help = cmd.help();
  EXPECT_NE(help.find("default: cuda when a CUDA device is usable, else cpu"), std::string::npos) << help;
  EXPECT_NE(help.find("default: runs/app-<time>"), std::string::npos) << help;

  EXPECT_EQ(resolve_device("cpu"), Device::cpu());
  EXPECT_EQ(resolve_device(""), cuda_available() ? Device::cuda(0) : Device::cpu());
  EXPECT_NE(usage_error_of([] { resolve_device("tpu"); }).find("flag '--device': expected cpu, cuda or cuda:N, got 'tpu'"),
            std::string::npos);
  if (!cuda_available()) {
    EXPECT_NE(usage_error_of([] { resolve_device("cuda"); }).find("no CUDA device is usable here"), std::string::npos);
  } else {
    EXPECT_NE(usage_error_of([] { resolve_device("cuda:99"); }).find("CUDA device(s) are present"), std::string::npos);
  }
}

}  // namespace
}  // namespace engine::cli
