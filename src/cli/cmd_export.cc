// segscale export RUN --format torchscript|onnx|nnunet --out FILE: a run's model for deployment without segscale.
// libtorch's C++ API can neither trace nor script a module, so the graph is MONAI's own class rebuilt from the
// run's config.json (segscale's weights are its state dict) and exported by torch in Python: the file that
// python/segscale/export.py is, embedded here, run with --python (a Python with torch and monai).
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "segscale/export_script.h"
#include "util/error.h"

namespace segscale::cli {
namespace fs = std::filesystem;
namespace {

// Runs argv[0] (looked up on PATH) with the terminal's stdout and stderr; its exit code, or 127 when it could not start.
int run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("export: cannot start a process: ") + std::strerror(errno));
  if (pid == 0) {
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw Error(std::string("export: lost the Python process: ") + std::strerror(errno));
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "A run's model as TorchScript or ONNX (MONAI's class with the run's weights; needs a Python with torch and monai)");
  struct Args {
    std::string run, format, out, weights, python;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("run", a->run, "Run folder (its model.pt, else last.pt), or a weights file with config.json beside it")->required();
  cmd->add_option("--format", a->format, "torchscript (torch.jit.load, segscale infer --model), onnx (ONNX Runtime, TensorRT; opset 17) or "
                  "nnunet (a run of the nnunet recipe as an nnU-Net results folder: nnUNetv2_predict loads it)")
      ->required()->check(CLI::IsMember({"torchscript", "onnx", "nnunet"}));
  cmd->add_option("--out", a->out, "The file to write (replaced whole, never left half-written); with --format nnunet the results folder "
                  "(e.g. nnUNet_results/Dataset137_BraTS2021/nnUNetTrainer__nnUNetPlans__3d_fullres)")->required();
  cmd->add_option("--weights", a->weights, "In a run folder: model.pt (best) or last.pt (default: model.pt, else last.pt)")
      ->check(CLI::IsMember({"model.pt", "last.pt"}));
  cmd->add_option("--python", a->python, "Python with torch and monai 1.4 (default: $SEGSCALE_PYTHON, else python3 on PATH)");
  cmd->callback([a] {
    if (!fs::exists(a->run)) throw error_at(a->run, "no such run folder or weights file");
    const fs::path run = fs::is_directory(a->run) ? fs::path(a->run) : fs::path(a->run).parent_path();
    if (!fs::exists(run / "config.json")) throw error_at((run / "config.json").string(), "the training run's config.json is needed (segscale train writes it)");
    const fs::path out_dir = fs::absolute(a->out).parent_path();
    if (a->format != "nnunet" && !fs::is_directory(out_dir)) throw error_at(a->out, "its folder does not exist");  // nnunet: made as nnU-Net's results tree
    std::string python = a->python;
    if (python.empty()) python = std::getenv("SEGSCALE_PYTHON") && *std::getenv("SEGSCALE_PYTHON") ? std::getenv("SEGSCALE_PYTHON") : "python3";
    std::vector<std::string> args = {python, "-c", kExportPy, a->run, "--format", a->format, "--out", a->out};
    if (!a->weights.empty()) args.insert(args.end(), {"--weights", a->weights});
    const int rc = run_program(args);
    if (rc == 127) throw UsageError(fmt::format("--python {}: cannot run it; export needs a Python with torch and monai (pass --python or set SEGSCALE_PYTHON)", python));
    if (rc != 0) throw Error(fmt::format("export: {} failed (exit {}); its message is above", python, rc));
  });
}

}  // namespace segscale::cli
