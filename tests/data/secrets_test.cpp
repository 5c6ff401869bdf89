// Secret rules: a hand-written positive per rule (the rule must fire, with the line, and a fingerprint that is
// the SHA-256 of the secret) and hand-written look-alikes that must not fire (placeholders, examples,
// environment lookups, variables merely named `token`). The values are random strings typed into this file,
// not produced by the detector.
#include "data/secrets.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <unistd.h>

#include "data/secret_cases.h"
#include "data/util.h"

namespace tritter::data {
namespace {

using test_cases::Case;
std::vector<Case> secret_positive_cases() { return test_cases::secret_positives(); }

class SecretsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { scanner_ = new SecretScanner(); }
  static void TearDownTestSuite() { delete scanner_; }
  std::vector<SecretFinding> scan(const std::string& text) {
    SecretScanner::Scratch scratch(*scanner_);
    return scanner_->scan(text, scratch);
  }
  static SecretScanner* scanner_;
};
SecretScanner* SecretsTest::scanner_ = nullptr;

TEST_F(SecretsTest, EveryRuleHasAPositive) {
  std::set<std::string> covered;
  for (const auto& c : secret_positive_cases()) covered.insert(c.rule);
  for (const auto& r : secret_rules()) EXPECT_TRUE(covered.count(r.id)) << "no positive test for rule " << r.id;
}

TEST_F(SecretsTest, PositivesFireWithFingerprintNotSecret) {
  for (const auto& c : secret_positive_cases()) {
    const auto found = scan(c.text);
    bool hit = false;
    for (const auto& f : found) {
      if (f.rule != c.rule) continue;
      hit = true;
      EXPECT_EQ(f.fingerprint, "sha256:" + sha256_hex(c.secret)) << c.rule;
      EXPECT_EQ(f.fingerprint.find(c.secret), std::string::npos);
      EXPECT_GE(f.line, 1);
    }
    EXPECT_TRUE(hit) << "rule " << c.rule << " did not fire on: " << c.text;
  }
}

TEST_F(SecretsTest, LineAndColumnOfTheSecret) {
  const auto found = scan("import os\n\nTOKEN = 'ghp_AIxNKu8iS2G8NPRVdD53X83RZJzzzzgEOzdm'\n");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].rule, "github-pat");
  EXPECT_EQ(found[0].line, 3);
  EXPECT_EQ(found[0].col, 10);
}

TEST_F(SecretsTest, LookAlikesDoNotFire) {
  const std::vector<std::string> negatives = {
      // placeholders and templates
      "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
      "aws_secret_access_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"\n",
      "api_key = \"<your-api-key-here>\"\n",
      "api_key = \"${OPENAI_API_KEY}\"\n",
      "token: \"{{ secrets.GITHUB_TOKEN }}\"\n",
      "GITHUB_TOKEN = 'ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n",
      "password = \"changeme\"\n",
      "password = \"password123\"\n",
      "DATABASE_URL = 'postgresql://user:password@localhost:5432/db'\n",
      "DATABASE_URL = 'postgres://${DB_USER}:${DB_PASS}@db/app'\n",
      "url = 'https://user:pass@example.com'\n",
      "stripe.api_key = 'sk_test_xxxxxxxxxxxxxxxxxxxxxxxx'\n",
      // environment lookups and input
      "api_key = os.environ.get(\"API_KEY\")\ntoken = os.getenv(\"GITHUB_TOKEN\")\n",
      "password = input(\"Enter password: \")\n",
      "let token = std::env::var(\"TOKEN\").unwrap();\n",
      // variables merely named token / secret / key
      "token = tokens[i]\nfor token in tokenizer(text):\n    pass\n",
      "self.secret = secret\nsecret_name = \"prod-db-credentials\"\n",
      "tokenizer_name = \"bert-base-uncased-v2\"\n",
      "token_type = \"Bearer\"\nsecret_key_id = \"k1\"\n",
      "SECRET_KEY_ENV = \"DJANGO_SECRET_KEY\"\npassword_field = \"user_password_1\"\n",
      "api_key = \"test\"\n",
      // examples in comments and docs
      "# Example: export OPENAI_API_KEY=\"sk-...your key...\"\n",
      "// aws_access_key_id = AKIAIOSFODNN7EXAMPLE  (the AWS documentation's example)\n",
      "# token = \"<paste your token here>\"\n",
      "    >>> client = Client(api_key=\"YOUR_API_KEY\")\n",
      // published example values (RFC 6749 docstring)
      "{\n  \"access_token\":\"2YotnFZFEjr1zCsicMWpAA\",\n  \"refresh_token\":\"tGzv3JOkF0XG5Qx2TlKWIA\"\n}\n",
      // words that merely look like headers, with no key body
      "if line.startswith('-----BEGIN RSA PRIVATE KEY-----'):\n    kind = 'rsa'\n",
      "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3Tz2mr7SZiAMfQyuvBjM9Oi8xQ1Wq5pRz0kL7\n",
      // hashes and ids that are not secrets
      "sha = '110c57513064d6d59291f0cde2e5738713a818d8'\nuuid = '123e4567-e89b-12d3-a456-426614174000'\n",
      "ENGINE = 'django.db.backends.postgresql_psycopg2'\n",
      "token = \"abcdefghijklmnopqrstuvwxyz\"\n",
      "jwt = 'eyJub3RhIjoiand0In0.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlaGVyZQ'\n",
  };
  for (const auto& text : negatives) {
    const auto found = scan(text);
    EXPECT_TRUE(found.empty()) << "fired " << (found.empty() ? "" : found[0].rule) << " on: " << text;
  }
}

TEST_F(SecretsTest, PlaceholderFilter) {
  EXPECT_TRUE(is_placeholder_secret("${TOKEN}"));
  EXPECT_TRUE(is_placeholder_secret("{{ api_key }}"));
  EXPECT_TRUE(is_placeholder_secret("<your-key>"));
  EXPECT_TRUE(is_placeholder_secret("AKIAIOSFODNN7EXAMPLE"));
  EXPECT_TRUE(is_placeholder_secret("xxxxxxxxxxxx"));
  EXPECT_TRUE(is_placeholder_secret("aaaaaaaaaaaa"));
  EXPECT_TRUE(is_placeholder_secret("abcdefghijkl"));
  EXPECT_FALSE(is_placeholder_secret("jcnqcMUP6n0a0uARxlNtencYFJEeAgYz"));
}

TEST_F(SecretsTest, EmptyAndBinaryInputs) {
  EXPECT_TRUE(scan("").empty());
  std::string noise(4096, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = char((i * 2654435761u) >> 13);
  (void)scan(noise);  // must not crash
}

// The compiled database cache: a cold directory gets one file and a compile; the next scanner loads it and finds
// exactly what a compiled one finds; a corrupted or truncated file is rejected (checksum) and recompiled.
TEST_F(SecretsTest, RuleCacheLoadsTheSameDatabaseAndRejectsCorruptFiles) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("tritter-hsdb-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  std::string corpus;
  for (const auto& c : secret_positive_cases()) corpus += c.text + "\n";
  SecretScanner::Scratch base_scratch(*scanner_);
  const auto expected = scanner_->scan(corpus, base_scratch);
  ASSERT_FALSE(expected.empty());
  auto fingerprints = [](const std::vector<SecretFinding>& v) {
    std::vector<std::string> out;
    for (const auto& f : v)
      out.push_back(f.rule + ":" + std::to_string(f.line) + ":" + std::to_string(f.col) + ":" + f.fingerprint);
    return out;
  };
  {
    const SecretScanner cold(dir);
    EXPECT_FALSE(cold.loaded_from_cache());
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].extension(), ".hsdb");
  {
    const SecretScanner warm(dir);
    EXPECT_TRUE(warm.loaded_from_cache());
    SecretScanner::Scratch scratch(warm);
    EXPECT_EQ(fingerprints(warm.scan(corpus, scratch)), fingerprints(expected));
  }
  const auto size = fs::file_size(files[0]);
  {  // one flipped byte in the blob: the checksum rejects it, the scanner compiles and rewrites the file
    std::string bytes;
    {
      std::ifstream in(files[0], std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    ASSERT_EQ(bytes.size(), size);
    bytes[size - 7] = char(bytes[size - 7] ^ 0x5a);
    std::ofstream(files[0], std::ios::binary | std::ios::trunc).write(bytes.data(), std::streamsize(bytes.size()));
  }
  {
    const SecretScanner recompiled(dir);
    EXPECT_FALSE(recompiled.loaded_from_cache());
    SecretScanner::Scratch scratch(recompiled);
    EXPECT_EQ(fingerprints(recompiled.scan(corpus, scratch)), fingerprints(expected));
  }
  EXPECT_TRUE(SecretScanner(dir).loaded_from_cache());  // rewritten valid
  fs::resize_file(files[0], size / 2);
  EXPECT_FALSE(SecretScanner(dir).loaded_from_cache());
  fs::remove_all(dir);
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Entropy, Formula) {
  EXPECT_DOUBLE_EQ(shannon_entropy(""), 0.0);
  EXPECT_DOUBLE_EQ(shannon_entropy("aaaa"), 0.0);
  EXPECT_DOUBLE_EQ(shannon_entropy("abab"), 1.0);
  EXPECT_DOUBLE_EQ(shannon_entropy("abcd"), 2.0);
}

}  // namespace
}  // namespace tritter::data
