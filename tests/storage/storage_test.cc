// The storage seam without a network: the local file system, s3:// URL parsing, S3's XML, and the AWS
// credential chain's environment and profile-file sources. The S3 wire protocol is tested against a real
// S3 server in tests/cli/test_s3.py.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "../support/temp_dir.h"
#include "storage/local_storage.h"
#if SEGSCALE_WITH_S3
#include "storage/aws_credentials.h"
#include "storage/s3_storage.h"
#endif
#include "storage/s3_xml.h"
#include "storage/storage.h"
#include "util/error.h"

namespace segscale::storage {
namespace {

namespace fs = std::filesystem;
using segscale::testing::expect_error_containing;
using segscale::testing::TempDir;

std::string text(const io::Bytes& b) { return std::string(b.begin(), b.end()); }

TEST(LocalStorage, RoundTripRangeListAndRemove) {
  TempDir t;
  auto st = open_storage((t.path() / "root").string());
  ASSERT_TRUE(st->is_local());
  st->make_root();
  st->write_atomic("a.txt", std::string("hello world"));
  fs::create_directories(t.path() / "root" / "sub");
  st->write_atomic("sub/b.txt", std::string("xyz"));
  EXPECT_EQ(text(st->read("a.txt")), "hello world");
  EXPECT_EQ(text(st->read_range("a.txt", 6, 5)), "world");
  EXPECT_EQ(st->size("a.txt"), 11u);
  EXPECT_FALSE(st->exists("nope"));
  EXPECT_EQ(st->list(""), (std::vector<std::string>{"a.txt", "sub/b.txt"}));
  EXPECT_EQ(st->list("sub/"), (std::vector<std::string>{"sub/b.txt"}));
  expect_error_containing([&] { st->read_range("a.txt", 8, 10); }, {"short read (3 of 10 bytes at offset 8)"});
  expect_error_containing([&] { st->read("nope"); }, {"nope: cannot open"});
  st->remove("a.txt");
  st->remove("a.txt");  // absent is fine
  EXPECT_FALSE(st->exists("a.txt"));
}

TEST(LocalStorage, TempThenCommitPublishesAtOnce) {
  TempDir t;
  LocalStorage st(t.path());
  const fs::path tmp = st.temp_path("big.bin");
  EXPECT_EQ(tmp.parent_path(), t.path());  // same folder: rename is atomic
  { std::ofstream(tmp) << "payload"; }
  EXPECT_FALSE(st.exists("big.bin"));
  st.commit_temp(tmp, "big.bin");
  EXPECT_EQ(text(st.read("big.bin")), "payload");
  EXPECT_FALSE(fs::exists(tmp));
  // A failed commit removes the temporary too.
  const fs::path tmp2 = st.temp_path("x");
  { std::ofstream(tmp2) << "x"; }
  expect_error_containing([&] { st.commit_temp(tmp2, "missing-dir/x"); }, {"cannot rename into place"});
  EXPECT_FALSE(fs::exists(tmp2));
}

TEST(Storage, UrlsAndParents) {
  EXPECT_TRUE(is_url("s3://bucket/x"));
  EXPECT_FALSE(is_url("/data/s3:/x"));
  expect_error_containing([] { open_storage("gs://bucket/x"); }, {"unsupported URL scheme"});
  EXPECT_EQ(split_parent("s3://b/store/model.pt"), (std::pair<std::string, std::string>{"s3://b/store", "model.pt"}));
  EXPECT_EQ(split_parent("run/model.pt"), (std::pair<std::string, std::string>{"run", "model.pt"}));
  EXPECT_EQ(split_parent("model.pt"), (std::pair<std::string, std::string>{".", "model.pt"}));
#if SEGSCALE_WITH_S3
  auto loc = parse_s3_url("s3://my-bucket/some/prefix/");
  EXPECT_EQ(loc.bucket, "my-bucket");
  EXPECT_EQ(loc.prefix, "some/prefix");
  EXPECT_EQ(parse_s3_url("s3://abc").prefix, "");
  expect_error_containing([] { parse_s3_url("s3://"); }, {"expected s3://BUCKET[/PREFIX]"});
  expect_error_containing([] { parse_s3_url("s3://Upper_Case/x"); }, {"expected s3://BUCKET[/PREFIX]"});
  EXPECT_EQ(url_encode("a b/c+d~", true), "a%20b/c%2Bd~");
  EXPECT_EQ(url_encode("a/b=", false), "a%2Fb%3D");
#else
  expect_error_containing([] { open_storage("s3://bucket/x"); }, {"s3://bucket/x: this segscale was built without S3 support"});
#endif
}

TEST(S3Xml, TextsAndEntities) {
  const std::string xml =
      "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key></Contents>"
      "<Contents><Key>c&#34;d&#x27;</Key></Contents><KeyCount>2</KeyCount><NextContinuationToken>t/=</NextContinuationToken></ListBucketResult>";
  EXPECT_EQ(xml_texts(xml, "Key"), (std::vector<std::string>{"a&b", "c\"d'"}));  // not KeyCount
  EXPECT_EQ(xml_text(xml, "IsTruncated"), "true");
  EXPECT_EQ(xml_text(xml, "Missing"), "");
  EXPECT_EQ(xml_text("<Error><Message><![CDATA[x < y]]></Message></Error>", "Message"), "x < y");
}

#if SEGSCALE_WITH_S3
struct FakeEnv {
  std::map<std::string, std::string> vars;
  GetEnv get() const {
    return [v = vars](const std::string& k) -> std::optional<std::string> {
      auto it = v.find(k);
      if (it == v.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(AwsCredentials, ContainerEndpointRelativeUriWinsOverFullUri) {
  FakeEnv e;
  EXPECT_EQ(container_credentials_url(e.get()), std::nullopt);
  e.vars["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:8080/creds";
  EXPECT_EQ(container_credentials_url(e.get()), "http://127.0.0.1:8080/creds");
  e.vars["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] = "/v2/credentials/abc";  // as SageMaker and ECS set it
  EXPECT_EQ(container_credentials_url(e.get()), "http://169.254.170.2/v2/credentials/abc");
}

TEST(AwsCredentials, EnvironmentComesFirst) {
  TempDir t;
  { std::ofstream(t.path() / "credentials") << "[default]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = PROFILESECRET\n"; }
  FakeEnv e{{{"AWS_ACCESS_KEY_ID", "ENVKEY"}, {"AWS_SECRET_ACCESS_KEY", "ENVSECRET"}, {"AWS_SESSION_TOKEN", "TOK"},
             {"AWS_SHARED_CREDENTIALS_FILE", (t.path() / "credentials").string()}}};
  Credentials c = resolve_credentials(e.get());
  EXPECT_EQ(c.access_key, "ENVKEY");
  EXPECT_EQ(c.secret_key, "ENVSECRET");
  EXPECT_EQ(c.session_token, "TOK");
  EXPECT_EQ(c.source, "environment");
}

TEST(AwsCredentials, ProfileFromCredentialsAndConfigFiles) {
  TempDir t;
  { std::ofstream(t.path() / "credentials") << "# comment\n[default]\naws_access_key_id=DEF\naws_secret_access_key=DEFS\n\n[dev]\naws_access_key_id = DEVKEY\naws_secret_access_key = DEVSECRET\naws_session_token = DEVTOKEN\n"; }
  { std::ofstream(t.path() / "config") << "[default]\nregion = eu-west-1\n[profile dev]\nregion = ap-south-1\ns3 =\n  addressing_style = path\n[profile cfgonly]\naws_access_key_id = CFGKEY\naws_secret_access_key = CFGSECRET\n[profile role]\nrole_arn = arn:aws:iam::1:role/x\n"; }
  FakeEnv e{{{"AWS_SHARED_CREDENTIALS_FILE", (t.path() / "credentials").string()}, {"AWS_CONFIG_FILE", (t.path() / "config").string()},
             {"AWS_EC2_METADATA_DISABLED", "true"}}};
  Credentials d = resolve_credentials(e.get());
  EXPECT_EQ(d.access_key, "DEF");
  EXPECT_EQ(d.source, "profile default");
  EXPECT_EQ(resolve_region(e.get()), "eu-west-1");
  e.vars["AWS_PROFILE"] = "dev";
  Credentials dev = resolve_credentials(e.get());
  EXPECT_EQ(dev.access_key, "DEVKEY");
  EXPECT_EQ(dev.session_token, "DEVTOKEN");
  EXPECT_EQ(resolve_region(e.get()), "ap-south-1");
  e.vars["AWS_REGION"] = "us-west-2";
  EXPECT_EQ(resolve_region(e.get()), "us-west-2");
  e.vars["AWS_PROFILE"] = "cfgonly";
  EXPECT_EQ(resolve_credentials(e.get()).access_key, "CFGKEY");
  e.vars["AWS_PROFILE"] = "role";
  expect_error_containing([&] { resolve_credentials(e.get()); }, {"profile role uses role_arn, which segscale does not support"});
  e.vars["AWS_PROFILE"] = "nosuch";
  expect_error_containing([&] { resolve_credentials(e.get()); }, {"AWS_PROFILE=nosuch but no such profile"});
}

TEST(AwsCredentials, NothingFoundNamesPlacesNotValues) {
  TempDir t;
  FakeEnv e{{{"HOME", t.path().string()}, {"AWS_EC2_METADATA_DISABLED", "true"}, {"AWS_SECRET_ACCESS_KEY", "ONLY-SECRET-NO-ID"}}};
  try {
    resolve_credentials(e.get());
    FAIL() << "expected an error";
  } catch (const Error& err) {
    const std::string m = err.what();
    EXPECT_NE(m.find("no AWS credentials found"), std::string::npos) << m;
    EXPECT_NE(m.find("/.aws/credentials"), std::string::npos) << m;
    EXPECT_EQ(m.find("ONLY-SECRET-NO-ID"), std::string::npos) << m;
  }
  EXPECT_EQ(resolve_region(e.get()), "us-east-1");
}

TEST(AwsCredentials, MalformedFilesAndTimes) {
  TempDir t;
  { std::ofstream(t.path() / "credentials") << "[default\n"; }
  FakeEnv e{{{"AWS_SHARED_CREDENTIALS_FILE", (t.path() / "credentials").string()}}};
  expect_error_containing([&] { resolve_credentials(e.get()); }, {"credentials:1: malformed section header"});
  auto tp = parse_iso8601_utc("2026-11-26T15:00:00Z");
  EXPECT_EQ(std::chrono::system_clock::to_time_t(tp), 1795705200);
  expect_error_containing([] { parse_iso8601_utc("tomorrow"); }, {"malformed expiration time"});
}

// As the AWS SDKs' "service-specific endpoints": environment first (service-specific, then global), then the
// config file (the profile's services section, then its endpoint_url); the ignore switch in either place.
TEST(AwsCredentials, S3EndpointFromEnvironmentOrProfileInTheSdksOrder) {
  TempDir t;
  {
    std::ofstream(t.path() / "config") << "[default]\nregion = eu-west-1\nendpoint_url = http://global.example:9000/\n"
                                          "[profile split]\nendpoint_url = http://global.example:9000\nservices = local\n"
                                          "s3 =\n  endpoint_url = http://nested-not-the-profiles.example\n"
                                          "[services local]\ndynamodb =\n  endpoint_url = http://dynamo.example:8000\n"
                                          "s3 =\n  endpoint_url = http://minio.example:9000\n  addressing_style = path\n"
                                          "[profile sub]\ns3 =\n  endpoint_url = http://sub-setting.example\n"
                                          "[profile ignoring]\nendpoint_url = http://global.example:9000\nignore_configured_endpoint_urls = true\n";
  }
  FakeEnv e{{{"AWS_CONFIG_FILE", (t.path() / "config").string()}, {"AWS_SHARED_CREDENTIALS_FILE", (t.path() / "none").string()}}};
  auto url = [&] {
    auto ep = resolve_s3_endpoint(e.get());
    return ep ? ep->url : std::string("(AWS)");
  };
  EXPECT_EQ(url(), "http://global.example:9000");  // the profile's endpoint_url, trailing '/' dropped
  EXPECT_NE(resolve_s3_endpoint(e.get())->source.find("profile default's endpoint_url in " + (t.path() / "config").string()), std::string::npos);
  e.vars["AWS_PROFILE"] = "split";
  EXPECT_EQ(url(), "http://minio.example:9000");  // the services section beats the profile's global one
  EXPECT_NE(resolve_s3_endpoint(e.get())->source.find("[services local] s3.endpoint_url"), std::string::npos);
  e.vars["AWS_PROFILE"] = "sub";
  EXPECT_EQ(url(), "(AWS)");  // a profile's own nested s3 sub-setting is not an endpoint the SDKs read
  e.vars["AWS_PROFILE"] = "ignoring";
  EXPECT_EQ(url(), "(AWS)");
  e.vars["AWS_ENDPOINT_URL"] = "http://env-global.example";
  EXPECT_EQ(url(), "(AWS)");  // the profile's ignore switch covers the environment's too
  e.vars["AWS_PROFILE"] = "split";
  EXPECT_EQ(url(), "http://env-global.example");  // the environment beats the config file
  e.vars["AWS_ENDPOINT_URL_S3"] = "http://env-s3.example";
  EXPECT_EQ(url(), "http://env-s3.example");
  EXPECT_EQ(resolve_s3_endpoint(e.get())->source, "AWS_ENDPOINT_URL_S3");
  e.vars["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  EXPECT_EQ(url(), "(AWS)");
  e.vars.erase("AWS_PROFILE");
  EXPECT_EQ(resolve_region(e.get()), "eu-west-1");  // nested lines do not disturb the rest of the file
}
#endif  // SEGSCALE_WITH_S3

}  // namespace
}  // namespace segscale::storage
