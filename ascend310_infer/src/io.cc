#include "io.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace aligned {

std::vector<std::string> ListBinFiles(const std::string &dir) {
  if (!fs::is_directory(dir)) throw std::runtime_error("input folder not found: " + dir);
  std::vector<std::string> files;
  for (const auto &e : fs::directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().extension() == ".bin") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<float> ReadFloats(const std::string &path, size_t count) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  const auto bytes = static_cast<size_t>(in.tellg());
  if (bytes != count * sizeof(float)) {
    throw std::runtime_error(path + ": " + std::to_string(bytes) + " bytes, expected " + std::to_string(count * sizeof(float)) +
                             " (float32 [3, height, width]); was it made for another input size?");
  }
  std::vector<float> data(count);
  in.seekg(0);
  in.read(reinterpret_cast<char *>(data.data()), static_cast<std::streamsize>(bytes));
  if (!in) throw std::runtime_error("short read from " + path);
  return data;
}

void WriteFloats(const std::string &path, const float *data, size_t count) {
  const std::string tmp = path + ".part";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(count * sizeof(float)));
    if (!out) throw std::runtime_error("write failed: " + tmp);
  }
  fs::rename(tmp, path);
}

PackedImages::PackedImages(const std::string &path, int height, int width)
    : path_(path), in_(path, std::ios::binary | std::ios::ate), height_(height), width_(width) {
  if (!in_) throw std::runtime_error("cannot open " + path);
  image_bytes_ = static_cast<size_t>(height) * width * 3;
  const auto bytes = static_cast<size_t>(in_.tellg());
  if (bytes == 0 || bytes % image_bytes_) {
    throw std::runtime_error(path + ": " + std::to_string(bytes) + " bytes, not a multiple of one uint8 [" + std::to_string(height) + ", " +
                             std::to_string(width) + ", 3] image (" + std::to_string(image_bytes_) + " bytes); was it made for another input size?");
  }
  count_ = bytes / image_bytes_;
}

void PackedImages::ReadNormalised(size_t start, size_t n, float *out) {
  buffer_.resize(n * image_bytes_);
  in_.seekg(static_cast<std::streamoff>(start * image_bytes_));
  in_.read(reinterpret_cast<char *>(buffer_.data()), static_cast<std::streamsize>(buffer_.size()));
  if (!in_) throw std::runtime_error("short read from " + path_);
  const size_t plane = static_cast<size_t>(height_) * width_;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t *src = buffer_.data() + i * image_bytes_;
    float *dst = out + i * 3 * plane;
    for (size_t p = 0; p < plane; ++p) {
      for (int c = 0; c < 3; ++c) dst[c * plane + p] = (static_cast<float>(src[3 * p + c]) - kMean[c]) / kStd[c];
    }
  }
}

FloatWriter::FloatWriter(std::string path) : path_(std::move(path)), out_(path_ + ".part", std::ios::binary | std::ios::trunc) {
  if (!out_) throw std::runtime_error("cannot write " + path_ + ".part");
}

void FloatWriter::Write(const float *data, size_t count) {
  out_.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(count * sizeof(float)));
  if (!out_) throw std::runtime_error("write failed: " + path_ + ".part");
}

void FloatWriter::Commit() {
  out_.close();
  if (!out_) throw std::runtime_error("write failed: " + path_ + ".part");
  fs::rename(path_ + ".part", path_);
}

}  // namespace aligned
