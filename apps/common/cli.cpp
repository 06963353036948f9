#include "apps/common/cli.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "apps/common/checkpoint.h"  // ckpt::double_text: --help shows numbers as checkpoints store them

namespace engine::cli {

namespace {

bool valid_flag_name(const std::string& name) {
  if (name.empty() || name.front() < 'a' || name.front() > 'z' || name.back() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

// Levenshtein distance, for "did you mean" suggestions.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string text;
  for (size_t i = 0; i < parts.size(); ++i) text += (i ? separator : "") + parts[i];
  return text;
}

}  // namespace

// --- Flag ----------------------------------------------------------------------------------

Flag::Flag(std::string name, Type type, void* target, std::string help)
    : name_(std::move(name)), type_(type), target_(target), help_(std::move(help)) {}

Flag& Flag::at_least(double minimum) {
  ENGINE_ASSERT(type_ == Type::Int || type_ == Type::Double);
  minimum_ = minimum;
  minimum_exclusive_ = false;
  return *this;
}

Flag& Flag::greater_than(double minimum) {
  ENGINE_ASSERT(type_ == Type::Int || type_ == Type::Double);
  minimum_ = minimum;
  minimum_exclusive_ = true;
  return *this;
}

Flag& Flag::at_most(double maximum) {
  ENGINE_ASSERT(type_ == Type::Int || type_ == Type::Double);
  maximum_ = maximum;
  return *this;
}

Flag& Flag::required() {
  required_ = true;
  return *this;
}

Flag& Flag::value_name(std::string name) {
  value_name_ = std::move(name);
  return *this;
}

Flag& Flag::default_text(std::string text) {
  default_text_ = std::move(text);
  return *this;
}

std::string Flag::range_text() const {
  std::vector<std::string> parts;
  if (minimum_) parts.push_back((minimum_exclusive_ ? "> " : ">= ") + ckpt::double_text(*minimum_));
  if (maximum_) parts.push_back("<= " + ckpt::double_text(*maximum_));
  return join(parts, ", ");
}

std::string Flag::placeholder() const {
  if (!value_name_.empty()) return value_name_;
  switch (type_) {
    case Type::Int: return "INT";
    case Type::Double: return "NUM";
    case Type::String: return "STR";
    case Type::Choice: return join(choices_, "|");
    case Type::Bool: return "";
  }
  return "";
}

std::string Flag::current_value_text() const {
  switch (type_) {
    case Type::Int: return std::to_string(*static_cast<int64_t*>(target_));
    case Type::Double: return ckpt::double_text(*static_cast<double*>(target_));
    case Type::String:
    case Type::Choice: return *static_cast<std::string*>(target_);
    case Type::Bool: return *static_cast<bool*>(target_) ? "true" : "false";
  }
  return "";
}

void Flag::assign(const std::string& command, const std::string& text) {
  const std::string where = command + ": flag '--" + name_ + "'";
  auto check_range = [&](double value, const char* kind) {
    const bool too_small = minimum_ && (minimum_exclusive_ ? !(value > *minimum_) : !(value >= *minimum_));
    const bool too_large = maximum_ && !(value <= *maximum_);
    if (too_small || too_large)
      throw UsageError(where + ": expected " + kind + " " + range_text() + ", got '" + text + "'");
  };
  switch (type_) {
    case Type::Int: {
      int64_t value = 0;
      const char* first = text.data();
      const char* last = first + text.size();
      const auto [end, error] = std::from_chars(first, last, value);
      if (text.empty() || error == std::errc::result_out_of_range || end != last || error != std::errc())
        throw UsageError(where + ": expected an integer" +
                         (error == std::errc::result_out_of_range ? std::string(" that fits in 64 bits") : "") +
                         ", got '" + text + "'");
      check_range(static_cast<double>(value), "an integer");
      *static_cast<int64_t*>(target_) = value;
      break;
    }
    case Type::Double: {
      char* end = nullptr;
      errno = 0;
      const double value = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value) || errno == ERANGE ||
          std::isspace(static_cast<unsigned char>(text.front())))
        throw UsageError(where + ": expected a finite number, got '" + text + "'");
      check_range(value, "a number");
      *static_cast<double*>(target_) = value;
      break;
    }
    case Type::String:
      if (text.empty()) throw UsageError(where + ": expected a non-empty value, got ''");
      *static_cast<std::string*>(target_) = text;
      break;
    case Type::Choice:
      if (std::find(choices_.begin(), choices_.end(), text) == choices_.end())
        throw UsageError(where + ": expected one of " + join(choices_, ", ") + ", got '" + text + "'");
      *static_cast<std::string*>(target_) = text;
      break;
    case Type::Bool:
      if (text == "true" || text == "1") {
        *static_cast<bool*>(target_) = true;
      } else if (text == "false" || text == "0") {
        *static_cast<bool*>(target_) = false;
      } else {
        throw UsageError(where + ": expected no value, or =true / =false, got '" + text + "'");
      }
      break;
  }
  set_ = true;
}

// --- Command -------------------------------------------------------------------------------

Command::Command(std::string program, std::string name, std::string summary)
    : program_(std::move(program)), name_(std::move(name)), summary_(std::move(summary)) {}

Flag& Command::add(const std::string& name, Flag::Type type, void* target, std::string help) {
  ENGINE_CHECK(valid_flag_name(name), "cli: flag name '", name,
               "' is not kebab-case (lowercase letters, digits and '-', starting with a letter)");
  ENGINE_CHECK(name != "help" && lookup(name) == nullptr, "cli: flag '--", name, "' declared twice in '", name_, "'");
  flags_.push_back(std::unique_ptr<Flag>(new Flag(name, type, target, std::move(help))));
  return *flags_.back();
}

Flag& Command::flag(const std::string& name, int64_t* target, std::string help) {
  return add(name, Flag::Type::Int, target, std::move(help));
}
Flag& Command::flag(const std::string& name, double* target, std::string help) {
  return add(name, Flag::Type::Double, target, std::move(help));
}
Flag& Command::flag(const std::string& name, std::string* target, std::string help) {
  return add(name, Flag::Type::String, target, std::move(help));
}
Flag& Command::flag(const std::string& name, bool* target, std::string help) {
  return add(name, Flag::Type::Bool, target, std::move(help));
}
Flag& Command::choice(const std::string& name, std::string* target, std::vector<std::string> choices,
                      std::string help) {
  ENGINE_CHECK(std::find(choices.begin(), choices.end(), *target) != choices.end(), "cli: default '", *target,
               "' of flag '--", name, "' is not one of its choices");
  Flag& f = add(name, Flag::Type::Choice, target, std::move(help));
  f.choices_ = std::move(choices);
  return f;
}

Flag* Command::lookup(const std::string& name) {
  for (auto& f : flags_)
    if (f->name_ == name) return f.get();
  return nullptr;
}

const Flag& Command::find(const std::string& name) const {
  for (const auto& f : flags_)
    if (f->name_ == name) return *f;
  throw Error("cli: command '" + name_ + "' has no flag '--" + name + "'");
}

bool Command::was_set(const std::string& name) const { return find(name).is_set(); }

std::string Command::suggestion_for(const std::string& unknown) const {
  std::string best;
  size_t best_distance = 3;  // suggest only names within two edits, or that contain the typo
  for (const auto& f : flags_) {
    const size_t d = edit_distance(unknown, f->name_);
    if (d < best_distance || (best.empty() && unknown.size() >= 3 && f->name_.find(unknown) != std::string::npos)) {
      best_distance = std::min(d, best_distance);
      best = f->name_;
    }
  }
  return best.empty() ? "" : " (did you mean '--" + best + "'?)";
}

bool Command::parse(const std::vector<std::string>& args) {
  for (const std::string& arg : args)
    if (arg == "--help" || arg == "-h") return false;

  const std::string who = program_ + " " + name_;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.rfind("--", 0) != 0 || arg.size() == 2)
      throw UsageError(who + ": unexpected argument '" + arg + "' (this command takes only --flags; see '" + who +
                       " --help')");
    const size_t equals = arg.find('=');
    const std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    Flag* f = lookup(name);
    if (f == nullptr)
      throw UsageError(who + ": unknown flag '--" + name + "'" + suggestion_for(name) + "; see '" + who + " --help'");
    if (f->set_) throw UsageError(who + ": flag '--" + name + "' given twice");
    if (equals != std::string::npos) {
      f->assign(who, arg.substr(equals + 1));
    } else if (f->type_ == Flag::Type::Bool) {
      f->assign(who, "true");
    } else {
      if (i + 1 >= args.size())
        throw UsageError(who + ": flag '--" + name + "' needs a value (" + f->placeholder() + ")");
      f->assign(who, args[++i]);
    }
  }
  for (const auto& f : flags_)
    if (f->required_ && !f->set_) throw UsageError(who + ": flag '--" + f->name_ + "' is required; see '" + who + " --help'");
  return true;
}

std::string Command::help() const {
  std::ostringstream out;
  out << "Usage: " << program_ << " " << name_ << " [flags]\n\n" << summary_ << "\n\nFlags:\n";
  for (const auto& f : flags_) {
    std::string head = "  --" + f->name_;
    if (f->type_ != Flag::Type::Bool) {
      head += ' ';  // two appends: GCC 12 gives a false -Wrestrict on " " + std::string&&
      head += f->placeholder();
    }
    out << head << "\n      " << f->help_;
    std::vector<std::string> notes;
    if (!f->range_text().empty()) notes.push_back(f->range_text());
    if (f->required_) {
      notes.push_back("required");
    } else if (!f->default_text_.empty()) {
      notes.push_back("default: " + f->default_text_);
    } else if (f->type_ != Flag::Type::Bool || *static_cast<bool*>(f->target_)) {
      const std::string value = f->current_value_text();
      notes.push_back("default: " + (value.empty() ? std::string("none") : value));
    }
    if (!notes.empty()) out << " [" << join(notes, "; ") << "]";
    out << "\n";
  }
  out << "  -h, --help\n      show this help and exit\n";
  if (!epilog_.empty()) out << "\n" << epilog_ << (epilog_.back() == '\n' ? "" : "\n");
  return out.str();
}

// --- Program -------------------------------------------------------------------------------

Program::Program(std::string name, std::string summary) : name_(std::move(name)), summary_(std::move(summary)) {}

Command& Program::add_command(const std::string& name, const std::string& summary) {
  for (const auto& c : commands_) ENGINE_CHECK(c->name() != name, "cli: command '", name, "' declared twice");
  commands_.push_back(std::make_unique<Command>(name_, name, summary));
  return *commands_.back();
}

void Program::set_default_command(const std::string& name) {
  bool known = false;
  for (const auto& c : commands_) known = known || c->name() == name;
  ENGINE_CHECK(known, "cli: default command '", name, "' was never added");
  default_command_ = name;
}

std::string Program::help() const {
  std::ostringstream out;
  out << "Usage: " << name_ << " <command> [flags]\n\n" << summary_ << "\n\nCommands:\n";
  for (const auto& c : commands_)
    out << "  " << c->name() << (c->name() == default_command_ ? " (default)" : "") << "\n      " << c->summary()
        << "\n";
  out << "\nRun '" << name_ << " <command> --help' for the flags of a command.\n";
  return out.str();
}

Command* Program::parse(const std::vector<std::string>& args, std::string* help_text) {
  Command* command = nullptr;
  size_t first_flag = 0;
  if (!args.empty()) {
    for (const auto& c : commands_)
      if (c->name() == args[0]) command = c.get();
    if (command != nullptr) first_flag = 1;
  }
  if (command == nullptr) {
    const bool asks_for_help = !args.empty() && (args[0] == "--help" || args[0] == "-h");
    if (asks_for_help || (args.empty() && default_command_.empty())) {
      if (help_text) *help_text = help();
      return nullptr;
    }
    if (!args.empty() && args[0].rfind("-", 0) != 0) {
      std::vector<std::string> names;
      for (const auto& c : commands_) names.push_back(c->name());
      throw UsageError(name_ + ": unknown command '" + args[0] + "' (commands: " + join(names, ", ") + "; see '" +
                       name_ + " --help')");
    }
    if (default_command_.empty())
      throw UsageError(name_ + ": a command is required first; see '" + name_ + " --help'");
    for (const auto& c : commands_)
      if (c->name() == default_command_) command = c.get();
  }
  const std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(first_flag), args.end());
  if (!command->parse(rest)) {
    if (help_text) *help_text = command->help();
    return nullptr;
  }
  return command;
}

Command* Program::parse(int argc, const char* const* argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  std::string help_text;
  Command* command = parse(args, &help_text);
  if (command == nullptr) std::cout << help_text;
  return command;
}

// --- Common flags --------------------------------------------------------------------------

void add_device_flags(Command& cmd, CommonOptions& options, bool with_seed) {
  cmd.flag("device", &options.device, "where to compute: cpu, cuda or cuda:N")
      .value_name("cpu|cuda|cuda:N")
      .default_text("cuda when a CUDA device is usable, else cpu");
  cmd.flag("threads", &options.threads,
           "CPU threads for the kernels (on a busy machine fewer threads than cores can be faster)")
      .at_least(0)
      .value_name("N")
      .default_text("0 = OMP_NUM_THREADS if set, else one per core");
  if (with_seed)
    cmd.flag("seed", &options.seed, "seed of every random stream (weights, shuffling, noise)").at_least(0);
}

void add_out_flag(Command& cmd, CommonOptions& options, const std::string& default_description,
                  const std::string& help) {
  cmd.flag("out", &options.out,
           help.empty() ? "the run folder: every figure, table, checkpoint and report.html go here" : help)
      .value_name("DIR")
      .default_text(default_description);
}

void add_training_flags(Command& cmd, CommonOptions& options, const std::string& quick_description) {
  cmd.flag("quick", &options.quick, quick_description);
  cmd.flag("resume", &options.resume,
           "continue the run in --out from its checkpoint.safetensors (same settings required); the losses "
           "are those of an uninterrupted run");
}

void add_data_flags(Command& cmd, CommonOptions& options) {
  cmd.flag("data-dir", &options.data_dir, "folder with the four IDX files (plain or .gz)")
      .value_name("DIR")
      .default_text("$ENGINE_DATA_DIR, else data/mnist; for fashion /usr/share/datasets/fashion-mnist");
  cmd.choice("dataset", &options.dataset, {"mnist", "fashion"}, "MNIST digits or Fashion-MNIST clothes");
}

void add_stop_after_steps_flag(Command& cmd, CommonOptions& options) {
  cmd.flag("stop-after-steps", &options.stop_after_steps,
           "act as if Ctrl-C were pressed once N steps are done (counted over the whole run): the checkpoint "
           "is saved and the program exits with status 130, to test --resume (0: never)")
      .at_least(0)
      .value_name("N");
}

std::string command_line(const std::string& program, const std::vector<std::string>& args) {
  std::string line = program;
  for (const std::string& arg : args) line += " " + arg;
  return line;
}

std::string continue_command_line(const std::string& program, const std::vector<std::string>& args) {
  std::string line = program;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--stop-after-steps") {
      ++i;  // and its value
    } else if (args[i].rfind("--stop-after-steps=", 0) != 0) {
      line += " " + args[i];
    }
  }
  return line;
}

Device resolve_device(const std::string& text) {
  if (text.empty()) return cuda_available() ? Device::cuda(0) : Device::cpu();
  Device device;
  try {
    device = parse_device(text);
  } catch (const Error&) {
    throw UsageError("flag '--device': expected cpu, cuda or cuda:N, got '" + text + "'");
  }
  if (device.is_cuda()) {
    const int count = cuda_device_count();
    if (count == 0)
      throw UsageError("flag '--device': got '" + text +
                       "', but no CUDA device is usable here (a CPU-only build, or no GPU/driver found); use --device cpu");
    if (device.index >= count)
      throw UsageError("flag '--device': got '" + text + "', but only " + std::to_string(count) +
                       " CUDA device(s) are present (cuda:0 .. cuda:" + std::to_string(count - 1) + ")");
  }
  return device;
}

Device setup_device(const CommonOptions& options) {
  const Device device = resolve_device(options.device);
#ifdef _OPENMP
  if (options.threads > 0) omp_set_num_threads(static_cast<int>(options.threads));
#endif
  return device;
}

int cpu_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

std::string device_description(const Device& device, int threads) {
  return device.str() + (device.is_cpu() ? " (" + std::to_string(threads) + " threads)" : "");
}

int run_main(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const UsageError& e) {
    std::cerr << program << ": error: " << e.what() << std::endl;
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << program << ": error: " << e.what() << std::endl;
    return kExitError;
  }
}

}  // namespace engine::cli
