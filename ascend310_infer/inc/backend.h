// Inference backends of aligned_infer: one model, fixed input [batch, 3, height, width] float32.
#pragma once
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace aligned {

struct ModelSpec {
  std::string path;   // exported model (ONNX for cpu, MindIR for ascend)
  int batch = 1;      // images per inference call
  int height = 256;
  int width = 128;
  int device_id = 0;  // Ascend device
  int threads = 0;    // CPU threads, 0 = backend default
  // fp32 | bf16 | int8: the floating-point precision asked of the backend (int8 = a quantised model,
  // its other operations in float32)
  std::string precision = "fp32";
  std::string hint = "latency";  // latency | throughput (OpenVINO's performance hint)
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Prepare the model for inputs of ModelSpec's shape; throws std::runtime_error on failure.
  virtual void Load(const ModelSpec &spec) = 0;
  // Number of floats per image of each output, in output order.
  virtual std::vector<size_t> OutputSizes() const = 0;
  // Run one batch (spec.batch images, NCHW float32); returns each output, all images concatenated.
  virtual std::vector<std::vector<float>> Run(const std::vector<float> &batch) = 0;
  virtual std::string Name() const = 0;
};

std::unique_ptr<Backend> CreateBackend();

}  // namespace aligned
