#include "storage/s3_xml.h"

#include <cstdlib>

namespace segscale::storage {
namespace {

std::string decode(std::string_view s) {
  if (s.starts_with("<![CDATA[") && s.ends_with("]]>")) return std::string(s.substr(9, s.size() - 12));
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '&') {
      out += s[i];
      continue;
    }
    auto semi = s.find(';', i);
    if (semi == std::string_view::npos) {
      out += s[i];
      continue;
    }
    std::string_view ent = s.substr(i + 1, semi - i - 1);
    if (ent == "amp") out += '&';
    else if (ent == "lt") out += '<';
    else if (ent == "gt") out += '>';
    else if (ent == "quot") out += '"';
    else if (ent == "apos") out += '\'';
    else if (ent.starts_with("#x")) out += static_cast<char>(std::strtol(std::string(ent.substr(2)).c_str(), nullptr, 16));
    else if (ent.starts_with("#")) out += static_cast<char>(std::strtol(std::string(ent.substr(1)).c_str(), nullptr, 10));
    else out.append(s.substr(i, semi - i + 1));
    i = semi;
  }
  return out;
}

}  // namespace

std::vector<std::string> xml_texts(std::string_view xml, std::string_view tag) {
  std::vector<std::string> out;
  const std::string open = "<" + std::string(tag), close = "</" + std::string(tag) + ">";
  std::size_t pos = 0;
  while ((pos = xml.find(open, pos)) != std::string_view::npos) {
    std::size_t after = pos + open.size();
    if (after >= xml.size() || (xml[after] != '>' && xml[after] != ' ')) {
      pos = after;
      continue;
    }
    std::size_t gt = xml.find('>', after);
    if (gt == std::string_view::npos) break;
    if (xml[gt - 1] == '/') {  // <Tag/>
      out.emplace_back();
      pos = gt + 1;
      continue;
    }
    std::size_t end = xml.find(close, gt + 1);
    if (end == std::string_view::npos) break;
    out.push_back(decode(xml.substr(gt + 1, end - gt - 1)));
    pos = end + close.size();
  }
  return out;
}

std::string xml_text(std::string_view xml, std::string_view tag) {
  auto v = xml_texts(xml, tag);
  return v.empty() ? std::string() : v.front();
}

}  // namespace segscale::storage
