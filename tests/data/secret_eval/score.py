#!/usr/bin/env python3
"""Held-out evaluation of Tritter's secret gate: writes a labelled tree of secret-bearing and clean files,
runs `tritter curate --report-only` on it, and scores file-level precision and recall.

The cases follow the shapes of the public scanner fixture suites (gitleaks' per-rule true/false examples,
detect-secrets' test_data config files, secretlint's ok/ng fixtures, semgrep's secrets rules) but are written
here in this project's own words, and every secret value is generated at run time from a fixed seed: no file in
the repository holds a key-shaped string. The contexts, names and file types differ from the unit tests'
(tests/data/*_test.cpp), so the rules are not tuned to this set.

usage: score.py TRITTER_BINARY [--min-precision P] [--min-recall R] [--keep DIR]
exit status: 0 when both bars are met, 1 otherwise.
"""
import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile

RNG = random.Random(20240917)
ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URL = ALNUM + "-_"


def rnd(alphabet, n):
    return "".join(RNG.choice(alphabet) for _ in range(n))


def j(*parts):  # joined at run time so that no prefix of a real token sits in this file
    return "".join(parts)


def uuid():
    return "-".join(rnd(HEX, n) for n in (8, 4, 4, 4, 12))


def pem(kind="RSA PRIVATE"):
    body = "\n".join(rnd(B64, 64) for _ in range(6))
    return j("-----BEGIN ", kind, " KEY-----\n") + body + j("\n-----END ", kind, " KEY-----\n")


def positives():
    """(relative path, content): each file carries one real-shaped secret."""
    p = []
    # Configuration and credentials files (never scanned before: skipped as unknown or hidden).
    p.append(("svc/.env.production", "NODE_ENV=production\nSESSION_SECRET=" + rnd(ALNUM, 40) + "\n"))
    p.append(("svc/.env", "PORT=8080\nMAILER_PASSWORD=" + rnd(ALNUM, 12) + "x9\n"))
    p.append(("home/.npmrc", j("//npm.pkg.github.com/:_auth", "Token=") + j("gh", "p_") + rnd(ALNUM, 36) + "\n"))
    p.append(("home/.npmrc2/.npmrc", "_auth = " + rnd(B64, 44) + "\nemail = dev@example.org\n"))
    p.append(("home/.pypirc", "[distutils]\nindex-servers = pypi\n[pypi]\nusername = __token__\npassword = "
              + j("pypi-", "AgEIcHlwaS5vcmc") + rnd(URL, 80) + "\n"))
    p.append(("home/.netrc", "machine ftp.internal.example\n login backup\n password " + rnd(ALNUM, 16) + "\n"))
    p.append(("keys/deploy_key.pem", pem()))
    p.append(("keys/id_ed25519", pem("OPENSSH PRIVATE")))
    p.append(("conf/database.ini", "[postgres]\nhost = db\nuser = app\npassword = " + rnd(ALNUM, 14) + "\n"))
    p.append(("conf/app.cfg", "[slack]\nwebhook = https://" + j("hooks.slack", ".com/services/T") + rnd(ALNUM.upper(), 8)
              + "/B" + rnd(ALNUM.upper(), 10) + "/" + rnd(ALNUM, 24) + "\n"))
    p.append(("conf/application.properties", "spring.datasource.url=jdbc:mysql://db/app\nspring.datasource.password="
              + rnd(ALNUM, 18) + "\n"))
    p.append(("deploy/values.yaml", "image: app:1.2\nenv:\n  - name: STRIPE_KEY\n    value: "
              + j("sk", "_live_") + rnd(ALNUM, 40) + "\n"))
    p.append(("deploy/config.toml", "[sentry]\ndsn = \"https://" + rnd(HEX, 32) + "@o1.ingest.example/1\"\nauth_token = \""
              + j("sntr", "yu_") + rnd(HEX, 64) + "\"\n"))
    p.append(("deploy/settings.json", json.dumps({"datadog": {"api_key": rnd(HEX, 32)}}, indent=2) + "\n"))
    p.append(("home/.bash_profile", "export PATH=$HOME/bin:$PATH\nexport GITLAB_TOKEN=" + j("gl", "pat-") + rnd(URL, 20) + "\n"))
    p.append(("home/.zshrc", "alias g=git\nexport ANTHROPIC_API_KEY=" + j("sk-", "ant-", "api03-") + rnd(URL, 93) + "AA\n"))
    p.append(("docker/Dockerfile", "FROM node:20\nENV NPM_TOKEN=" + j("np", "m_") + rnd(ALNUM, 36) + "\nRUN npm ci\n"))
    p.append(("web/config.php", "<?php\n$db_password = '" + rnd(ALNUM, 14) + "7';\n"))
    p.append((".circleci/config.yml", "jobs:\n  deploy:\n    environment:\n      HEROKU_API_KEY: " + uuid() + "\n"))
    p.append(("infra/main.tf", "provider \"aws\" {\n  access_key = \"" + j("AK", "IA") + rnd("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
              + "\"\n  secret_key = \"" + rnd(B64, 40) + "\"\n}\n"))
    p.append(("maven/settings.xml", "<settings><servers><server><id>central</id><username>ci</username><password>"
              + rnd(ALNUM, 20) + "</password></server></servers></settings>\n"))
    p.append(("nuget/NuGet.Config", "<configuration><packageSourceCredentials><feed><add key=\"Username\" value=\"ci\" />"
              "<add key=\"ClearTextPassword\" value=\"" + rnd(ALNUM, 20) + "\" /></feed></packageSourceCredentials></configuration>\n"))
    # Unquoted values in scripts and command lines.
    p.append(("scripts/deploy.sh", "#!/bin/sh\nset -e\nAPI_TOKEN=" + rnd(ALNUM, 32) + "\ncurl -H \"X-Token: $API_TOKEN\" https://api.example\n"))
    p.append(("scripts/run.sh", "#!/bin/bash\nexec ./server --db-password " + rnd(ALNUM, 16) + "a1 --port 80\n"))
    p.append(("docs/setup.md", "Run the uploader:\n\n    uploader --api-key " + rnd(ALNUM, 32) + "\n"))
    p.append(("ci/pipeline.yml", "steps:\n  - run: make\n    env:\n      SIGNING_KEY: " + rnd(B64, 44) + "\n"))
    # Long-tail vendors.
    vendors = [
        j("dapi", rnd(HEX, 32)), j("dop_v1_", rnd(HEX, 64)), j("xox", "p-") + "-".join(rnd("0123456789", 12) for _ in range(3)) + "-" + rnd(HEX, 32),
        j("xap", "p-1-") + rnd(ALNUM.upper(), 11) + "-" + rnd("0123456789", 13) + "-" + rnd(HEX, 64),
        j("glpt", "t-") + rnd(HEX, 40), j("hv", "s.") + rnd(URL, 100), j("lin_", "api_") + rnd(ALNUM, 40),
        j("pul", "-") + rnd(HEX, 40), j("PMAK", "-") + rnd(HEX, 24) + "-" + rnd(HEX, 34), j("shp", "at_") + rnd(HEX, 32),
        j("SG", ".") + rnd(URL, 22) + "." + rnd(URL, 43), j("rubygems", "_") + rnd(HEX, 48), j("pplx", "-") + rnd(ALNUM, 48),
        j("gsk", "_") + rnd(ALNUM, 52), j("AIza", "") + rnd(URL, 35), j("GOCSPX", "-") + rnd(URL, 28),
        j("sbp", "_") + rnd(HEX, 40), j("dckr", "_pat_") + rnd(URL, 27), j("glsa", "_") + rnd(ALNUM, 32) + "_" + rnd(HEX, 8),
        j("ntn", "_") + rnd("0123456789", 11) + rnd(ALNUM, 35),
    ]
    for i, v in enumerate(vendors):
        p.append((f"clients/client_{i}.py", f"import client\n\nCLIENT = client.Client(\n    '{v}',\n    retries=3,\n)\n"))
    p.append(("clients/jwt_none.js", "const t = '" + j("ey", "JhbGciOiJub25lIn0.ey", "JzdWIiOiJhZG1pbiJ9.") + "';\n"))
    p.append(("clients/client_secret.go", "package main\n\nconst clientSecret = \"" + "".join(RNG.choice("0123456789") for _ in range(20)) + "\"\n"))
    p.append(("clients/hexkey.py", "SECRET_KEY = '0123456789abcdef" + rnd(HEX, 32) + "'\n"))
    p.append(("clients/long_token.py", "access_token = \"" + rnd(B64, 300) + "\"\n"))
    p.append(("db/compose.yml", "services:\n  app:\n    environment:\n      DATABASE_URL: postgres://app:" + rnd(ALNUM, 14)
              + "@db.internal:5432/app\n"))
    return p


def negatives():
    """(relative path, content): look-alikes that hold no secret."""
    n = []
    n.append(("svc/.env.example", "SESSION_SECRET=\nMAILER_PASSWORD=changeme\nAPI_KEY=<your-api-key>\n"))
    n.append(("svc/.env.template", "SESSION_SECRET=${SESSION_SECRET}\nTOKEN={TOKEN}\n"))
    n.append(("home/.npmrc.sample", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n"))
    n.append(("conf/dev.ini", "[postgres]\nhost = localhost\nuser = postgres\npassword = postgres\n"))
    n.append(("conf/app2.cfg", "[auth]\ntoken_url = https://auth.example/token\nsecret_name = prod-db\n"))
    n.append(("deploy/values2.yaml", "env:\n  - name: STRIPE_KEY\n    valueFrom:\n      secretKeyRef:\n        name: stripe\n        key: api-key\n"))
    n.append(("deploy/gha.yml", "env:\n  GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n"))
    n.append(("scripts/deploy2.sh", "#!/bin/sh\nAPI_TOKEN=\"$(cat /run/secrets/api_token)\"\ncurl -H \"X-Token: $API_TOKEN\" https://api.example\n"))
    n.append(("scripts/run2.sh", "#!/bin/bash\nexec ./server --db-password \"$DB_PASSWORD\" --token-file /etc/token\n"))
    n.append(("docs/setup2.md", "Pass your key with `--api-key YOUR_API_KEY` or set `OPENAI_API_KEY=sk-...`.\n"))
    n.append(("src/hashes.py", "CHECKSUMS = {\n    'v1': '" + rnd(HEX, 64) + "',\n    'v2': '" + rnd(HEX, 40) + "',\n}\n"))
    n.append(("src/ids.py", "REQUEST_ID = '" + uuid() + "'\nTRACE = '" + uuid() + "'\n"))
    n.append(("src/keys.py", "def sort_key(item):\n    return item.name\n\ncache_key = 'user_profile_v2'\nprimary_key = 'order_id'\n"))
    n.append(("src/tokenize_util.py", "def tokens(text):\n    for token in text.split():\n        yield token\n\ntoken_type = 'word'\n"))
    n.append(("src/winreg_shim.py", "RegOpenKeyEx = win32api.RegOpenKeyEx\nSecretStore = vault.SecretStore2\n"))
    n.append(("src/settings.py", "SECRET_KEY = os.environ['DJANGO_SECRET_KEY']\nPASSWORD_HASHERS = ['argon2']\n"))
    n.append(("src/auth.rs", "let token = std::env::var(\"API_TOKEN\")?;\nlet password = read_password()?;\n"))
    n.append(("src/format.py", "url = f'https://api.example/{api_key}/items'\nmsg = 'token: {token}'.format(token=t)\n"))
    n.append(("src/public.pem", j("-----BEGIN ", "PUBLIC KEY-----\n") + rnd(B64, 64) + j("\n-----END ", "PUBLIC KEY-----\n")))
    n.append(("src/cert_check.py", "if data.startswith('-----BEGIN RSA PRIVATE KEY-----'):\n    kind = 'rsa'\n"))
    n.append(("src/seq.py", "api_key = 'abcdefghijklmnop'\npassword = '12345678'\nsecret = 'xxxxxxxxxxxxxxxx'\n"))
    n.append(("src/example.py", "# Example:\n#   client = Client(api_key='YOUR_API_KEY')\nclient = Client(api_key=api_key)\n"))
    n.append(("src/compose_dev.yml", "DATABASE_URL: mysql://root:mysql@localhost:3306/app\nREDIS: redis://redis:redis@127.0.0.1\n"))
    n.append(("src/jwt_doc.md", "A JWT looks like `header.payload.signature`; decode with jwt.decode(token).\n"))
    n.append(("src/numbers.py", "token_expiry = '1700000000'\nport_password_len = 12\nMAX_TOKENS = 4096\n"))
    n.append(("src/git_sha.toml", "[package]\ncommit = \"" + rnd(HEX, 40) + "\"\nversion = \"1.2.3\"\n"))
    n.append(("src/lock/poetry.lock", "[[package]]\nname = \"x\"\ncontent-hash = \"sha256:" + rnd(HEX, 64) + "\"\n"))
    n.append(("src/pubkey.yml", "ssh:\n  public_key: ssh-ed25519 " + rnd(B64, 68) + " dev@host\n"))
    n.append(("src/doc_tokens.rst", "Set ``token`` to the value shown in the dashboard, e.g. ``token: <token>``.\n"))
    n.append(("src/yaml_refs.yml", "password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\napi_key: \"{{ lookup('env', 'API_KEY') }}\"\n"))
    n.append(("src/props.properties", "app.secret.ref=vault:secret/app\nldap.password=${LDAP_PASSWORD}\n"))
    n.append(("src/html.php", "<?php\n$password = $_POST['password'];\n$token = bin2hex(random_bytes(16));\n"))
    n.append(("src/dockerfile2/Dockerfile", "FROM python:3.12\nARG PIP_TOKEN\nENV PIP_INDEX_URL=https://pypi.example/simple\n"))
    n.append(("src/cli_help.py", "parser.add_argument('--api-key', help='API key (or set API_KEY)')\n"))
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tritter")
    ap.add_argument("--min-precision", type=float, default=0.95)
    ap.add_argument("--min-recall", type=float, default=0.90)
    ap.add_argument("--keep")
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="tritter-secret-eval-")
    try:
        tree = os.path.join(root, "tree")
        truth = {}
        for label, cases in ((True, positives()), (False, negatives())):
            for rel, content in cases:
                path = os.path.join(tree, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(content)
                truth[os.path.normpath(path)] = label
        sarif_path = os.path.join(root, "findings.sarif")
        run = subprocess.run([args.tritter, "curate", "--report-only", tree, "--sarif", sarif_path],
                             capture_output=True, text=True)
        if run.returncode not in (0, 1):
            print(run.stdout, run.stderr)
            return 2
        with open(sarif_path) as f:
            sarif = json.load(f)
        flagged = {}
        for r in sarif["runs"][0]["results"]:
            uri = os.path.normpath(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
            flagged.setdefault(uri, []).append(r["ruleId"])
        tp = sum(1 for p, lab in truth.items() if lab and p in flagged)
        fn = [p for p, lab in truth.items() if lab and p not in flagged]
        fp = [p for p, lab in truth.items() if not lab and p in flagged]
        precision = tp / (tp + len(fp)) if tp + len(fp) else 1.0
        recall = tp / (tp + len(fn)) if tp + len(fn) else 1.0
        print(f"files: {sum(truth.values())} with a secret, {len(truth) - sum(truth.values())} clean")
        print(f"precision {precision:.3f} (bar {args.min_precision}), recall {recall:.3f} (bar {args.min_recall})")
        for p in fn:
            print("missed:", os.path.relpath(p, tree))
        for p in fp:
            print("false positive:", os.path.relpath(p, tree), flagged[p])
        if args.keep:
            shutil.copytree(tree, args.keep, dirs_exist_ok=True)
        return 0 if precision >= args.min_precision and recall >= args.min_recall else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
