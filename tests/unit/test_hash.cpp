// FNV-1a against the published 64-bit test vectors, and the store's keys of files and peers against values
// computed outside this code (an independent Python FNV-1a): they are on disk, so they must never change.
#include <gtest/gtest.h>

#include "accounting_db/store_schema.hpp"
#include "common/hash.hpp"

TEST(Hash, Fnv1aMatchesThePublishedVectors) {
  EXPECT_EQ(bc::hash::fnv1a(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(bc::hash::fnv1a("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(bc::hash::fnv1a("foobar"), 0x85944171f73967e8ULL);
  EXPECT_EQ(bc::hash::fnv1a("bar", bc::hash::fnv1a("foo")), bc::hash::fnv1a("foobar"));  // it continues
}

TEST(Hash, StoreKeysOfFilesAndPeersNeverChange) {
  bc::store::FileRecord f;
  f.path = "/etc/passwd";
  EXPECT_EQ(bc::store::file_hash(f), 0x82ed72a22c386cb8ULL);
  bc::store::ConnectionRecord c;
  c.address = "10.0.0.1";
  c.port = 8080;
  c.protocol = "tcp";
  EXPECT_EQ(bc::store::connection_hash(c), 0x6504ffa21c1eb19aULL);
}
