// The long tail of vendor rules, unquoted assignment values and the filter fixes: a generated positive per
// vendor rule (values built at run time from shape templates), unquoted forms in .env / YAML / ini / TOML /
// command lines / .npmrc, and look-alikes each filter must still drop.
#include <gtest/gtest.h>

#include <set>

#include "data/secret_cases.h"
#include "data/secret_gen.h"
#include "data/secret_shapes.h"
#include "data/secrets.h"

namespace tritter::data {
namespace {

using namespace test_gen;

class SecretRulesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { scanner_ = new SecretScanner(); }
  static void TearDownTestSuite() { delete scanner_; }
  static std::vector<SecretFinding> scan(const std::string& text) {
    SecretScanner::Scratch scratch(*scanner_);
    return scanner_->scan(text, scratch);
  }
  static bool fires(const std::string& text, const std::string& rule) {
    for (const auto& f : scan(text))
      if (f.rule == rule) return true;
    return false;
  }
  static SecretScanner* scanner_;
};
SecretScanner* SecretRulesTest::scanner_ = nullptr;

// Unquoted and filter-fix positives: {rule, text}; the values are generated.
std::vector<std::pair<std::string, std::string>> unquoted_positives() {
  const std::string k32 = fake(kAlnum, 32, 101), k40 = fake(kAlnum, 40, 102), pw = fake(kAlnum, 14, 103);
  return {
      {"generic-api-key", "API_KEY=" + k32 + "\n"},                                // .env
      {"generic-api-key", "export SERVICE_TOKEN=" + k32 + "\n"},                   // shell
      {"generic-api-key", "service:\n  api_key: " + k32 + "\n"},                   // YAML
      {"generic-api-key", "[auth]\nsecret = " + k40 + "\n"},                       // ini / TOML
      {"generic-api-key", "//npm.example.org/:_authToken=" + k40 + "\n"},          // .npmrc
      {"generic-api-key", "mytool deploy --api-key " + k32 + " --region eu\n"},    // command line
      {"generic-api-key", "mytool --token=" + k40 + "\n"},                          // command line, =
      {"generic-password", "DB_PASSWORD=" + pw + "\n"},                              // .env
      {"generic-password", "database:\n  password: " + pw + "\n"},                   // YAML
      {"generic-password", "SMTP_PW = " + pw + "\n"},                                // name ending in _PW
      {"generic-api-key", "STRIPE_SIGNING_KEY = \"" + k32 + "\"\n"},               // name ending in _KEY
      {"generic-api-key", "const signingKey = \"" + k32 + "\";\n"},                 // ...Key (camelCase)
      {"generic-api-key", "client-key: " + k32 + "\n"},                              // -key
      {"generic-api-key", "client_secret = \"" + fake(kDigits, 18, 104) + "\"\n"},  // all-digit client secret
      {"generic-password", "pin_password = \"" + fake(kDigits, 10, 105) + "\"\n"},   // all-digit PIN
      {"generic-api-key", "api_key = \"" + fake(kBase64, 400, 106) + "\"\n"},       // longer than 150 characters
      {"generic-api-key", "secret_key = \"0123456789abcdef" + fake(kHex, 24, 107) + "\"\n"},  // hex run inside
      {"jwt", "auth: " + cat("ey", "JhbGciOiJub25lIiwidHlwIjoiSldUIn0.ey", "JzdWIiOiIxMjM0NTY3ODkwIn0.") + "\n"},
  };
}

TEST_F(SecretRulesTest, EveryRuleHasAPositiveAndFiresOnIt) {
  std::set<std::string> covered;
  for (const auto& c : test_cases::secret_positives()) covered.insert(c.rule);
  for (const auto& s : vendor_shapes()) {
    covered.insert(s.rule);
    const std::string text = expand_case(s.text, 7).first;
    EXPECT_TRUE(fires(text, s.rule)) << s.rule << " did not fire on: " << text;
  }
  for (const auto& [rule, text] : unquoted_positives()) EXPECT_TRUE(fires(text, rule)) << rule << ": " << text;
  for (const auto& r : secret_rules()) EXPECT_TRUE(covered.count(r.id)) << "no positive test for rule " << r.id;
}

TEST_F(SecretRulesTest, RuleCountAndUniqueVendorIds) {
  std::set<std::string> ids;
  for (const auto& r : secret_rules()) ids.insert(r.id);
  EXPECT_GE(ids.size(), 160u);
  std::set<std::string> vendor;
  for (const auto& r : vendor_secret_rules()) EXPECT_TRUE(vendor.insert(r.id).second) << "duplicate id " << r.id;
}

TEST_F(SecretRulesTest, VendorShapesWithWrongLengthDoNotFire) {
  // A fixed-length vendor format: one character short is not that token (the generic rules may still look).
  EXPECT_FALSE(fires("x = " + cat("gh", "p_") + fake(kAlnum, 35, 1) + "\n", "github-pat"));
  EXPECT_FALSE(fires("x = " + cat("gh", "p_") + fake(kAlnum, 40, 1) + "\n", "github-pat"));
  EXPECT_FALSE(fires("x = " + cat("gl", "pat-") + fake(kAlnum, 19, 2) + "\n", "gitlab-token"));
  EXPECT_FALSE(fires("DD_API_KEY=" + fake(kHex, 31, 3) + "\n", "datadog-access-token"));
}

TEST_F(SecretRulesTest, UnquotedLookAlikesDoNotFire) {
  const std::vector<std::string> negatives = {
      "token = get_token()\n",
      "password = user_password2\n",
      "api_key = self.api_key\n",
      "secret: ${{ secrets.DEPLOY_KEY }}\n",
      "API_KEY=${API_KEY}\n",
      "TOKEN=$GITHUB_TOKEN\n",
      "mytool --api-key $API_KEY\n",
      "mytool --token <your-token>\n",
      "password: changeme\n",
      "url = \"https://api.example.com/{api_key}/items\"\n",
      "api_key = \"{API_KEY}\"\n",
      "DATABASE_URL=postgres://postgres:postgres@localhost:5432/app\n",
      "REDIS_URL=redis://redis:redis@127.0.0.1:6379\n",
      "sort_key = \"created_at_desc_v2\"\n",
      "public_key: " + fake(kAlnum, 40, 9) + "\n",
      "token_expiry = \"1700000000\"\n",
      "primary_key = \"order_id_2\"\n",
      "key: value\nmonkey: banana\n",
      "secret_key = \"0123456789abcdef\"\n",
      "SECRET_KEY=django-insecure-change-me\n",
      "password = os.environ['DB_PASSWORD']\n",
      "for token in tokens:\n    password = token\n",
      "RegOpenKeyEx = win32api.RegOpenKeyEx\nRegEnumKey = win32api.RegEnumKey\n",
      "signing_key = settings.SIGNING_KEY_V2\n",
  };
  for (const auto& text : negatives) {
    const auto found = scan(text);
    EXPECT_TRUE(found.empty()) << "fired " << (found.empty() ? "" : found[0].rule) << " on: " << text;
  }
}

TEST_F(SecretRulesTest, FilterFixes) {
  EXPECT_FALSE(is_placeholder_secret("89abcdef01" + fake(kHex, 22, 5)));  // contains a hex run: a key
  EXPECT_TRUE(is_placeholder_secret("0123456789abcdef"));                // is the run: a placeholder
  EXPECT_TRUE(is_placeholder_secret("{API_TOKEN}"));
  EXPECT_TRUE(is_placeholder_secret("prefix-{name}-suffix"));
  EXPECT_FALSE(is_placeholder_secret("{" + fake(kAlnum, 30, 6)));  // a brace that opens no template
  // A non-default password on localhost is still a secret.
  EXPECT_TRUE(fires("DATABASE_URL=postgres://app:" + fake(kAlnum, 12, 7) + "@localhost/app\n",
                    "database-connection-string"));
  // The default on a remote host is a secret too.
  EXPECT_TRUE(fires("DATABASE_URL=postgres://postgres:" "postgres@db.prod.internal/app\n", "database-connection-string"));
}

}  // namespace
}  // namespace tritter::data
