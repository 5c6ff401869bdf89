// Label rules: for every rule a hand-written snippet that must fire (at the expected line) and look-alikes
// that must not: the same call in a comment or a string, the safe form of the call (SafeLoader,
// weights_only=True, a literal argument, a `// SAFETY:` comment), test code for Rust unwrap.
#include "data/labels.h"

#include <gtest/gtest.h>

#include <set>

#include "data/lexer.h"

namespace tritter::data {
namespace {

struct Case {
  const char* rule;
  const char* language;
  std::string code;
  int line;
};

std::vector<Label> run(const Case& c) {
  if (std::string(c.language) == "python") return label_python(c.code);
  if (std::string(c.language) == "rust") return label_rust(c.code, "src/lib.rs");
  return label_triton(c.code);
}

std::vector<Case> positives() {
  return {
      {"py.eval-exec", "python", "x = 1\nresult = eval(user_input)\n", 2},
      {"py.eval-exec", "python", "exec(f\"print({name})\")\n", 1},
      {"py.shell-injection", "python", "import subprocess\nsubprocess.run(cmd, shell=True)\n", 2},
      {"py.shell-injection", "python", "subprocess.Popen(\n    \"ls \" + path,\n    shell=True,\n)\n", 3},
      {"py.os-system", "python", "import os\nos.system(\"rm -rf \" + target)\n", 2},
      {"py.sql-string-built", "python", "cur.execute(\"SELECT * FROM users WHERE name = '%s'\" % name)\n", 1},
      {"py.sql-string-built", "python", "cursor.execute(f\"DELETE FROM t WHERE id = {row_id}\")\n", 1},
      {"py.sql-string-built", "python", "db.execute(\"INSERT INTO t VALUES (\" + v + \")\")\n", 1},
      {"py.unsafe-deserialization", "python", "import pickle\nobj = pickle.loads(data)\n", 2},
      {"py.unsafe-deserialization", "python", "code = marshal.load(f)\n", 1},
      {"py.yaml-unsafe-load", "python", "cfg = yaml.load(stream)\n", 1},
      {"py.yaml-unsafe-load", "python", "cfg = yaml.load(stream, Loader=yaml.Loader)\n", 1},
      {"py.yaml-unsafe-load", "python", "cfg = yaml.unsafe_load(stream)\n", 1},
      {"py.torch-load-unsafe", "python", "state = torch.load(path, map_location='cpu')\n", 1},
      {"py.tls-verify-disabled", "python", "r = requests.get(url, verify=False, timeout=5)\n", 1},
      {"py.tls-verify-disabled", "python", "ctx = ssl._create_unverified_context()\n", 1},
      {"py.tls-verify-disabled", "python", "ctx.check_hostname = False\n", 1},
      {"py.tls-verify-disabled", "python", "ctx.verify_mode = ssl.CERT_NONE\n", 1},
      {"py.weak-hash", "python", "h = hashlib.md5(password.encode()).hexdigest()\n", 1},
      {"py.weak-hash", "python", "h = hashlib.new('sha1', data)\n", 1},
      {"py.tarfile-extractall", "python", "import tarfile\nwith tarfile.open(p) as t:\n    t.extractall(dest)\n", 3},
      {"py.jinja2-autoescape-off", "python", "env = jinja2.Environment(loader=l, autoescape=False)\n", 1},
      {"py.tempfile-mktemp", "python", "name = tempfile.mktemp()\n", 1},
      {"py.bare-except", "python", "try:\n    f()\nexcept:\n    log()\n", 3},
      {"py.except-pass", "python", "try:\n    f()\nexcept Exception:\n    pass\n", 3},
      {"py.except-pass", "python", "try:\n    f()\nexcept Exception as e: pass\n", 3},
      // A named class whose handler only passes: its own rule (info), no longer a look-alike.
      {"py.except-pass-typed", "python", "try:\n    f()\nexcept ValueError:\n    pass\n", 3},
      {"py.mutable-default", "python", "def add(item, bucket=[]):\n    bucket.append(item)\n", 1},
      {"py.mutable-default", "python", "def f(a, opts: dict = {}):\n    return opts\n", 1},
      {"py.is-literal", "python", "if name is \"admin\":\n    pass\n", 1},
      {"py.is-literal", "python", "if count is not 0:\n    pass\n", 1},
      {"py.requests-no-timeout", "python", "r = requests.post(url, json=payload)\n", 1},
      {"rs.unsafe-undocumented", "rust", "fn f(p: *const u8) -> u8 {\n    unsafe { *p }\n}\n", 2},
      {"rs.transmute", "rust", "let x: u32 = unsafe { std::mem::transmute::<f32, u32>(v) }; // SAFETY: same size\n", 1},
      {"rs.mem-forget", "rust", "fn f(v: Vec<u8>) {\n    std::mem::forget(v);\n}\n", 2},
      {"rs.from-raw-parts", "rust",
       "// SAFETY: caller guarantees len\nlet s = unsafe { std::slice::from_raw_parts(p, n) };\n", 2},
      {"rs.tls-verify-disabled", "rust",
       "let c = reqwest::Client::builder()\n    .danger_accept_invalid_certs(true)\n    .build()?;\n", 2},
      {"rs.shell-command", "rust",
       "let out = Command::new(\"sh\").arg(\"-c\").arg(format!(\"ls {}\", dir)).output()?;\n", 1},
      {"rs.weak-hash", "rust", "let digest = md5::compute(bytes);\n", 1},
      {"rs.unwrap", "rust", "fn main() {\n    let v = parse(s).unwrap();\n}\n", 2},
      {"rs.expect", "rust", "fn main() {\n    let f = File::open(p).expect(\"open\");\n}\n", 2},
      {"rs.todo", "rust", "fn later() -> u32 {\n    todo!()\n}\n", 2},
      {"rs.dbg", "rust", "fn f(x: u32) -> u32 {\n    dbg!(x) + 1\n}\n", 2},
      {"triton.unmasked-access", "triton",
       "@triton.jit\ndef k(x_ptr, n, BLOCK: tl.constexpr):\n    offs = tl.arange(0, BLOCK)\n    x = tl.load(x_ptr + "
       "offs)\n",
       4},
  };
}

struct Negative {
  const char* language;
  std::string code;
};

std::vector<Negative> negatives() {
  return {
      // the dangerous call only in comments and strings
      {"python", "# result = eval(user_input)\nprint(\"os.system(cmd) is dangerous\")\n"},
      {"python", "doc = '''\nsubprocess.run(cmd, shell=True)\npickle.loads(data)\n'''\n"},
      {"python", "msg = \"except:\"\nhelp = 'yaml.load(stream)'\n"},
      // safe forms
      {"python", "cfg = yaml.load(stream, Loader=yaml.SafeLoader)\ncfg2 = yaml.load(s, Loader=CSafeLoader)\n"},
      {"python", "cfg = yaml.safe_load(stream)\n"},
      {"python", "state = torch.load(path, map_location='cpu', weights_only=True)\n"},
      {"python", "value = eval(\"1 + 2\")\nmodel.eval()\nself.exec(cmd)\n"},
      {"python", "def eval(self, x):\n    return x\n"},
      {"python", "subprocess.run([\"ls\", path], shell=False, check=True)\nsubprocess.run(\"ls -l\", shell=True)\n"},
      {"python", "os.system(\"clear\")\n"},
      {"python", "def __init__(self, filename=None, verify=False, shell=True):\n    pass\n"},
      {"python", "cur.execute(\"SELECT * FROM users WHERE name = ?\", (name,))\ncur.execute(sql, params)\n"},
      {"python",
       "h = hashlib.sha256(data)\nh2 = hashlib.md5(data, usedforsecurity=False)\nh3 = hashlib.new('sha256')\n"},
      {"python", "import zipfile\nz.extractall(dest)\n"},
      {"python", "import tarfile\nt.extractall(dest, filter='data')\n"},
      {"python", "env = Environment(autoescape=True)\nfd, name = tempfile.mkstemp()\n"},
      {"python", "def add(item, bucket=None):\n    bucket = bucket or []\n"},
      {"python", "if x is None or y is not True:\n    pass\n"},
      {"python", "if ctx.verify_mode != ssl.CERT_NONE and ctx.verify_mode == CERT_NONE:\n    pass\n"},
      {"python", "r = requests.get(url, timeout=10)\nr2 = requests.post(url, json=p, timeout=(3, 10))\n"},
      {"python", "import pickle  # pickle.loads(data) would be unsafe\n"},
      {"rust", "// SAFETY: p is valid for reads of one byte\nlet b = unsafe { *p };\n"},
      {"rust", "/* unsafe { *p } */\nlet s = \"unsafe { x } .unwrap() todo!()\";\n"},
      {"rust", "let r = r#\"mem::transmute(x) .expect(\"y\")\"#;\n"},
      {"rust",
       "/// ```\n/// let v = parse(s).unwrap();\n/// ```\npub fn parse(s: &str) -> Option<u32> { s.parse().ok() }\n"},
      {"rust",
       "fn main() {}\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn t() { parse(\"1\").unwrap(); todo!(); }\n}\n"},
      {"rust", "let c = Client::builder().danger_accept_invalid_certs(false).build();\n"},
      {"rust", "let out = Command::new(\"git\").arg(\"log\").arg(rev).output();\n"},
      {"rust", "let out = Command::new(\"sh\").arg(\"-c\").arg(\"ls -l\").output();\n"},
      {"rust", "let c = 'x'; let lt: &'static str = \"a\"; let d = b'\\n';\n"},
      {"rust", "pub unsafe fn from_raw_parts(p: *const u8, n: usize) -> Self { todo_later(p, n) }\n"},
      {"rust", "let v = std::mem::ManuallyDrop::new(v);\nlet h = Sha256::new();\n// dbg!(x); mem::forget(y)\n"},
      {"rust", "fn transmute_bits(x: f32) -> u32 { x.to_bits() }\nlet ok = result.unwrap_or(0);\n"},
      {"triton",
       "@triton.jit\ndef k(x_ptr, n, BLOCK: tl.constexpr):\n    offs = tl.arange(0, BLOCK)\n"
       "    x = tl.load(x_ptr + offs, mask=offs < n)\n    tl.store(x_ptr + offs, x, mask=offs < n)\n"},
  };
}

TEST(Labels, EveryRuleHasAPositive) {
  std::set<std::string> covered;
  for (const auto& c : positives()) covered.insert(c.rule);
  for (const auto& r : label_rules()) EXPECT_TRUE(covered.count(r.id)) << "no positive test for rule " << r.id;
}

TEST(Labels, PositivesFireAtTheLine) {
  for (const auto& c : positives()) {
    const auto labels = run(c);
    bool hit = false;
    for (const auto& l : labels)
      if (l.rule == c.rule) {
        hit = true;
        EXPECT_EQ(l.line, c.line) << c.rule << " in: " << c.code;
        EXPECT_FALSE(l.explanation.empty());
        EXPECT_FALSE(l.anchors.empty());
        EXPECT_EQ(l.severity, label_rule(c.rule).severity);
      }
    EXPECT_TRUE(hit) << "rule " << c.rule << " did not fire on: " << c.code;
  }
}

TEST(Labels, NegativesDoNotFire) {
  for (const auto& n : negatives()) {
    const Case c{"", n.language, n.code, 0};
    const auto labels = run(c);
    for (const auto& l : labels) ADD_FAILURE() << "rule " << l.rule << " fired at line " << l.line << " on: " << n.code;
  }
}

TEST(Labels, ExplanationNamesTheCall) {
  const auto l = label_python("subprocess.check_output(cmd, shell=True)\n");
  ASSERT_EQ(l.size(), 1u);
  EXPECT_NE(l[0].explanation.find("subprocess.check_output()"), std::string::npos) << l[0].explanation;
  EXPECT_NE(l[0].explanation.find("`cmd`"), std::string::npos) << l[0].explanation;
}

TEST(Labels, RustTestPathsSkipUnwrap) {
  EXPECT_TRUE(label_rust("fn t() { x.unwrap(); }\n", "crate/tests/it.rs").empty());
  EXPECT_FALSE(label_rust("fn t() { x.unwrap(); }\n", "crate/src/lib.rs").empty());
}

TEST(Labels, DocumentAggregatesAndScores) {
  QualityConfig q;
  const auto r = label_document("import pickle\na = pickle.loads(x)\nb = pickle.loads(y)\n", "python", "m.py", q);
  ASSERT_EQ(r.labels.size(), 1u);
  EXPECT_EQ(r.counts[0], 2);
  EXPECT_NE(r.labels[0].explanation.find("2 occurrences"), std::string::npos);
  EXPECT_DOUBLE_EQ(r.score, 0.5);  // one high-severity security rule
  const auto clean = label_document("def f(x):\n    return x + 1\n", "python", "m.py", q);
  EXPECT_TRUE(clean.labels.empty());
  EXPECT_TRUE(clean.flags.empty());
  EXPECT_DOUBLE_EQ(clean.score, 1.0);
}

TEST(Labels, FileSignals) {
  QualityConfig q;
  q.max_line_length = 100;
  q.huge_file_bytes = 1000;
  const auto long_line = label_document(std::string(150, 'a') + "\n", "text", "a.txt", q);
  EXPECT_NE(std::find(long_line.flags.begin(), long_line.flags.end(), "long-lines"), long_line.flags.end());
  const auto minified = label_document("var a=1;" + std::string(400, 'b') + "\n", "javascript", "a.min.js", q);
  EXPECT_NE(std::find(minified.flags.begin(), minified.flags.end(), "minified"), minified.flags.end());
  const auto symbols = label_document("{}[]();;;;----====++++\n", "text", "s.txt", q);
  EXPECT_NE(std::find(symbols.flags.begin(), symbols.flags.end(), "low-alnum"), symbols.flags.end());
  std::string big;
  for (int i = 0; i < 100; ++i) big += "x = 1  # filler\n";
  const auto huge = label_document(big, "python", "b.py", q);
  EXPECT_NE(std::find(huge.flags.begin(), huge.flags.end(), "huge-file"), huge.flags.end());
  const auto gen = label_document("# Code generated by protoc. DO NOT EDIT.\nx = 1\n", "python", "g.py", q);
  EXPECT_NE(std::find(gen.flags.begin(), gen.flags.end(), "generated"), gen.flags.end());
}

TEST(Triton, FindsKernels) {
  const std::string src =
      "import triton\nimport triton.language as tl\n\n@triton.autotune(configs=[], key=['n'])\n@triton.jit\n"
      "def add_kernel(x, y, n, BLOCK: tl.constexpr):\n    pass\n\ndef helper():\n    pass\n\n@triton.jit\n"
      "def mul_kernel(x):\n    pass\n# @triton.jit\n# def commented(x): pass\n";
  const auto k = find_triton_kernels(src);
  ASSERT_EQ(k.size(), 2u);
  EXPECT_EQ(k[0].name, "add_kernel");
  EXPECT_EQ(k[0].line, 6);
  EXPECT_EQ(k[1].name, "mul_kernel");
  EXPECT_EQ(k[1].line, 13);
}

TEST(Lexer, PythonMasksCommentsAndStrings) {
  const std::string src = "a = 'x#y'  # c\nb = \"\"\"q\n'r'\"\"\"\nc = f\"{d}\"\n";
  const LexedSource lx = lex_python(src);
  ASSERT_EQ(lx.code.size(), src.size());
  EXPECT_EQ(lx.code, "a = '   '     \nb = \"\"\" \n   \"\"\"\nc = f\"   \"\n");
  ASSERT_EQ(lx.strings.size(), 3u);
  EXPECT_EQ(lx.strings[2].prefix, "f");
  EXPECT_TRUE(lx.in_comment_or_string(src.find("# c")));
  EXPECT_FALSE(lx.in_comment_or_string(0));
}

TEST(Lexer, RustNestedCommentsRawStringsAndLifetimes) {
  const std::string src = "/* a /* b */ c */ let s = r#\"x\"y\"#; fn f<'a>(x: &'a str) -> char { 'z' }\n";
  const LexedSource lx = lex_rust(src);
  ASSERT_EQ(lx.code.size(), src.size());
  EXPECT_EQ(lx.code.substr(0, 17), std::string(17, ' '));
  EXPECT_NE(lx.code.find("fn f<'a>(x: &'a str)"), std::string::npos);
  EXPECT_NE(lx.code.find("r#\"   \"#"), std::string::npos) << lx.code;
  EXPECT_NE(lx.code.find("{ ' ' }"), std::string::npos) << lx.code;
}

TEST(Lexer, UnterminatedLiteralsStayLinear) {
  const std::string py = "x = 'abc\ny = \"\"\"never closed\n" + std::string(100000, 'a');
  EXPECT_EQ(lex_python(py).code.size(), py.size());
  const std::string rs = "let s = \"open\n/* open " + std::string(100000, '*');
  EXPECT_EQ(lex_rust(rs).code.size(), rs.size());
}

}  // namespace
}  // namespace tritter::data
