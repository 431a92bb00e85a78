// aligned_infer: exported AlignedReID++ model over preprocessed images, in one of two layouts.
//   packed: aligned_infer --model FILE --input IMAGES.u8 --output_dir DIR [options]
//     IMAGES.u8 holds N images as uint8 [N, H, W, 3] (RGB after the resize, before normalisation);
//     the program normalises with the ImageNet mean/std on 0-255 pixels and writes
//     DIR/output_<k>.f32 = float32 [N, size_k] for each model output k (0: global feature [C],
//     1: stripes [C, S]), each complete or absent (written to .part, renamed at the end).
//   files:  aligned_infer --model FILE --input_dir DIR --output_dir DIR [options]
//     every DIR/NAME.bin (float32 [3, H, W], normalised) gives DIR_OUT/NAME_<k>.bin.
// options: [--batch N] [--height H] [--width W] [--device_id ID] [--threads T] [--flip 0|1]
//          [--precision fp32|bf16|int8] [--hint latency|throughput]
//   --flip 1: test-time flip; every output is the mean of the image's and its horizontal mirror's.
//   --precision: fp32 (default), bf16, or int8 for a quantised OpenVINO IR (model.xml); cpu backend.
//   --hint: OpenVINO's performance hint (cpu backend; default latency).
// Exit status 0 on success, 1 on bad input or backend failure, 2 on bad arguments.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "backend.h"
#include "io.h"

namespace fs = std::filesystem;

namespace {

void Usage() {
  std::cerr << "usage: aligned_infer --model FILE (--input IMAGES.u8 | --input_dir DIR) --output_dir DIR [--batch N] "
               "[--height H] [--width W] [--device_id ID] [--threads T] [--flip 0|1] [--precision fp32|bf16|int8] "
               "[--hint latency|throughput]\n";
}

// Reverse every image row of an NCHW float batch in place (the horizontal mirror).
void MirrorRows(std::vector<float> &batch, int width) {
  for (size_t row = 0; row + width <= batch.size(); row += width) std::reverse(batch.begin() + row, batch.begin() + row + width);
}

// The backend's outputs for one batch; with flip, the mean of the batch's and its mirror's.
std::vector<std::vector<float>> RunBatch(aligned::Backend &backend, std::vector<float> &batch, int width, bool flip) {
  auto outputs = backend.Run(batch);
  if (!flip) return outputs;
  MirrorRows(batch, width);
  const auto mirrored = backend.Run(batch);
  for (size_t k = 0; k < outputs.size(); ++k) {
    for (size_t i = 0; i < outputs[k].size(); ++i) outputs[k][i] = 0.5f * (outputs[k][i] + mirrored[k][i]);
  }
  return outputs;
}

int ParsePositive(const std::string &key, const std::string &value) {
  char *end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (end == value.c_str() || *end != '\0' || v < 0 || v > 1 << 20) throw std::invalid_argument(key + ": not a valid number: " + value);
  return static_cast<int>(v);
}

// Packed layout: one uint8 image file in, one float32 file per model output.
int RunPacked(const aligned::ModelSpec &spec, const std::string &input_file, const std::string &output_dir, bool flip) {
  aligned::PackedImages images(input_file, spec.height, spec.width);
  fs::create_directories(output_dir);
  auto backend = aligned::CreateBackend();
  backend->Load(spec);
  const auto out_sizes = backend->OutputSizes();
  const size_t n_images = images.Count();
  std::cout << "backend " << backend->Name() << ", " << n_images << " images in " << input_file << ", batch " << spec.batch << ", "
            << out_sizes.size() << " outputs, flip " << (flip ? "on" : "off") << "\n";
  std::vector<aligned::FloatWriter> writers;
  for (size_t k = 0; k < out_sizes.size(); ++k) writers.emplace_back((fs::path(output_dir) / ("output_" + std::to_string(k) + ".f32")).string());
  const size_t image_size = static_cast<size_t>(3) * spec.height * spec.width;
  std::vector<float> batch(image_size * spec.batch, 0.0f);
  double infer_seconds = 0.0;
  for (size_t start = 0; start < n_images; start += spec.batch) {
    const size_t n = std::min<size_t>(spec.batch, n_images - start);
    std::fill(batch.begin(), batch.end(), 0.0f);  // a short last batch is padded with zeros
    images.ReadNormalised(start, n, batch.data());
    const auto t0 = std::chrono::steady_clock::now();
    const auto outputs = RunBatch(*backend, batch, spec.width, flip);
    infer_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (size_t k = 0; k < outputs.size(); ++k) writers[k].Write(outputs[k].data(), n * out_sizes[k]);
    if ((start / spec.batch) % 20 == 0) std::cout << "  " << start + n << "/" << n_images << "\n" << std::flush;
  }
  for (auto &w : writers) w.Commit();
  std::cout << "images/s " << n_images / std::max(infer_seconds, 1e-9) << " (" << n_images << " images, " << infer_seconds
            << " s in the backend)\n";
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  std::map<std::string, std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i];
    if (key == "-h" || key == "--help") {
      Usage();
      return 0;
    }
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::cerr << "error: unexpected argument '" << key << "'\n";
      Usage();
      return 2;
    }
    static const std::set<std::string> known = {"model", "input", "input_dir", "output_dir", "batch", "height",
                                                "width", "device_id", "threads", "flip", "precision", "hint"};
    const std::string name = key.substr(2);
    if (!known.count(name)) {  // a misspelt option (--thread) must not run with the default
      std::cerr << "error: unknown option '" << key << "'\n";
      Usage();
      return 2;
    }
    if (args.count(name)) {
      std::cerr << "error: option '" << key << "' given twice\n";
      Usage();
      return 2;
    }
    args[name] = argv[++i];
  }
  aligned::ModelSpec spec;
  std::string input_dir, input_file, output_dir;
  bool flip = false;
  try {
    for (const auto &required : {"model", "output_dir"}) {
      if (!args.count(required)) throw std::invalid_argument(std::string("missing --") + required);
    }
    if (args.count("input") == args.count("input_dir")) throw std::invalid_argument("give exactly one of --input and --input_dir");
    spec.path = args["model"];
    input_dir = args.count("input_dir") ? args["input_dir"] : "";
    input_file = args.count("input") ? args["input"] : "";
    output_dir = args["output_dir"];
    if (args.count("batch")) spec.batch = ParsePositive("--batch", args["batch"]);
    if (args.count("height")) spec.height = ParsePositive("--height", args["height"]);
    if (args.count("width")) spec.width = ParsePositive("--width", args["width"]);
    if (args.count("device_id")) spec.device_id = ParsePositive("--device_id", args["device_id"]);
    if (args.count("threads")) spec.threads = ParsePositive("--threads", args["threads"]);
    if (args.count("precision")) {
      spec.precision = args["precision"];
      if (spec.precision != "fp32" && spec.precision != "bf16" && spec.precision != "int8") {
        throw std::invalid_argument("--precision: expected fp32, bf16 or int8, got " + spec.precision);
      }
    }
    if (args.count("hint")) {
      spec.hint = args["hint"];
      if (spec.hint != "latency" && spec.hint != "throughput") throw std::invalid_argument("--hint: expected latency or throughput, got " + spec.hint);
    }
    if (args.count("flip")) {
      if (args["flip"] != "0" && args["flip"] != "1") throw std::invalid_argument("--flip: expected 0 or 1, got " + args["flip"]);
      flip = args["flip"] == "1";
    }
    if (spec.batch < 1 || spec.height < 1 || spec.width < 1) throw std::invalid_argument("--batch, --height and --width must be >= 1");
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    Usage();
    return 2;
  }

  try {
    if (!fs::is_regular_file(spec.path)) throw std::runtime_error("model file not found: " + spec.path);
    if (!input_file.empty()) return RunPacked(spec, input_file, output_dir, flip);
    const auto files = aligned::ListBinFiles(input_dir);
    if (files.empty()) throw std::runtime_error("no .bin inputs in " + input_dir);
    fs::create_directories(output_dir);
    auto backend = aligned::CreateBackend();
    backend->Load(spec);
    const auto out_sizes = backend->OutputSizes();
    const size_t image_size = static_cast<size_t>(3) * spec.height * spec.width;
    std::cout << "backend " << backend->Name() << ", " << files.size() << " inputs, batch " << spec.batch << ", "
              << out_sizes.size() << " outputs, flip " << (flip ? "on" : "off") << "\n";

    double infer_seconds = 0.0;
    std::vector<float> batch(image_size * spec.batch, 0.0f);
    for (size_t start = 0; start < files.size(); start += spec.batch) {
      const size_t n = std::min<size_t>(spec.batch, files.size() - start);
      std::fill(batch.begin(), batch.end(), 0.0f);  // a short last batch is padded with zeros
      for (size_t i = 0; i < n; ++i) {
        auto img = aligned::ReadFloats(files[start + i], image_size);
        std::copy(img.begin(), img.end(), batch.begin() + i * image_size);
      }
      const auto t0 = std::chrono::steady_clock::now();
      const auto outputs = RunBatch(*backend, batch, spec.width, flip);
      infer_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (size_t i = 0; i < n; ++i) {
        const std::string stem = fs::path(files[start + i]).stem().string();
        for (size_t k = 0; k < outputs.size(); ++k) {
          const std::string out = (fs::path(output_dir) / (stem + "_" + std::to_string(k) + ".bin")).string();
          aligned::WriteFloats(out, outputs[k].data() + i * out_sizes[k], out_sizes[k]);
        }
      }
      if ((start / spec.batch) % 20 == 0) std::cout << "  " << start + n << "/" << files.size() << "\n" << std::flush;
    }
    std::cout << "images/s " << files.size() / std::max(infer_seconds, 1e-9) << " (" << files.size() << " images, "
              << infer_seconds << " s in the backend)\n";
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
