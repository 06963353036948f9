// Command-line parsing for the apps: --kebab-case flags bound to typed
// variables, subcommands, and a --help that is generated from the declared
// flags (so it can never disagree with what the parser accepts).
//
// A program has one or more commands ("denoiser train", "denoiser apply");
// each command declares its flags by binding them to variables, whose values
// at declaration time are the defaults that --help shows:
//
//   cli::Program program("denoiser", "Part 1: a UNet that removes Gaussian noise from MNIST digits.");
//   cli::Command& train = program.add_command("train", "Train the denoiser and write a run folder.");
//   double sigma = 0.5;
//   int64_t batch_size = 256;
//   train.flag("sigma", &sigma, "noise level of the training pairs").at_least(0);
//   train.flag("batch-size", &batch_size, "images per optimiser step").at_least(1);
//   program.set_default_command("train");      // "denoiser --sigma 1" means "denoiser train --sigma 1"
//   const cli::Command* chosen = program.parse(argc, argv);   // throws cli::UsageError
//   if (chosen == nullptr) return 0;          // --help was printed
//
// What the parser accepts, for a flag named "batch-size":
//   --batch-size 64   --batch-size=64        an int64, double, string or choice flag
//   --quick           --quick=true|false     a bool flag (a switch: present = true)
//   -h, --help                               prints the help of the program or command
// What it rejects, each with a cli::UsageError naming the flag and the value
// (the apps turn it into exit status 2, before any work starts):
//   an unknown flag (with a "did you mean" suggestion), a flag given twice,
//   a missing value, a value that does not parse completely as the flag's
//   type ("12abc", "1e999", "nan" for a number), a number out of its declared
//   range, a string not among a choice flag's choices, a missing required
//   flag, and any positional argument (the apps take only flags).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"

namespace engine::cli {

// A bad command line. The message is complete and names the flag and value.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// One declared flag. Returned by Command::flag so that constraints chain:
//   cmd.flag("hidden", &hidden, "UNet width D").at_least(1).value_name("D");
class Flag {
 public:
  enum class Type { Int, Double, String, Bool, Choice };

  // Numeric range (Int and Double flags); a value outside it is a UsageError.
  Flag& at_least(double minimum);      // value >= minimum
  Flag& greater_than(double minimum);  // value >  minimum
  Flag& at_most(double maximum);       // value <= maximum
  // The flag must be given on the command line.
  Flag& required();
  // The placeholder shown in --help ("--out DIR"); by default INT, NUM, STR, or the choices.
  Flag& value_name(std::string name);
  // Replaces the default shown in --help, for defaults computed at run time
  // ("cuda when a GPU is present, else cpu").
  Flag& default_text(std::string text);

  const std::string& name() const { return name_; }
  Type type() const { return type_; }
  bool is_set() const { return set_; }  // given on the command line

 private:
  friend class Command;
  Flag(std::string name, Type type, void* target, std::string help);
  // Parses `text` into the bound variable, or throws a UsageError naming `command`.
  void assign(const std::string& command, const std::string& text);
  std::string range_text() const;  // ">= 1", "> 0, <= 1", or ""
  std::string placeholder() const;
  std::string current_value_text() const;

  std::string name_;
  Type type_;
  void* target_;  // int64_t*, double*, std::string* (String and Choice) or bool*
  std::string help_;
  std::vector<std::string> choices_;
  std::optional<double> minimum_, maximum_;
  bool minimum_exclusive_ = false;
  bool required_ = false;
  bool set_ = false;
  std::string value_name_;
  std::string default_text_;
};

class Command {
 public:
  // `program` is the binary's name, for messages ("denoiser train: ...").
  Command(std::string program, std::string name, std::string summary);

  // Binds a flag to a variable; the variable's current value is the default.
  // The name is kebab-case without the leading "--" (lowercase letters,
  // digits and '-', starting with a letter); it must be new to this command.
  Flag& flag(const std::string& name, int64_t* target, std::string help);
  Flag& flag(const std::string& name, double* target, std::string help);
  Flag& flag(const std::string& name, std::string* target, std::string help);
  Flag& flag(const std::string& name, bool* target, std::string help);
  // A string that must be one of `choices` (the default must be one too).
  Flag& choice(const std::string& name, std::string* target, std::vector<std::string> choices, std::string help);

  // A paragraph printed at the end of --help (presets, examples, exit codes).
  void set_epilog(std::string text) { epilog_ = std::move(text); }

  // Parses the flags (the arguments after the command name). Returns false
  // if --help/-h was among them (nothing else is parsed, help not printed).
  // Throws UsageError on anything it does not accept.
  bool parse(const std::vector<std::string>& args);

  // True when the flag was given on the command line (to let presets such
  // as --quick fill in only what the user left unset).
  bool was_set(const std::string& name) const;
  const Flag& find(const std::string& name) const;

  const std::string& name() const { return name_; }
  const std::string& summary() const { return summary_; }
  // "Usage: denoiser train [flags]" + the summary + one entry per flag
  // (placeholder, help, range, default) + the epilog.
  std::string help() const;

 private:
  Flag& add(const std::string& name, Flag::Type type, void* target, std::string help);
  Flag* lookup(const std::string& name);
  std::string suggestion_for(const std::string& unknown) const;

  std::string program_, name_, summary_, epilog_;
  std::vector<std::unique_ptr<Flag>> flags_;  // declaration order (the order of --help)
};

class Program {
 public:
  Program(std::string name, std::string summary);

  // Adds a subcommand; the reference stays valid for the program's life.
  Command& add_command(const std::string& name, const std::string& summary);
  // The command used when the first argument is not a command name (or there
  // are no arguments). Without one, a command name is required.
  void set_default_command(const std::string& name);

  // Picks the command (argv[1] when it names one, else the default) and
  // parses the rest. Returns the chosen command, or nullptr when help was
  // asked for (it has then been written to `help_out`). Throws UsageError.
  Command* parse(int argc, const char* const* argv);
  Command* parse(const std::vector<std::string>& args, std::string* help_text);

  // The program's help: usage, summary, the commands.
  std::string help() const;
  const std::string& name() const { return name_; }

 private:
  std::string name_, summary_, default_command_;
  std::vector<std::unique_ptr<Command>> commands_;
};

// --- The flags every app shares (DESIGN.md: "apps speak one dialect") --------------
// Each add_* declares flags on `cmd` bound to the fields of `options`.
struct CommonOptions {
  std::string device;          // "cpu", "cuda", "cuda:N"; empty = auto (cuda when available)
  int64_t seed = 0;            // every random stream of a run derives from it
  int64_t threads = 0;         // CPU threads (OpenMP); 0 = OpenMP's default (OMP_NUM_THREADS, else all cores)
  std::string out;             // the run folder; empty = the app's default
  bool quick = false;          // the small CPU preset
  bool resume = false;         // continue the run in --out from its checkpoint
  std::string data_dir;        // empty = $ENGINE_DATA_DIR, else data/mnist (fashion: /usr/share/datasets/fashion-mnist)
  std::string dataset = "mnist";  // "mnist" | "fashion"
  int64_t stop_after_steps = 0;   // act as if Ctrl-C came after this many steps (tests of --resume); 0 = never
};

// --device, --threads and (unless with_seed is false: commands that draw no
// random numbers) --seed.
void add_device_flags(Command& cmd, CommonOptions& options, bool with_seed = true);
// --out (with the app's default folder shown in --help); `help` replaces the
// run-folder description for commands whose output is something else.
void add_out_flag(Command& cmd, CommonOptions& options, const std::string& default_description,
                  const std::string& help = "");
// --quick and --resume (the training commands).
void add_training_flags(Command& cmd, CommonOptions& options, const std::string& quick_description);
// --data-dir and --dataset.
void add_data_flags(Command& cmd, CommonOptions& options);
// --stop-after-steps (the training commands, to test --resume without a real Ctrl-C).
void add_stop_after_steps_flag(Command& cmd, CommonOptions& options);

// The command as typed, "program arg1 arg2 ...", for the reports.
std::string command_line(const std::string& program, const std::vector<std::string>& args);
// The same without --stop-after-steps (and its value): the command that
// continues a stopped run, for the "continue with" hint.
std::string continue_command_line(const std::string& program, const std::vector<std::string>& args);

// The device --device names, checked against what this machine has:
// "" -> cuda:0 when a CUDA device is usable, else cpu; "cuda" with no usable
// device is a UsageError that says so and suggests --device cpu.
Device resolve_device(const std::string& text);

// resolve_device(options.device), and sets the number of CPU threads to
// options.threads when it is not 0 (omp_set_num_threads). Call it once,
// after parsing and before any work.
Device setup_device(const CommonOptions& options);

// The number of CPU threads the kernels use (omp_get_max_threads()).
int cpu_threads();

// The device as the apps name it in messages and reports: "cpu (2 threads)"
// on the CPU, "cuda:0" on a GPU (where the thread count does not matter).
std::string device_description(const Device& device, int threads);

// Exit statuses of every app.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;        // a runtime error (bad file, failed write, ...)
constexpr int kExitUsage = 2;        // a bad command line
constexpr int kExitDiverged = 3;     // the loss became NaN or infinite
constexpr int kExitInterrupted = 130;  // Ctrl-C: checkpoint saved, resume with --resume (128 + SIGINT)

// An app's main() around its body: returns what `body` returns, and turns an
// exception that escapes it into "<program>: error: <message>" on stderr and
// an exit status: kExitUsage for a UsageError (a bad command line, found
// before any work), kExitError for any other.
int run_main(const std::string& program, const std::function<int()>& body);

}  // namespace engine::cli
