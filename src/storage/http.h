#pragma once
// One HTTP request over libcurl, for the S3 storage and the AWS credential endpoints. No retries here (the
// caller decides what is worth retrying); connect and stall timeouts are always on.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/file.h"

namespace segscale::storage {

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, DELETE
  std::string url;
  std::vector<std::string> headers;      // "Name: value"
  std::span<const std::uint8_t> body;    // sent with PUT and POST
  // SigV4: when `sigv4` is set ("aws:amz:REGION:s3"), libcurl signs the request with these keys
  // (CURLOPT_AWS_SIGV4); a session token goes in `headers` as x-amz-security-token.
  std::string sigv4, access_key, secret_key;
  long connect_timeout_ms = 10000;
  long stall_seconds = 30;  // abort when fewer than 1 byte/s arrive for this long
  long total_timeout_ms = 0;  // 0: none (large objects take as long as they take)
};

struct HttpResponse {
  long status = 0;
  io::Bytes body;
  std::map<std::string, std::string> headers;  // names in lower case
};

// Sends the request and returns the response, whatever its status. Throws Error("<where>: <curl's reason>")
// when no response came (refused, timed out, reset). `where` names the request in messages; the URL itself
// is never printed by this function. Thread-safe: each thread keeps its own connection cache.
HttpResponse http_request(const HttpRequest& req, const std::string& where);

// Percent-encodes for a URL path (keeps '/' when keep_slash) or a query value, as SigV4 expects (RFC 3986).
std::string url_encode(const std::string& s, bool keep_slash);

}  // namespace segscale::storage
