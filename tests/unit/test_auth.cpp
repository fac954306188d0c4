#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <thread>

#include "common/auth.hpp"

using namespace bc::auth;

TEST(Base64url, RoundTripsEveryLength) {
  std::mt19937 rng(7);
  for (size_t n = 0; n < 70; ++n) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    std::string text = base64url_encode(bytes);
    EXPECT_EQ(text.find_first_of("+/="), std::string::npos) << text;
    auto back = base64url_decode(text);
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(*back, bytes) << n;
  }
  EXPECT_FALSE(base64url_decode("a"));
  EXPECT_FALSE(base64url_decode("ab+/"));
  EXPECT_FALSE(base64url_decode("ab=="));
  EXPECT_FALSE(base64url_decode("@@@@"));
}

TEST(Token, MatchesThePublicHs256Vector) {
  // The example token of jwt.io: another implementation's signature for a known secret.
  const char* input =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ";
  EXPECT_EQ(sign_hs256("your-256-bit-secret", input), "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
}

TEST(Token, ValidExpiredWrongContainer) {
  const std::string secret = "s3cret";
  std::string token = mint_token(secret, {"job_42", 2000, 1000, ""});
  auto ok = verify_token(secret, token, "job_42", 1999);
  EXPECT_EQ(ok.status, TokenStatus::Valid) << ok.message;
  EXPECT_EQ(ok.claims.container, "job_42");
  EXPECT_EQ(ok.claims.expires_at, 2000);
  EXPECT_EQ(ok.claims.issued_at, 1000);
  EXPECT_EQ(verify_token(secret, token, "job_42", 2000).status, TokenStatus::Expired);
  auto wrong = verify_token(secret, token, "job_43", 1500);
  EXPECT_EQ(wrong.status, TokenStatus::WrongContainer);
  EXPECT_NE(wrong.message.find("job_42"), std::string::npos);
  EXPECT_EQ(verify_token("other", token, "job_42", 1500).status, TokenStatus::BadSignature);
}

TEST(Token, TamperingIsRefused) {
  const std::string secret = "s3cret";
  std::string token = mint_token(secret, {"job_42", 2000, 1000, ""});
  size_t dot1 = token.find('.'), dot2 = token.rfind('.');
  // A payload that opens another job, with the original signature.
  std::string forged_payload = base64url_encode(R"({"container":"job_7","exp":99999999999,"iat":0})");
  std::string forged = token.substr(0, dot1 + 1) + forged_payload + token.substr(dot2);
  EXPECT_EQ(verify_token(secret, forged, "job_7", 1500).status, TokenStatus::BadSignature);
  // Every single-character change of the signature fails.
  for (size_t i = dot2 + 1; i < token.size(); ++i) {
    std::string t = token;
    t[i] = t[i] == 'A' ? 'B' : 'A';
    EXPECT_NE(verify_token(secret, t, "job_42", 1500).status, TokenStatus::Valid) << i;
  }
  // alg "none" with no signature is never accepted.
  std::string none = base64url_encode(R"({"alg":"none","typ":"JWT"})") + "." +
                     base64url_encode(R"({"container":"job_42","exp":99999999999})") + ".";
  EXPECT_EQ(verify_token(secret, none, "job_42", 1500).status, TokenStatus::Malformed);
  for (const char* garbage : {"", ".", "..", "a.b", "a.b.c.d", "###.###.###"})
    EXPECT_EQ(verify_token(secret, garbage, "job_42", 1500).status, TokenStatus::Malformed) << garbage;
  // A well-signed token missing its claims is malformed, not valid.
  std::string signing = base64url_encode(R"({"alg":"HS256"})") + "." + base64url_encode(R"({"x":1})");
  EXPECT_EQ(verify_token(secret, signing + "." + sign_hs256(secret, signing), "job_42", 1500).status,
            TokenStatus::Malformed);
  // Times no 64-bit second can hold (a cast would be undefined), well signed: malformed, never valid.
  for (const char* claims :
       {R"({"container":"job_42","exp":1e300})", R"({"container":"job_42","exp":-1e300})",
        R"({"container":"job_42","exp":9.3e18})", R"({"container":"job_42","exp":99999999999,"iat":1e300})"}) {
    const std::string input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})") + "." + base64url_encode(claims);
    EXPECT_EQ(verify_token(secret, input + "." + sign_hs256(secret, input), "job_42", 1500).status,
              TokenStatus::Malformed)
        << claims;
  }
}

TEST(ApiKey, RandomHashedAndCompared) {
  std::set<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    std::string k = new_api_key();
    EXPECT_EQ(k.rfind("bck_", 0), 0u);
    EXPECT_EQ(k.size(), 4u + 43u);
    keys.insert(k);
  }
  EXPECT_EQ(keys.size(), 100u);
  EXPECT_EQ(hash_api_key("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string key = new_api_key(), stored = hash_api_key(key);
  EXPECT_TRUE(api_key_matches(key, stored));
  EXPECT_FALSE(api_key_matches(key + "x", stored));
  EXPECT_FALSE(api_key_matches(key, stored.substr(1)));
}

// Two real munged daemons with different keys, on private sockets.
class MungeTest : public ::testing::Test {
 protected:
  static std::filesystem::path dir_;
  static bool available_;
  static std::string reason_;

  static std::string sock(char which) { return (dir_ / (std::string("sock") + which)).string(); }

  static bool start(char which) {
    std::string key = (dir_ / (std::string("key") + which)).string();
    std::string cmd = "mungekey -c -k " + key + " && /usr/sbin/munged --force -S " + sock(which) +
                      " --key-file=" + key + " --log-file=" + (dir_ / (std::string("log") + which)).string() +
                      " --pid-file=" + (dir_ / (std::string("pid") + which)).string() +
                      " --seed-file=" + (dir_ / (std::string("seed") + which)).string();
    if (std::system(cmd.c_str()) != 0) return false;
    for (int i = 0; i < 100; ++i) {
      if (std::filesystem::exists(sock(which))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static void SetUpTestSuite() {
    char t[] = "/tmp/bc-munge-XXXXXX";
    dir_ = mkdtemp(t);
    chmod(dir_.c_str(), 0755);
    if (std::system("command -v munged >/dev/null 2>&1 || test -x /usr/sbin/munged") != 0) {
      reason_ = "munged is not installed";
    } else if (!start('a') || !start('b')) {
      reason_ = "cannot start private munged daemons (see " + dir_.string() + "/log*)";
    } else {
      available_ = true;
    }
  }
  static void TearDownTestSuite() {
    for (char which : {'a', 'b'}) {
      // A daemon that is already gone is fine here.
      if (std::system(("/usr/sbin/munged -S " + sock(which) + " --stop >/dev/null 2>&1").c_str()) != 0) continue;
    }
    std::filesystem::remove_all(dir_);
  }
  void SetUp() override {
    if (available_) return;
    const char* ci = std::getenv("CI");
    if (ci && std::string(ci) == "true") FAIL() << reason_;
    GTEST_SKIP() << "SKIP (munge): " << reason_;
  }
};
std::filesystem::path MungeTest::dir_;
bool MungeTest::available_ = false;
std::string MungeTest::reason_;

TEST_F(MungeTest, RoundTripIdentifiesTheCaller) {
  std::string error;
  auto cred = munge_encode("batch-1", sock('a'), error);
  ASSERT_TRUE(cred) << error;
  auto r = munge_decode(*cred, sock('a'));
  ASSERT_EQ(r.status, MungeStatus::Ok) << r.message;
  EXPECT_EQ(r.uid, getuid());
  EXPECT_EQ(r.gid, getgid());
  EXPECT_EQ(r.payload, "batch-1");
}

TEST_F(MungeTest, ReplayIsDetected) {
  std::string error;
  auto cred = munge_encode("once", sock('a'), error);
  ASSERT_TRUE(cred) << error;
  ASSERT_EQ(munge_decode(*cred, sock('a')).status, MungeStatus::Ok);
  auto again = munge_decode(*cred, sock('a'));
  EXPECT_EQ(again.status, MungeStatus::Replayed) << again.message;
}

TEST_F(MungeTest, CredentialOfAnotherKeyIsInvalid) {
  std::string error;
  auto forged = munge_encode("forged", sock('b'), error);
  ASSERT_TRUE(forged) << error;
  auto r = munge_decode(*forged, sock('a'));
  EXPECT_EQ(r.status, MungeStatus::Invalid) << r.message;
  EXPECT_EQ(munge_decode("MUNGE:garbage:", sock('a')).status, MungeStatus::Invalid);
}

TEST_F(MungeTest, NoDaemonIsUnavailable) {
  std::string error;
  EXPECT_FALSE(munge_encode("x", (dir_ / "nosock").string(), error));
  EXPECT_NE(error.find("munge"), std::string::npos);
  auto cred = munge_encode("y", sock('a'), error);
  ASSERT_TRUE(cred);
  EXPECT_EQ(munge_decode(*cred, (dir_ / "nosock").string()).status, MungeStatus::Unavailable);
}

TEST(Token, UserTokenStandsForItsUserAnywhere) {
  const std::string secret = "s3cret";
  TokenClaims claims;
  claims.user = "alice";
  claims.expires_at = 2000;
  claims.issued_at = 1000;
  const std::string token = mint_token(secret, claims);
  for (const char* container : {"job_42", "", "0123456789ab"}) {
    auto ok = verify_token(secret, token, container, 1500);
    EXPECT_EQ(ok.status, TokenStatus::Valid) << container << ": " << ok.message;
    EXPECT_EQ(ok.claims.user, "alice");
    EXPECT_TRUE(ok.claims.container.empty());
  }
  EXPECT_EQ(verify_token(secret, token, "job_42", 2000).status, TokenStatus::Expired);
  EXPECT_EQ(verify_token("other", token, "job_42", 1500).status, TokenStatus::BadSignature);
  // A payload naming both a container and a user is a job token: the user claim gives nothing more.
  const size_t dot1 = token.find('.');
  const std::string both = base64url_encode(R"({"container":"job_7","user":"root","exp":2000})");
  const std::string signing = token.substr(0, dot1 + 1) + both;
  const std::string mixed = signing + "." + sign_hs256(secret, signing);
  auto m = verify_token(secret, mixed, "job_8", 1500);
  EXPECT_EQ(m.status, TokenStatus::WrongContainer);
  EXPECT_TRUE(m.claims.user.empty());
}
