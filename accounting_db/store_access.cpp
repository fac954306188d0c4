#include "accounting_db/store_access.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "accounting_db/store.hpp"

namespace bc::store {

mode_t store_dir_mode(const std::string& group) { return group.empty() ? 0700 : 0750; }
mode_t store_file_mode(const std::string& group) { return group.empty() ? 0600 : 0640; }

namespace {

gid_t group_id(const std::string& group) {
  std::vector<char> buf(16384);
  struct group entry {};
  struct group* found = nullptr;
  int rc = 0;
  while ((rc = getgrnam_r(group.c_str(), &entry, buf.data(), buf.size(), &found)) == ERANGE && buf.size() < (1U << 20))
    buf.resize(buf.size() * 4);
  if (rc != 0) throw StoreError("cannot look up group '" + group + "' (BC_STORE_GROUP): " + std::strerror(rc));
  if (!found) throw StoreError("group '" + group + "' (BC_STORE_GROUP) does not exist");
  return found->gr_gid;
}

// EPERM: not ours to change; ENOENT: LMDB has not made that file (a read-only open never gets here).
void set_access(const std::string& file, mode_t mode, gid_t gid, bool with_group) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw StoreError("cannot read the mode of " + file + ": " + std::strerror(errno));
  }
  if (with_group && st.st_gid != gid && ::chown(file.c_str(), static_cast<uid_t>(-1), gid) != 0 && errno != EPERM)
    throw StoreError("cannot give " + file + " to its group: " + std::strerror(errno));
  if ((st.st_mode & 07777) != mode && ::chmod(file.c_str(), mode) != 0 && errno != EPERM)
    throw StoreError("cannot make " + file + " private: " + std::strerror(errno));
}

}  // namespace

void make_store_private(const std::string& dir, const std::string& group) {
  const bool with_group = !group.empty();
  const gid_t gid = with_group ? group_id(group) : static_cast<gid_t>(-1);
  set_access(dir, store_dir_mode(group), gid, with_group);
  set_access(dir + "/data.mdb", store_file_mode(group), gid, with_group);
  set_access(dir + "/lock.mdb", with_group ? 0660 : 0600, gid, with_group);
}

}  // namespace bc::store
