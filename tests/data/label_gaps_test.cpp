// Label rule gaps: each form below was missed before; every positive comes with look-alikes that must stay
// silent. Also: label_document exports every occurrence (rule, line, column, explanation) with the per-rule
// count kept.
#include <gtest/gtest.h>

#include "data/labels.h"

namespace tritter::data {
namespace {

int count_rule(const std::vector<Label>& labels, const std::string& rule, int line = 0) {
  int n = 0;
  for (const auto& l : labels) n += l.rule == rule && (line == 0 || l.line == line);
  return n;
}

TEST(LabelGaps, ExceptAnyClassPass) {
  EXPECT_EQ(count_rule(label_python("try:\n    f()\nexcept KeyError:\n    pass\n"), "py.except-pass-typed", 3), 1);
  EXPECT_EQ(count_rule(label_python("try:\n    f()\nexcept (OSError, ValueError) as e: pass\n"), "py.except-pass-typed", 3),
            1);
  EXPECT_EQ(count_rule(label_python("for x in xs:\n    try:\n        f(x)\n    except StopIteration:\n        continue\n"),
                       "py.except-pass-typed", 4),
            1);
  // Look-alikes: a handler that does something, `pass` followed by more code, a comment saying `pass`.
  EXPECT_TRUE(label_python("try:\n    f()\nexcept KeyError:\n    log()\n").empty());
  EXPECT_TRUE(label_python("try:\n    f()\nexcept KeyError:\n    pass_through = 1\n").empty());
  EXPECT_TRUE(label_python("# except KeyError: pass\nx = 1\n").empty());
}

TEST(LabelGaps, WeakHashForms) {
  EXPECT_EQ(count_rule(label_python("h = hashlib.new(name='md5')\n"), "py.weak-hash"), 1);
  EXPECT_EQ(count_rule(label_python("h = hashlib.new('MD5', data)\n"), "py.weak-hash"), 1);
  EXPECT_EQ(count_rule(label_python("from Crypto.Hash import MD5\nh = MD5.new(data)\n"), "py.weak-hash", 2), 1);
  EXPECT_EQ(count_rule(label_python("d = hashes.Hash(hashes.SHA1())\n"), "py.weak-hash"), 1);
  EXPECT_EQ(count_rule(label_python("import md5\nh = md5.new(s)\n"), "py.weak-hash", 2), 1);
  EXPECT_TRUE(label_python("h = hashlib.new(name='sha256')\nd = hashes.Hash(hashes.SHA256())\nh2 = SHA256.new(x)\n")
                  .empty());
}

TEST(LabelGaps, SqlBuiltOnAnEarlierLine) {
  EXPECT_EQ(count_rule(label_python("sql = f\"SELECT * FROM t WHERE id = {uid}\"\ncur.execute(sql)\n"),
                       "py.sql-string-built", 2),
            1);
  EXPECT_EQ(count_rule(label_python("q = \"DELETE FROM t WHERE n = '%s'\" % name\nconn.exec_driver_sql(q)\n"),
                       "py.sql-string-built", 2),
            1);
  EXPECT_EQ(count_rule(label_python("df = pd.read_sql(\"SELECT * FROM \" + table, conn)\n"), "py.sql-string-built"), 1);
  EXPECT_EQ(count_rule(label_python("cur.mogrify(\"SELECT %s\" % v)\n"), "py.sql-string-built"), 1);
  // Parameterised, and a variable that is a constant string.
  EXPECT_TRUE(label_python("sql = \"SELECT * FROM t WHERE id = ?\"\ncur.execute(sql, (uid,))\n").empty());
  EXPECT_TRUE(label_python("sql_a = f\"SELECT {x}\"\nsql = \"SELECT 1\"\ncur.execute(sql)\n").empty());
  EXPECT_TRUE(label_python("msg = f\"hello {name}\"\nlog.execute(msg)\n").empty());
}

TEST(LabelGaps, PopenVariantsAndAsyncioShell) {
  EXPECT_EQ(count_rule(label_python("os.popen2(cmd)\n"), "py.os-system"), 1);
  EXPECT_EQ(count_rule(label_python("p = await asyncio.create_subprocess_shell(cmd)\n"), "py.shell-injection"), 1);
  EXPECT_TRUE(label_python("p = await asyncio.create_subprocess_shell(\"ls -l\")\n").empty());
  EXPECT_TRUE(label_python("p = await asyncio.create_subprocess_exec(\"ls\", path)\n").empty());
  EXPECT_TRUE(label_python("os.popen(\"uptime\")\n").empty());
}

TEST(LabelGaps, DjangoAutoescapeSetting) {
  const std::string settings =
      "TEMPLATES = [{\n    'BACKEND': 'django.template.backends.django.DjangoTemplates',\n"
      "    'OPTIONS': {'autoescape': False},\n}]\n";
  EXPECT_EQ(count_rule(label_python(settings), "py.jinja2-autoescape-off", 3), 1);
  EXPECT_TRUE(label_python("OPTIONS = {\"autoescape\": True}\n").empty());
  EXPECT_TRUE(label_python("# OPTIONS = {'autoescape': False}\n").empty());
  EXPECT_TRUE(label_python("doc = \"'autoescape': False\"\n").empty());
}

TEST(LabelGaps, MultiLineCallTimeoutOnALaterLine) {
  EXPECT_TRUE(label_python("r = requests.get(\n    url,\n    headers=h,\n    timeout=10,\n)\n").empty());
  EXPECT_TRUE(label_python("r = requests.post(url,\n                  json=payload,\n                  timeout=(3, 30))\n")
                  .empty());
  EXPECT_EQ(count_rule(label_python("r = requests.get(\n    url,\n    headers=h,\n)\nt = timeout=3\n"),
                       "py.requests-no-timeout", 1),
            1);
}

TEST(LabelGaps, RustTransmuteTurbofishWithArray) {
  EXPECT_EQ(count_rule(label_rust("let v = unsafe { std::mem::transmute::<[u8; 4], u32>(b) };\n", "src/lib.rs"),
                       "rs.transmute"),
            1);
  EXPECT_EQ(count_rule(label_rust("let v = unsafe { transmute::<&[u8; 16], &[u32; 4]>(b) };\n", "src/lib.rs"),
                       "rs.transmute"),
            1);
  EXPECT_EQ(count_rule(label_rust("let v: [u8; 4] = x.to_le_bytes();\nfn transmute_all() {}\n", "src/lib.rs"),
                       "rs.transmute"),
            0);
}

TEST(LabelGaps, RustlsDangerousVerifier) {
  EXPECT_EQ(count_rule(label_rust("let cfg = ClientConfig::builder()\n    .dangerous()\n    "
                                  ".with_custom_certificate_verifier(Arc::new(NoVerify))\n    .with_no_client_auth();\n",
                                  "src/lib.rs"),
                       "rs.tls-verify-disabled"),
            2);
  EXPECT_EQ(count_rule(label_rust("impl ServerCertVerifier for NoVerify {\n    fn verify_server_cert(&self) -> "
                                  "Result<ServerCertVerified, Error> {\n        Ok(ServerCertVerified::assertion())\n"
                                  "    }\n}\n",
                                  "src/lib.rs"),
                       "rs.tls-verify-disabled"),
            2);
  EXPECT_EQ(count_rule(label_rust("let cfg = ClientConfig::builder().with_root_certificates(roots);\n"
                                  "// .dangerous() is not used here\n",
                                  "src/lib.rs"),
                       "rs.tls-verify-disabled"),
            0);
}

TEST(LabelGaps, EveryOccurrenceIsExported) {
  QualityConfig q;
  const auto r = label_document("import pickle\na = pickle.loads(x)\nb = pickle.loads(y)\ntry:\n    f()\nexcept:\n    g()\n",
                                "python", "m.py", q);
  ASSERT_EQ(r.occurrences.size(), 3u);
  EXPECT_EQ(r.occurrences[0].rule, "py.unsafe-deserialization");
  EXPECT_EQ(r.occurrences[0].line, 2);
  EXPECT_EQ(r.occurrences[1].line, 3);
  EXPECT_EQ(r.occurrences[1].col, 5);
  EXPECT_EQ(r.occurrences[2].rule, "py.bare-except");
  EXPECT_EQ(r.occurrences[2].line, 6);
  for (const auto& o : r.occurrences) EXPECT_FALSE(o.explanation.empty());
  ASSERT_EQ(r.labels.size(), 2u);  // one summary per rule, with the count
  EXPECT_EQ(r.counts[0], 2);
}

}  // namespace
}  // namespace tritter::data
