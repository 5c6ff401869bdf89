// Hand-written secret cases shared by secrets_test.cpp (one positive per rule) and pipeline_test.cpp (planted
// secrets). The values are random strings typed into this file, not produced by the detector; the long-tail
// vendor cases are generated at run time from the shape templates of secret_shapes.h.
#pragma once
#include <string>
#include <vector>

#include "data/secret_shapes.h"

namespace tritter::data::test_cases {

struct Case {
  const char* rule;
  std::string text;
  std::string secret;  // the part the fingerprint is taken of
};

// One positive per rule; several rules get more than one (PEM variants, token families).
inline std::vector<Case> secret_positives() {
  std::vector<Case> cases = {
      {"private-key",
       "KEY = '''\n-----BEGIN RSA PRIVATE KEY-----\ntluYI0KN1gNT11cUzYZAa3u2olZU6uqbgsYlVvsSKuvinX+zMqf9OgXluCZz8xBf\n"
       "ZuXTptFyfePpX6N1NF2XV54wca+7E56w8ZniqT3Ul4ffqkOkgWrdioyq+KvCiSGu\n-----END RSA PRIVATE KEY-----\n'''\n",
       "tluYI0KN1gNT11cUzYZAa3u2olZU6uqbgsYlVvsSKuvinX+zMqf9OgXluCZz8xBf"},
      {"private-key",
       "k = \"-----BEGIN OPENSSH PRIVATE "
       "KEY-----\\nZuXTptFyfePpX6N1NF2XV54wca+7E56w8ZniqT3Ul4ffqkOkgWrd\\n-----END\"\n",
       "nZuXTptFyfePpX6N1NF2XV54wca+7E56w8ZniqT3Ul4ffqkOkgWrd"},
      {"private-key",
       "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG "
       "v2\n\nlQOYBF3x9QsBCADNq8r2yXv1c3Jk5mB7tP0wL4hZ9eD2fG6kR8sT1uV3yW5zA7\n",
       "lQOYBF3x9QsBCADNq8r2yXv1c3Jk5mB7tP0wL4hZ9eD2fG6kR8sT1uV3yW5zA7"},
      {"private-key",
       "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIK8zQm3vR2xP9tL5wN7bC4hJ1fG6sD0eY3uA8kZ2qX5oAoGCCqGSM49\n",
       "MHcCAQEEIK8zQm3vR2xP9tL5wN7bC4hJ1fG6sD0eY3uA8kZ2qX5oAoGCCqGSM49"},
      {"aws-access-key-id", "aws_access_key_id = AKIAUR5JQ6NQPUXCMLZK\n", "AKIAUR5JQ6NQPUXCMLZK"},
      {"aws-secret-access-key", "aws_secret_access_key = \"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\"\n",
       "JPWvHogU5nGYVHWVsUQk4DwgLGNOaeCtL31Ugq/D"},
      {"gcp-api-key", "const key = 'AIzafcgaTMnTC0MrAU8urbFt5misIZHbhS4-Fva';\n",
       "AIzafcgaTMnTC0MrAU8urbFt5misIZHbhS4-Fva"},
      {"gcp-service-account-key",
       "{\"type\": \"service_account\", \"private_key_id\": \"110c57513064d6d59291f0cde2e5738713a818d8\"}\n",
       "110c57513064d6d59291f0cde2e5738713a818d8"},
      {"gcp-oauth-client-secret", "CLIENT = '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'\n",
       "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"},
      {"azure-storage-account-key",
       "conn = 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA/"
       "2O76UMFxFkM/R5Kjp1vRt+1fjORS/6ilI8ihN5KXSc7Tvo==;'\n",
       "PtYgjmUhBel31iEl2hpChYgCfrL1spNxnyVmihA/2O76UMFxFkM/R5Kjp1vRt+1fjORS/6ilI8ihN5KXSc7Tvo=="},
      {"azure-ad-client-secret", "client_credential = \"abC8Q~~hBKqFYY~kv5ZJr3J1TWDtkwtDDb_xHKas\"\n",
       "abC8Q~~hBKqFYY~kv5ZJr3J1TWDtkwtDDb_xHKas"},
      {"github-pat", "GITHUB = 'ghp_AIxNKu8iS2G8NPRVdD53X83RZJzzzzgEOzdm'\n",
       "ghp_AIxNKu8iS2G8NPRVdD53X83RZJzzzzgEOzdm"},
      {"github-pat", "oauth: gho_enCkhvMdgaKjIg8xNbe3nNyjOq9wMxEhh2FD\n", "gho_enCkhvMdgaKjIg8xNbe3nNyjOq9wMxEhh2FD"},
      {"github-fine-grained-pat",
       "t = \"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\"\n",
       "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"},
      {"gitlab-token", "GITLAB_TOKEN=glpat-SUkCnD8zRA9a9SkpXz9w\n", "glpat-SUkCnD8zRA9a9SkpXz9w"},
      {"gitlab-runner-registration-token", "registration-token: GR13489413QlY7Zkuvqdt7s8Stqcb\n",
       "GR13489413QlY7Zkuvqdt7s8Stqcb"},
      {"bitbucket-app-password", "password = ATBBZUPgHV7iB3m03nbqnsGpWLuqIA1id6Vw\n",
       "ATBBZUPgHV7iB3m03nbqnsGpWLuqIA1id6Vw"},
      {"bitbucket-client-secret", "BITBUCKET_CLIENT_SECRET = \"5DQL05HA064GiIjHGb3CXlMaXZjljENUhJduRHHJ\"\n",
       "5DQL05HA064GiIjHGb3CXlMaXZjljENUhJduRHHJ"},
      {"slack-token", "SLACK = 'xoxb-2751913486-4183257460215-EYXg4JdpmrcXgGCJbW56eCuN'\n",
       "xoxb-2751913486-4183257460215-EYXg4JdpmrcXgGCJbW56eCuN"},
      {"slack-webhook-url", "url = 'https://hooks.slack.com/services/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'\n",
       "hooks.slack.com/services/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"},
      {"discord-webhook-url",
       "hook = \"https://discord.com/api/webhooks/123456789012345678/"
       "z5r1pY4OjE2jBMptUsGr7CmY_uCu3ZR1zTOlUcR64cXQLioDnkHIfxIq2HZt-PlJhx2j\"\n",
       "discord.com/api/webhooks/123456789012345678/"
       "z5r1pY4OjE2jBMptUsGr7CmY_uCu3ZR1zTOlUcR64cXQLioDnkHIfxIq2HZt-PlJhx2j"},
      {"discord-bot-token", "bot.run('Mr8bOfZqfM2oeq3hDavJA76r.NicHTp.8hkqdlm7tOtHWnsCGRlrwZbqcab')\n",
       "Mr8bOfZqfM2oeq3hDavJA76r.NicHTp.8hkqdlm7tOtHWnsCGRlrwZbqcab"},
      {"telegram-bot-token", "TELEGRAM = '5487321190:AAdonuSsddfrfifiUziXnFAAoeelK9mqmAL'\n",
       "5487321190:AAdonuSsddfrfifiUziXnFAAoeelK9mqmAL"},
      {"stripe-key", "stripe.api_key = \"sk_live_UGJmGEp7CgQ0PBQFI14zGtSn\"\n", "sk_live_UGJmGEp7CgQ0PBQFI14zGtSn"},
      {"twilio-api-key", "TWILIO_KEY = 'SK7a64cb14028d512c9791e558e08baa71'\n", "SK7a64cb14028d512c9791e558e08baa71"},
      {"sendgrid-api-key", "SG = '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'\n",
       "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"},
      {"mailgun-api-key", "auth=('api', 'key-4072014b3ce107f80e222f828767efc2')\n",
       "key-4072014b3ce107f80e222f828767efc2"},
      {"mailchimp-api-key", "MC = 'f91624a8940f1f836f99eee3692f09e2-us14'\n", "f91624a8940f1f836f99eee3692f09e2-us14"},
      {"openai-api-key",
       "client = OpenAI(api_key=\"sk-proj-0G9Cryn687neLfjVHq8xiM0OT3BlbkFJGr4hTxoF54Fzbka8FRCztUjA\")\n",
       "sk-proj-0G9Cryn687neLfjVHq8xiM0OT3BlbkFJGr4hTxoF54Fzbka8FRCztUjA"},
      {"openai-api-key", "OPENAI = 'sk-wyuh1vauWv1zh87mTa5Vsqxezy3Lex7BWr2drgd1QsO7jprB'\n",
       "sk-wyuh1vauWv1zh87mTa5Vsqxezy3Lex7BWr2drgd1QsO7jprB"},
      {"anthropic-api-key",
       "ANTHROPIC = "
       "'sk-ant-api03-OyV2dZAkg05rK_gqv81RKMGHZEM9YpvujA-C5Q52ryFlwRlOEVHzc0X0AWIRh-JUqBlIFXZ53Ncqe28_AA'\n",
       "sk-ant-api03-OyV2dZAkg05rK_gqv81RKMGHZEM9YpvujA-C5Q52ryFlwRlOEVHzc0X0AWIRh-JUqBlIFXZ53Ncqe28_AA"},
      {"huggingface-token", "login(token='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')\n",
       "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"},
      {"npm-access-token", "//registry.npmjs.org/:_authToken=npm_OqHOBSWhgetH8LmyqoYMaaItDr9uP14pEHpJ\n",
       "npm_OqHOBSWhgetH8LmyqoYMaaItDr9uP14pEHpJ"},
      {"pypi-upload-token",
       "password: pypi-AgEIcHlwaS5vcmcFd0Nhcy-1kGD2VD-eR1UYzaLiA-zNyD7CHLn-xC_1hsYgBds1ghxY5OokvQy\n",
       "pypi-AgEIcHlwaS5vcmcFd0Nhcy-1kGD2VD-eR1UYzaLiA-zNyD7CHLn-xC_1hsYgBds1ghxY5OokvQy"},
      {"shopify-token", "SHOPIFY = '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'\n",
       "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"},
      {"digitalocean-token", "DO = 'dop_v1_0d7c1c1e21862ab8a18a8902073fec8df4f50947aaeb26c57d21fa5d328263df'\n",
       "dop_v1_0d7c1c1e21862ab8a18a8902073fec8df4f50947aaeb26c57d21fa5d328263df"},
      {"age-secret-key", "# key\nAGE-SECRET-KEY-1UTWG6A08JJ33HSSVU0T00FJV5YES0WXAZXQ7WUHZJW8RVVYHTUSQXKDZH4\n",
       "AGE-SECRET-KEY-1UTWG6A08JJ33HSSVU0T00FJV5YES0WXAZXQ7WUHZJW8RVVYHTUSQXKDZH4"},
      {"jwt",
       "headers = {'Authorization': 'Bearer "
       "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI4ODE3MjMiLCJyb2xlIjoiYWRtaW4ifQ."
       "q3Vx9LmZ2pT7wK4rN8bC1hJ5fG0sDeYa6uI'}\n",
       "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI4ODE3MjMiLCJyb2xlIjoiYWRtaW4ifQ."
       "q3Vx9LmZ2pT7wK4rN8bC1hJ5fG0sDeYa6uI"},
      {"database-connection-string", "DATABASE_URL = 'postgresql://app:Xq7vR2mK9pLw@db.internal:5432/prod'\n",
       "Xq7vR2mK9pLw"},
      {"database-connection-string", "client = MongoClient(\"mongodb+srv://svc:T4kLm9QzXw2@cluster0.mongodb.net\")\n",
       "T4kLm9QzXw2"},
      {"basic-auth-url", "git clone https://deploy:T7w9Qz2LmX4k@git.internal.org/repo.git\n", "T7w9Qz2LmX4k"},
      {"generic-password", "DB_PASSWORD = \"Tr0ub4dor&3xq\"\n", "Tr0ub4dor&3xq"},
      {"generic-password", "conf:\n  admin_pwd: 'Vx8#kq2Lm9!z'\n", "Vx8#kq2Lm9!z"},
      {"generic-api-key", "api_key = \"jcnqcMUP6n0a0uARxlNtencYFJEeAgYz\"\n", "jcnqcMUP6n0a0uARxlNtencYFJEeAgYz"},
      {"generic-api-key", "let client_secret: &str = \"q8Wz3Lk9Tn2Vb7Xc5Rm1Pj4Hs6Dg0Fa\";\n",
       "q8Wz3Lk9Tn2Vb7Xc5Rm1Pj4Hs6Dg0Fa"},
  };
  uint64_t seed = 1000;
  for (const auto& shape : test_gen::vendor_shapes()) {
    auto [text, secret] = test_gen::expand_case(shape.text, seed += 17);
    cases.push_back({shape.rule, std::move(text), std::move(secret)});
  }
  return cases;
}

}  // namespace tritter::data::test_cases
