#pragma once
// The little XML S3 answers with: the text of named elements, entities decoded. Enough for ListObjectsV2,
// multipart responses and <Error> bodies; not a general XML parser.
#include <string>
#include <string_view>
#include <vector>

namespace segscale::storage {

// Text of every <tag>...</tag> in document order (elements with attributes or CDATA text included).
std::vector<std::string> xml_texts(std::string_view xml, std::string_view tag);
// Text of the first <tag>, or "" when there is none.
std::string xml_text(std::string_view xml, std::string_view tag);

}  // namespace segscale::storage
