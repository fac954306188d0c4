// Who may read a store: its owner only (0700/0600), or its owner and BC_STORE_GROUP (0750/0640, lock.mdb
// 0660), for new stores and for older ones (0755/0644) once a writer opens them; another user cannot read
// it, and bcacct says why. Root only: the test changes file owners and drops to nobody.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "accounting_db/store.hpp"
#include "store_test_util.hpp"

using namespace bc::store;
using bc::store::testing::TempDir;

namespace {

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

gid_t gid_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_gid;
}

OpenOptions options_with(const std::string& config_path) {
  OpenOptions o = bc::store::testing::test_options();
  o.config_path = config_path;
  return o;
}

// Runs f as nobody in a child; its exit status.
template <typename F>
int as_nobody(F f) {
  const passwd* nobody = getpwnam("nobody");
  if (!nobody) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(nobody->pw_gid) != 0 || setuid(nobody->pw_uid) != 0) _exit(99);
    _exit(f());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 98;
}

class StoreAccess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: changes file owners and drops to nobody";
    // The directory above the store is open to all, as /var/lib is, so only the store's own modes protect it.
    ASSERT_EQ(::chmod(dir.path.c_str(), 0755), 0);
  }
  TempDir dir;
};

}  // namespace

TEST_F(StoreAccess, NewStoreIsTheOwnersAlone) {
  Store::open(dir.store(), options_with(""));
  EXPECT_EQ(mode_of(dir.store()), 0700u);
  EXPECT_EQ(mode_of(dir.store() + "/data.mdb"), 0600u);
  EXPECT_EQ(mode_of(dir.store() + "/lock.mdb"), 0600u);
  const std::string store = dir.store();
  EXPECT_EQ(as_nobody([&] {
              std::ifstream data(store + "/data.mdb");
              return data.is_open() ? 1 : 0;
            }),
            0)
      << "another user could open data.mdb";
}

TEST_F(StoreAccess, AnOlderOpenStoreIsMadePrivateByTheNextWriter) {
  Store::open(dir.store(), options_with(""));
  for (const auto& [file, mode] :
       {std::pair{dir.store(), 0755}, {dir.store() + "/data.mdb", 0644}, {dir.store() + "/lock.mdb", 0644}})
    ASSERT_EQ(::chmod(file.c_str(), static_cast<mode_t>(mode)), 0);
  OpenOptions read_only = options_with("");
  read_only.read_only = true;
  read_only.create = false;
  Store::open(dir.store(), read_only);
  EXPECT_EQ(mode_of(dir.store() + "/data.mdb"), 0644u) << "a reader changes nothing";
  Store::open(dir.store(), options_with(""));
  EXPECT_EQ(mode_of(dir.store()), 0700u);
  EXPECT_EQ(mode_of(dir.store() + "/data.mdb"), 0600u);
  EXPECT_EQ(mode_of(dir.store() + "/lock.mdb"), 0600u);
}

TEST_F(StoreAccess, AConfiguredGroupMayRead) {
  const group* g = getgrnam("nogroup");
  ASSERT_NE(g, nullptr);
  const gid_t gid = g->gr_gid;
  std::ofstream(dir.file("store.conf")) << "BC_STORE_GROUP=nogroup\n";
  Store::open(dir.store(), options_with(dir.file("store.conf")));
  EXPECT_EQ(mode_of(dir.store()), 0750u);
  EXPECT_EQ(mode_of(dir.store() + "/data.mdb"), 0640u);
  EXPECT_EQ(mode_of(dir.store() + "/lock.mdb"), 0660u);  // readers register in it
  for (const std::string& f : {dir.store(), dir.store() + "/data.mdb", dir.store() + "/lock.mdb"})
    EXPECT_EQ(gid_of(f), gid) << f;
  // nobody's group is nogroup: it reads the store through LMDB, as bcacct --store does.
  const std::string store = dir.store();
  EXPECT_EQ(as_nobody([&] {
              try {
                OpenOptions o = options_with("");
                o.read_only = true;
                o.create = false;
                return Store::open(store, o)->job_ids().empty() ? 0 : 2;
              } catch (const std::exception&) {
                return 1;
              }
            }),
            0);
  // Without the group again, the next writer takes the group's access away.
  Store::open(dir.store(), options_with(""));
  EXPECT_EQ(mode_of(dir.store()), 0700u);
  EXPECT_EQ(mode_of(dir.store() + "/lock.mdb"), 0600u);
}

TEST_F(StoreAccess, AnUnknownGroupIsAClearError) {
  std::ofstream(dir.file("store.conf")) << "BC_STORE_GROUP=bc_no_such_group_here\n";
  try {
    Store::open(dir.store(), options_with(dir.file("store.conf")));
    FAIL() << "opened with a group that does not exist";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("group 'bc_no_such_group_here' (BC_STORE_GROUP) does not exist"),
              std::string::npos)
        << e.what();
  }
  std::ofstream(dir.file("bad.conf")) << "BC_STORE_GROUP=-rf /\n";
  try {
    Store::open(dir.store(), options_with(dir.file("bad.conf")));
    FAIL() << "took a bad group name";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.conf:1: BC_STORE_GROUP: '-rf /' is not a group name"), std::string::npos)
        << e.what();
  }
}

#ifdef BCACCT_BINARY
// bcacct, as another user, on a private store: exit 5 (no permission) and where to read instead.
TEST_F(StoreAccess, BcacctAsAnotherUserSaysWhereToRead) {
  Store::open(dir.store(), options_with(""));
  // A copy beside the store: nobody may not reach the build tree.
  const std::string bcacct = dir.file("bcacct");
  std::filesystem::copy_file(BCACCT_BINARY, bcacct);
  const std::string cmd = "runuser -u nobody -- env BC_BCACCT_CONFIG=/nonexistent BC_CENTRAL= " + bcacct + " --store " +
                          dir.store() + " -j 1 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  EXPECT_EQ(WEXITSTATUS(status), 5) << out;
  EXPECT_NE(out.find("no permission to read the store"), std::string::npos) << out;
  EXPECT_NE(out.find("BC_STORE_GROUP"), std::string::npos) << out;
}
#endif
