#pragma once
// RGB images and PNG output (libpng), with the few drawing primitives the preview and the plots need.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace segscale::infer {

struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

struct Image {
  int width = 0, height = 0;
  std::vector<Rgb> px;
  Image(int w, int h, Rgb fill = {}) : width(w), height(h), px(static_cast<std::size_t>(w) * h, fill) {}
  Rgb& at(int x, int y) { return px[static_cast<std::size_t>(y) * width + x]; }
  void set(int x, int y, Rgb c) {
    if (x >= 0 && y >= 0 && x < width && y < height) at(x, y) = c;
  }
  void fill_rect(int x, int y, int w, int h, Rgb c);
  void line(int x0, int y0, int x1, int y1, Rgb c);
  // Text in a built-in 5x7 pixel font (digits, letters, a few symbols), scaled by `scale`.
  void text(int x, int y, const std::string& s, Rgb c, int scale = 2);
  static int text_width(const std::string& s, int scale = 2) { return static_cast<int>(s.size()) * 6 * scale; }
};

// Writes an 8-bit RGB PNG atomically. Throws Error naming the file.
void write_png(const std::filesystem::path& path, const Image& img);

}  // namespace segscale::infer
