#pragma once
#include <string>
#include <vector>

namespace aligned {

// Sorted paths of the *.bin files directly inside dir; throws if dir is missing.
std::vector<std::string> ListBinFiles(const std::string &dir);
// Read exactly `count` float32 values; throws with the file name if the size differs.
std::vector<float> ReadFloats(const std::string &path, size_t count);
// Write floats to path via a temporary file renamed into place.
void WriteFloats(const std::string &path, const float *data, size_t count);

}  // namespace aligned
