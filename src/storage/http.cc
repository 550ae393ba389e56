#include "storage/http.h"

#include <curl/curl.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>

#include "util/error.h"

namespace segscale::storage {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

CURL* thread_handle() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  thread_local std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
  if (!handle) throw Error("libcurl: cannot create a handle");
  curl_easy_reset(handle.get());
  return handle.get();
}

struct Upload {
  std::span<const std::uint8_t> data;
  std::size_t pos = 0;
};

std::size_t on_read(char* buf, std::size_t size, std::size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  std::size_t k = std::min(size * n, u->data.size() - u->pos);
  std::memcpy(buf, u->data.data() + u->pos, k);
  u->pos += k;
  return k;
}

std::size_t on_write(char* data, std::size_t size, std::size_t n, void* user) {
  auto* out = static_cast<io::Bytes*>(user);
  const std::size_t old = out->size();
  out->resize(old + size * n);
  std::memcpy(out->data() + old, data, size * n);
  return size * n;
}

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* h = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(data, size * n);
  if (line.starts_with("HTTP/")) h->clear();  // a new response (after 100 Continue or a redirect)
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon), value = line.substr(colon + 1);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto b = value.find_first_not_of(" \t"), e = value.find_last_not_of(" \t\r\n");
    (*h)[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

}  // namespace

HttpResponse http_request(const HttpRequest& req, const std::string& where) {
  CURL* c = thread_handle();
  HttpResponse resp;
  Upload up{req.body, 0};
  char errbuf[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, req.connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, req.stall_seconds);
  if (req.total_timeout_ms > 0) curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req.total_timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp.headers);
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &up);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    // Never a null pointer: that would make libcurl read the body from its read callback (stdin).
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.empty() ? "" : reinterpret_cast<const char*>(req.body.data()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_slist* headers = nullptr;
  for (const auto& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  // No "Expect:" override here: libcurl 7.88 would sign the empty header and the server's signature would differ.
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!req.sigv4.empty()) {
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, req.sigv4.c_str());
    curl_easy_setopt(c, CURLOPT_USERNAME, req.access_key.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, req.secret_key.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  // Leave no secret behind in the reused handle.
  curl_easy_setopt(c, CURLOPT_USERNAME, "");
  curl_easy_setopt(c, CURLOPT_PASSWORD, "");
  if (rc != CURLE_OK) throw error_at(where, std::string(curl_easy_strerror(rc)));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

std::string url_encode(const std::string& s, bool keep_slash) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/')) {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

}  // namespace segscale::storage
