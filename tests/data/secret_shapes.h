// Shape templates of secrets, expanded at run time into fake values (no committed file holds a key-shaped
// string). `{c:N}` is N characters of class c: a alnum, A upper alnum, l lower alnum, h hex, H upper hex,
// d digits, b base64, u base64url, L letters, U upper letters, w lower letters; `{uuid}` a lower-case UUID.
// `[[...]]` marks the secret itself (what the finding's fingerprint is taken of).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "data/secret_gen.h"

namespace tritter::data::test_gen {

inline std::string expand_shape(const std::string& tmpl, uint64_t seed) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '{' || tmpl.find('}', i) == std::string::npos) {
      out.push_back(tmpl[i]);
      continue;
    }
    const size_t close = tmpl.find('}', i);
    const std::string spec = tmpl.substr(i + 1, close - i - 1);
    i = close;
    ++seed;
    if (spec == "uuid") {
      out += fake(kHex, 8, seed) + "-" + fake(kHex, 4, seed + 1) + "-" + fake(kHex, 4, seed + 2) + "-" +
             fake(kHex, 4, seed + 3) + "-" + fake(kHex, 12, seed + 4);
      continue;
    }
    const size_t n = std::stoul(spec.substr(2));
    std::string_view cls;
    switch (spec[0]) {
      case 'a': cls = kAlnum; break;
      case 'A': cls = kUpperAlnum; break;
      case 'l': cls = kLowerAlnum; break;
      case 'h': cls = kHex; break;
      case 'H': cls = kHexUpper; break;
      case 'd': cls = kDigits; break;
      case 'b': cls = kBase64; break;
      case 'u': cls = kUrlSafe; break;
      case 'L': cls = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"; break;
      case 'U': cls = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"; break;
      default: cls = "abcdefghijklmnopqrstuvwxyz"; break;
    }
    out += fake(cls, n, seed * 131);
  }
  return out;
}

struct Shape {
  const char* rule;
  const char* text;  // a line of a file with the secret in it, as a template
};

// The expanded text (markers removed) and the secret between the markers.
inline std::pair<std::string, std::string> expand_case(const std::string& tmpl, uint64_t seed) {
  std::string t = expand_shape(tmpl, seed);
  const size_t a = t.find("[["), b = t.find("]]");
  if (a == std::string::npos || b == std::string::npos) return {t, ""};
  const std::string secret = t.substr(a + 2, b - a - 2);
  t.erase(b, 2);
  t.erase(a, 2);
  return {t, secret};
}

// One line per long-tail vendor rule (secret_rules.cpp), in a context such files have.
inline std::vector<Shape> vendor_shapes() {
  return {
      {"1password-secret-key", "OP_KEY=[[A3-{U:6}-{U:11}-{A:5}-{A:5}-{A:5}]]\n"},
      {"1password-service-account-token", "OP_SERVICE_ACCOUNT_TOKEN=[[ops_eyJ{b:260}]]\n"},
      {"adobe-client-secret", "ADOBE = '[[p8e-{a:32}]]'\n"},
      {"airtable-personal-access-token", "token: [[pat{a:14}.{h:64}]]\n"},
      {"alibaba-access-key-id", "access_key_id = [[LTAI{a:20}]]\n"},
      {"artifactory-api-key", "ARTIFACTORY=[[AKCp{a:69}]]\n"},
      {"artifactory-reference-token", "jfrog_token: [[cmVmd{a:59}]]\n"},
      {"atlassian-api-token", "JIRA = \"[[ATATT3{u:186}]]\"\n"},
      {"aws-bedrock-api-key", "AWS_BEARER_TOKEN_BEDROCK=[[ABSK{b:120}]]\n"},
      {"clickhouse-cloud-api-secret", "secret: [[4b1d{a:38}]]\n"},
      {"clojars-api-token", "[[CLOJARS_{l:60}]]\n"},
      {"cloudflare-origin-ca-key", "origin = \"[[v1.0-{h:24}-{h:146}]]\"\n"},
      {"crates-io-token", "[registry]\ntoken = \"[[cio{a:32}]]\"\n"},
      {"databricks-api-token", "host_token = [[dapi{h:32}]]\n"},
      {"docker-hub-pat", "echo [[dckr_pat_{u:27}]] | docker login -u me --password-stdin\n"},
      {"doppler-api-token", "DOPPLER_TOKEN=[[dp.pt.{a:43}]]\n"},
      {"duffel-api-token", "DUFFEL = '[[duffel_live_{u:43}]]'\n"},
      {"dynatrace-api-token", "DT = [[dt0c01.{A:24}.{A:64}]]\n"},
      {"easypost-api-token", "EASYPOST = '[[EZAK{a:54}]]'\n"},
      {"facebook-page-access-token", "page_token = '[[EAAC{a:120}]]'\n"},
      {"figma-pat", "FIGMA=[[figd_{u:40}]]\n"},
      {"flutterwave-key", "FLW = '[[FLWSECK_TEST-{h:32}-X]]'\n"},
      {"flyio-access-token", "FLY_API_TOKEN=[[fo1_{u:43}]]\n"},
      {"frameio-api-token", "frameio: [[fio-u-{u:64}]]\n"},
      {"gcp-oauth-access-token", "Authorization: Bearer [[ya29.{u:80}]]\n"},
      {"gitlab-session-cookie", "Cookie: _gitlab_session=[[{l:32}]]\n"},
      {"grafana-api-key", "GRAFANA=[[eyJrIjoi{a:80}]]\n"},
      {"grafana-cloud-api-token", "GRAFANA_CLOUD=[[glc_{b:40}]]\n"},
      {"grafana-service-account-token", "GRAFANA_SA=[[glsa_{a:32}_{h:8}]]\n"},
      {"groq-api-key", "GROQ_API_KEY=[[gsk_{a:52}]]\n"},
      {"harness-api-key", "HARNESS = [[pat.{u:22}.{a:24}.{a:20}]]\n"},
      {"hashicorp-tf-api-token", "token = \"[[{a:14}.atlasv1.{u:64}]]\"\n"},
      {"heroku-api-key-v2", "HEROKU=[[HRKU-AA{u:58}]]\n"},
      {"infracost-api-token", "INFRACOST_API_KEY=[[ico-{a:32}]]\n"},
      {"intra42-client-secret", "secret = [[s-s4t2ud-{h:64}]]\n"},
      {"linear-api-key", "LINEAR=[[lin_api_{a:40}]]\n"},
      {"maxmind-license-key", "license_key = [[{a:6}_{a:29}_mmk]]\n"},
      {"new-relic-key", "NEW_RELIC_API_KEY=[[NRAK-{A:27}]]\n"},
      {"notion-api-token", "NOTION=[[ntn_{d:11}{a:35}]]\n"},
      {"nuget-api-key", "dotnet nuget push -k [[oy2{l:43}]]\n"},
      {"octopus-deploy-api-key", "OCTOPUS=[[API-{A:26}]]\n"},
      {"openshift-user-token", "oc login --token=[[sha256~{u:43}]]\n"},
      {"perplexity-api-key", "PPLX=[[pplx-{a:48}]]\n"},
      {"planetscale-token", "PLANETSCALE=[[pscale_tkn_{u:40}]]\n"},
      {"postman-api-token", "POSTMAN=[[PMAK-{h:24}-{h:34}]]\n"},
      {"prefect-api-token", "PREFECT_API_KEY=[[pnu_{a:36}]]\n"},
      {"pulumi-api-token", "PULUMI_ACCESS_TOKEN=[[pul-{h:40}]]\n"},
      {"readme-api-token", "README=[[rdme_{l:70}]]\n"},
      {"replicate-api-token", "REPLICATE_API_TOKEN=[[r8_{a:37}]]\n"},
      {"rubygems-api-token", "---\n:rubygems_api_key: [[rubygems_{h:48}]]\n"},
      {"scalingo-api-token", "SCALINGO=[[tk-us-{u:48}]]\n"},
      {"sendinblue-api-token", "BREVO=[[xkeysib-{h:64}-{a:16}]]\n"},
      {"sentry-user-token", "SENTRY_AUTH_TOKEN=[[sntryu_{h:64}]]\n"},
      {"sentry-org-token", "SENTRY=[[sntrys_eyJpYXQiO{b:120}]]\n"},
      {"settlemint-token", "SM=[[sm_pat_{a:16}]]\n"},
      {"shippo-api-token", "SHIPPO=[[shippo_live_{h:40}]]\n"},
      {"slack-app-token", "SLACK_APP_TOKEN=[[xapp-1-{A:11}-{d:13}-{h:64}]]\n"},
      {"slack-config-token", "SLACK_CONFIG=[[xoxe.xoxp-1-{A:164}]]\n"},
      {"slack-legacy-token", "SLACK=[[xoxs-{d:6}-{d:6}-{d:7}-{h:32}]]\n"},
      {"square-access-token", "SQUARE=[[EAAA{u:60}]]\n"},
      {"supabase-access-token", "SUPABASE_ACCESS_TOKEN=[[sbp_{h:40}]]\n"},
      {"typeform-api-token", "TYPEFORM=[[tfp_{u:59}]]\n"},
      {"vault-token", "VAULT_TOKEN=[[hvs.{u:95}]]\n"},
      {"xai-api-key", "XAI_API_KEY=[[xai-{a:80}]]\n"},
      {"yandex-api-key", "YC_KEY=[[AQVN{u:36}]]\n"},
      {"yandex-access-token", "IAM=[[t1.{u:40}.{u:86}]]\n"},
      {"microsoft-teams-webhook",
       "url: [[https://acme.webhook.office.com/webhookb2/{uuid}@{uuid}/IncomingWebhook/{h:32}/{uuid}]]\n"},
      {"google-chat-webhook", "https://[[chat.googleapis.com/v1/spaces/{u:11}/messages?key={u:39}&token={u:43}]]\n"},
      {"zapier-webhook", "ZAP=https://[[hooks.zapier.com/hooks/catch/{d:7}/{l:7}]]/\n"},
      {"sidekiq-sensitive-url", "source \"https://[[{h:8}:{h:8}]]@gems.contribsys.com/\"\n"},
      {"npm-legacy-auth", "_auth = [[{b:40}]]\n"},
      {"netrc-password", "machine api.example.org\n  login ci\n  pass" "word [[{a:18}]]\n"},
      {"nuget-config-password", "<add key=\"ClearTextPassword\" value=\"[[{a:16}]]\" />\n"},
      {"xml-secret-element", "<server><id>repo</id><pass" "word>[[{a:20}]]</pass" "word></server>\n"},
      {"sidekiq-secret", "BUNDLE_GEMS__CONTRIBSYS__COM: [[{h:8}:{h:8}]]\n"},
      {"adafruit-api-key", "ADAFRUIT_IO_KEY = '[[{l:32}]]'\n"},
      {"airtable-api-key", "airtable_key: [[{l:17}]]\n"},
      {"algolia-api-key", "ALGOLIA_ADMIN_KEY=[[{l:32}]]\n"},
      {"alibaba-secret-key", "alibaba_secret = \"[[{l:30}]]\"\n"},
      {"asana-client-secret", "ASANA_SECRET=[[{l:32}]]\n"},
      {"beamer-api-token", "beamer_token: [[b_{u:44}]]\n"},
      {"bittrex-key", "bittrex_secret = [[{l:32}]]\n"},
      {"cloudflare-api-key", "CLOUDFLARE_API_TOKEN=[[{u:40}]]\n"},
      {"codecov-access-token", "CODECOV_TOKEN=[[{uuid}]]\n"},
      {"cohere-api-token", "CO_API_KEY=[[{a:40}]]\n"},
      {"coinbase-access-token", "coinbase_token = '[[{u:64}]]'\n"},
      {"confluent-secret-key", "confluent.secret=[[{a:64}]]\n"},
      {"contentful-delivery-api-token", "CONTENTFUL_TOKEN=[[{u:43}]]\n"},
      {"datadog-access-token", "DD_API_KEY=[[{h:32}]]\n"},
      {"discord-client-secret", "DISCORD_CLIENT_SECRET=[[{u:32}]]\n"},
      {"droneci-access-token", "DRONE_TOKEN=[[{a:32}]]\n"},
      {"dropbox-api-token", "DROPBOX_TOKEN=[[sl.{u:135}]]\n"},
      {"etsy-access-token", "ETSY_KEYSTRING=[[{l:24}]]\n"},
      {"facebook-secret", "FACEBOOK_APP_SECRET=[[{h:32}]]\n"},
      {"fastly-api-token", "FASTLY_API_TOKEN=[[{u:32}]]\n"},
      {"finicity-client-secret", "finicity_secret: [[{a:20}]]\n"},
      {"finnhub-access-token", "FINNHUB_KEY=[[{l:20}]]\n"},
      {"flickr-access-token", "flickr_api_key = '[[{l:32}]]'\n"},
      {"freshbooks-access-token", "FRESHBOOKS_TOKEN=[[{l:64}]]\n"},
      {"gitter-access-token", "GITTER_TOKEN=[[{l:40}]]\n"},
      {"gocardless-api-token", "GOCARDLESS_TOKEN=[[live_{u:40}]]\n"},
      {"heroku-api-key", "HEROKU_API_KEY=[[{uuid}]]\n"},
      {"hubspot-api-key", "HUBSPOT_TOKEN=[[pat-na1-{uuid}]]\n"},
      {"intercom-api-key", "INTERCOM_TOKEN=[[{u:60}]]\n"},
      {"kraken-access-token", "KRAKEN_API_KEY=[[{b:86}]]\n"},
      {"kucoin-secret-key", "kucoin_secret: [[{uuid}]]\n"},
      {"launchdarkly-access-token", "LAUNCHDARKLY_SDK_KEY=[[{u:40}]]\n"},
      {"linear-client-secret", "LINEAR_CLIENT_SECRET=[[{h:32}]]\n"},
      {"linkedin-client-secret", "LINKEDIN_CLIENT_SECRET=[[{a:16}]]\n"},
      {"lob-api-key", "LOB_API_KEY=[[live_{h:35}]]\n"},
      {"looker-client-secret", "LOOKER_CLIENT_SECRET=[[{a:24}]]\n"},
      {"mailgun-signing-key", "MAILGUN_SIGNING_KEY=[[{h:32}-{h:8}-{h:8}]]\n"},
      {"mapbox-secret-token", "MAPBOX = '[[sk.eyJ1Ijoi{u:40}.{u:22}]]'\n"},
      {"mattermost-access-token", "MATTERMOST_TOKEN=[[{l:26}]]\n"},
      {"meraki-api-key", "MERAKI_DASHBOARD_API_KEY=[[{h:40}]]\n"},
      {"messagebird-api-token", "MESSAGEBIRD_KEY=[[{a:25}]]\n"},
      {"netlify-access-token", "NETLIFY_AUTH_TOKEN=[[{u:43}]]\n"},
      {"nytimes-access-token", "NYTIMES_KEY=[[{u:32}]]\n"},
      {"okta-access-token", "OKTA_API_TOKEN=[[00{u:40}]]\n"},
      {"plaid-secret-key", "PLAID_SECRET=[[{l:30}]]\n"},
      {"privateai-api-token", "PRIVATE_AI_KEY=[[{l:32}]]\n"},
      {"rapidapi-access-token", "X-RapidAPI-Key: [[{u:50}]]\n"},
      {"sendbird-access-token", "SENDBIRD_TOKEN=[[{h:40}]]\n"},
      {"sentry-access-token", "SENTRY_TOKEN=[[{h:64}]]\n"},
      {"snyk-api-token", "SNYK_TOKEN=[[{uuid}]]\n"},
      {"sonar-api-token", "SONAR_TOKEN=[[squ_{l:40}]]\n"},
      {"squarespace-access-token", "SQUARESPACE_KEY=[[{uuid}]]\n"},
      {"sumologic-access-token", "SUMO_ACCESS_KEY=[[{a:64}]]\n"},
      {"telegram-bot-api-token", "TELEGRAM_TOKEN=[[{d:10}:A{u:34}]]\n"},
      {"travisci-access-token", "TRAVIS_TOKEN=[[{a:22}]]\n"},
      {"twitch-api-token", "TWITCH_CLIENT_SECRET=[[{l:30}]]\n"},
      {"twitter-secret", "TWITTER_API_SECRET=[[{a:50}]]\n"},
      {"yandex-aws-access-token", "YANDEX_ACCESS_KEY=[[YC{u:38}]]\n"},
      {"zendesk-secret-key", "ZENDESK_API_TOKEN=[[{a:40}]]\n"},
  };
}

}  // namespace tritter::data::test_gen
