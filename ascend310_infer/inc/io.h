#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace aligned {

// Sorted paths of the *.bin files directly inside dir; throws if dir is missing.
std::vector<std::string> ListBinFiles(const std::string &dir);
// Read exactly `count` float32 values; throws with the file name if the size differs.
std::vector<float> ReadFloats(const std::string &path, size_t count);
// Write floats to path via a temporary file renamed into place.
void WriteFloats(const std::string &path, const float *data, size_t count);

// ImageNet normalisation of 0-255 RGB pixels, as MindSpore's eval pipeline (data/loader.py).
constexpr float kMean[3] = {123.675f, 116.28f, 103.53f};
constexpr float kStd[3] = {58.395f, 57.12f, 57.375f};

// A packed uint8 image file [N, H, W, 3]; throws with the file name if its size is not a multiple
// of one image.
class PackedImages {
 public:
  PackedImages(const std::string &path, int height, int width);
  size_t Count() const { return count_; }
  // Images [start, start + n) as normalised float32 CHW, one after another, into out.
  void ReadNormalised(size_t start, size_t n, float *out);

 private:
  std::string path_;
  std::ifstream in_;
  size_t image_bytes_, count_;
  int height_, width_;
  std::vector<uint8_t> buffer_;
};

// Appends float32 values to PATH.part; Commit() renames it to PATH (nothing at PATH before that).
class FloatWriter {
 public:
  explicit FloatWriter(std::string path);
  FloatWriter(FloatWriter &&) = default;
  void Write(const float *data, size_t count);
  void Commit();

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace aligned
