// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* bubble-chamber: what the sys_exit program records (kernel side): opens with the path of the file they
 * opened, bytes read and written, and connects with their peer, each counted in the slot's aggregate maps.
 * Part of bc_events.bpf.c, which includes it once after its maps and slot helpers: one BPF object, whose
 * programs share those maps. The path walk and the hash are here because only opens need them. */
#pragma once

/* 64-bit hash of len bytes of buf, a word at a time: the first BC_HASH_INLINE_WORDS words inline (most
 * paths are shorter), the rest under bpf_loop (a plain loop multiplies verifier states by its length).
 * buf must be readable up to BC_PATH_MAX + 8 bytes past its start. */
#define BC_HASH_INLINE_WORDS 8

struct hash_ctx {
  const char* buf;
  __u64 h;
  __u32 len;
};

static __always_inline __u64 hash_word(__u64 h, const char* buf, __u32 i, __u32 len) {
  __u64 w = *(const __u64*)(buf + i * 8);
  __u32 rem = len - i * 8;
  if (rem < 8) w &= (1ULL << (rem * 8)) - 1;
  h ^= w;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 32);
}

static long hash_step(__u32 j, void* arg) {
  struct hash_ctx* c = arg;
  __u32 i = j + BC_HASH_INLINE_WORDS;
  if (i >= BC_PATH_MAX / 8) return 1;
  c->h = hash_word(c->h, c->buf, i, c->len);
  return 0;
}

static __always_inline __u64 hash_bytes(const char* buf, __u32 len, __u64 seed) {
  __u64 h = seed ^ 0x9e3779b97f4a7c15ULL ^ ((__u64)len << 32);
  __u32 words = (len + 7) / 8;
#pragma unroll
  for (__u32 i = 0; i < BC_HASH_INLINE_WORDS; i++) {
    if (i < words) h = hash_word(h, buf, i, len);
  }
  if (words > BC_HASH_INLINE_WORDS) {
    struct hash_ctx c = {.buf = buf, .h = h, .len = len};
    bpf_loop(words - BC_HASH_INLINE_WORDS, hash_step, &c, 0);
    h = c.h;
  }
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

static __always_inline struct file* file_of_fd(struct task_struct* task, long fd) {
  if (fd < 0) return NULL;
  struct fdtable* fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt) return NULL;
  unsigned int max_fds = BPF_CORE_READ(fdt, max_fds);
  if ((unsigned long)fd >= max_fds) return NULL;
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* f = NULL;
  bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
  return f;
}

/* Writes the absolute path of (dentry, vfsmount) to out as "/a/b/c" and returns its length, at most
 * BC_PATH_MAX - 2 (so a '/' and a relative part can follow). Walks d_parent up to the mount's root, then
 * crosses to the parent mount at its mountpoint, up to the root of the task's mount namespace: paths in a
 * container are the container's; a chroot does not shorten them (the walk does not stop at fs->root).
 * out must have BC_PATH_MAX + 256 bytes. Both loops run under bpf_loop with their state in w (see
 * struct walk_state), so the verifier checks each body about once. */
struct walk_ctx {
  struct walk_state* w;
  char* out;
};

static long walk_up_step(__u32 i, void* arg) {
  struct walk_state* w = ((struct walk_ctx*)arg)->w;
  struct mount* mnt = (struct mount*)w->mnt; /* locals: BPF_CORE_READ relocates every field access */
  struct dentry* dentry = (struct dentry*)w->dentry;
  struct dentry* mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
  if (dentry == mnt_root) {
    struct mount* parent = BPF_CORE_READ(mnt, mnt_parent);
    if (parent == mnt || !parent) goto done;
    w->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
    w->mnt = (__u64)parent;
    return 0;
  }
  struct dentry* up = BPF_CORE_READ(dentry, d_parent);
  if (up == dentry || !up) goto done;
  __u32 n = w->n;
  if (n >= BC_WALK_DEPTH) {
    w->truncated = 1;
    goto done;
  }
  w->comp[n & (BC_WALK_DEPTH - 1)] = dentry;
  w->n = n + 1;
  w->dentry = (__u64)up;
  return 0;
done:
  w->finished = 1;
  return 1;
}

static long walk_down_step(__u32 j, void* arg) {
  struct walk_ctx* c = arg;
  struct walk_state* w = c->w;
  __u32 n = w->n;
  if (j >= n) return 1;
  struct dentry* d = w->comp[(n - 1 - j) & (BC_WALK_DEPTH - 1)];
  const unsigned char* name = BPF_CORE_READ(d, d_name.name);
  __u32 pos = w->pos;
  if (pos > BC_PATH_MAX - 2 - 257) {
    w->truncated = 1;
    return 1;
  }
  c->out[pos & (BC_PATH_MAX - 1)] = '/';
  pos++;
  long r = bpf_probe_read_kernel_str(&c->out[pos & (BC_PATH_MAX - 1)], 256, name);
  if (r > 1) pos += (__u32)r - 1;
  w->pos = pos;
  return 0;
}

static __always_inline __u32 walk_path(struct dentry* dentry, struct vfsmount* vfsmnt, char* out, struct walk_state* w,
                                       __u32* truncated) {
  w->mnt = (__u64)((char*)vfsmnt - bpf_core_field_offset(struct mount, mnt));
  w->dentry = (__u64)dentry;
  w->n = 0;
  w->pos = 0;
  w->truncated = 0;
  w->finished = 0;
  struct walk_ctx c = {.w = w, .out = out};
  bpf_loop(BC_WALK_STEPS, walk_up_step, &c, 0);
  bpf_loop(BC_WALK_DEPTH, walk_down_step, &c, 0);
  if (!w->finished || w->truncated) *truncated = 1;
  __u32 pos = w->pos;
  if (pos == 0) {
    out[0] = '/';
    pos = 1;
  }
  return pos;
}

/* The aggregate map half the kernel writes for this slot. */
static __always_inline void* agg_map(void* outer, __u32 slot, const struct bc_slot_cfg* cfg) {
  __u32 idx = slot * 2 + (cfg->active & 1);
  return bpf_map_lookup_elem(outer, &idx);
}

static __always_inline __u32 open_flag_bits(__u64 oflags) {
  __u32 bits = 0;
  __u64 acc = oflags & O_ACCMODE;
  if (acc == O_WRONLY) bits |= BC_FILE_WRITE;
  else if (acc == O_RDWR) bits |= BC_FILE_READ | BC_FILE_WRITE;
  else bits |= BC_FILE_READ;
  if (oflags & O_CREAT) bits |= BC_FILE_CREATE;
  if (oflags & O_TRUNC) bits |= BC_FILE_TRUNC;
  if (oflags & O_APPEND) bits |= BC_FILE_APPEND;
  if (oflags & O_DIRECTORY) bits |= BC_FILE_DIRECTORY;
  return bits;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Opens.                                                                                               */

static __always_inline void on_open(struct task_struct* task, struct pt_regs* regs, long nr, long ret, __u32 tgid,
                                    const struct bc_tracked* t, const struct bc_slot_cfg* cfg) {
  __u32 slot = t->slot;
  long dfd = AT_FDCWD;
  const char* upath;
  __u64 oflags = 0;
  if (nr == NR_openat || nr == NR_openat2) {
    dfd = (int)regs->di;
    upath = (const char*)regs->si;
    if (nr == NR_openat) {
      oflags = regs->dx;
    } else if (bpf_probe_read_user(&oflags, sizeof(oflags), (const void*)regs->dx)) {
      oflags = 0; /* struct open_how starts with __u64 flags */
    }
  } else if (nr == NR_open) {
    upath = (const char*)regs->di;
    oflags = regs->si;
  } else { /* creat */
    upath = (const char*)regs->di;
    oflags = O_CREAT | O_WRONLY | O_TRUNC;
  }

  __u32 zero = 0;
  struct path_scratch* s = bpf_map_lookup_elem(&path_scratch, &zero);
  if (!s) return;
  long len = bpf_probe_read_user_str(s->buf, BC_PATH_MAX, upath);
  if (len <= 0) {
    count_loss(slot, LOST_READ);
    return;
  }
  if (len == 1) return; /* "" fails with ENOENT and names nothing */
  __u32 plen = (__u32)(len - 1) & (BC_PATH_MAX - 1);

  /* A relative path is identified by the directory it is relative to, so the same string opened from two
   * directories makes two entries. The directory's path is only walked when the name is announced. */
  struct dentry* dir_dentry = NULL;
  struct vfsmount* dir_mnt = NULL;
  int relative = s->buf[0] != '/';
  __u64 seed = 0;
  if (relative) {
    if (dfd == AT_FDCWD) {
      dir_dentry = BPF_CORE_READ(task, fs, pwd.dentry);
      dir_mnt = BPF_CORE_READ(task, fs, pwd.mnt);
    } else {
      struct file* dir = file_of_fd(task, dfd);
      if (dir) {
        dir_dentry = BPF_CORE_READ(dir, f_path.dentry);
        dir_mnt = BPF_CORE_READ(dir, f_path.mnt);
      }
    }
    seed = ((__u64)dir_dentry * 0x100000001b3ULL) ^ (__u64)dir_mnt ^ 1;
  }
  /* Read back from the map after hashing: the hash's branches on the length leave as many exact ranges of
   * it, and each would have the verifier check everything below once more (29,000 instead of 6,500). */
  s->len = plen;
  __u64 hash = hash_bytes(s->buf, plen, seed);
  plen = *(volatile __u32*)&s->len & (BC_PATH_MAX - 1);

  void* map = agg_map(&files, slot, cfg);
  if (!map) return;
  struct bc_file_key key = {.hash = hash, .tgid = tgid, .gen = t->gen};
  struct bc_file_val* v = bpf_map_lookup_elem(map, &key);
  if (!v) {
    struct bc_file_val nv = {.first_ns = bpf_ktime_get_boot_ns()};
    long err = bpf_map_update_elem(map, &key, &nv, BPF_NOEXIST);
    if (err && err != -EEXIST) {
      count_loss(slot, LOST_FILES);
      return;
    }
    if (!err) count_key_added(slot);
    v = bpf_map_lookup_elem(map, &key);
    if (!v) return;
  }
  if (ret >= 0) __sync_fetch_and_add(&v->opens, 1);
  else __sync_fetch_and_add(&v->failed, 1);
  __u32 bits = open_flag_bits(oflags);
  if ((v->flags & bits) != bits) __sync_fetch_and_or(&v->flags, bits);

  if (!v->announced) {
    struct bc_ev_name* e = &s->name;
    e->hdr.type = BC_EV_NAME;
    e->hdr.tgid = tgid;
    e->hdr.time_ns = bpf_ktime_get_boot_ns();
    e->hash = hash;
    e->kind = BC_NAME_FILE;
    e->flags = 0;
    __u32 pos = 0;
    if (relative) {
      __u32 truncated = 0;
      if (dir_dentry && dir_mnt) {
        pos = walk_path(dir_dentry, dir_mnt, e->data, &s->walk, &truncated);
        if (pos == 1) pos = 0; /* the root: "/" + name */
      } else {
        e->data[0] = '?'; /* openat on a descriptor that is no longer there */
        pos = 1;
      }
      if (truncated) e->flags |= BC_NAME_TRUNCATED;
      pos &= BC_PATH_MAX - 1;
      e->data[pos] = '/';
      pos++;
    }
    pos &= BC_PATH_MAX - 1;
    bpf_probe_read_kernel(&e->data[pos], plen, s->buf);
    __u32 total = (pos + plen) & (BC_NAME_DATA - 1);
    e->len = total;
    if (emit(slot, e, offsetof(struct bc_ev_name, data) + total) == 0) v->announced = 1;
  }

  if ((cfg->flags & BC_SLOT_IO_BYTES) && ret >= 0) {
    struct file* f = file_of_fd(task, ret);
    if (f) {
      __u64 fkey = (__u64)f;
      struct bc_file_id id = {.hash = hash, .slot = slot};
      bpf_map_update_elem(&file_ids, &fkey, &id, BPF_ANY);
    }
  }
}

/* read/write family: bytes moved, attributed to the path the file was opened by (when it was opened by a
 * tracked process while some job had byte counting on). */
static __always_inline void on_io(struct task_struct* task, struct pt_regs* regs, long nr, long ret, __u32 tgid,
                                  const struct bc_tracked* t, const struct bc_slot_cfg* cfg) {
  if (ret <= 0 || !(cfg->flags & BC_SLOT_IO_BYTES)) return;
  struct file* f = file_of_fd(task, (int)regs->di);
  if (!f) return;
  __u64 fkey = (__u64)f;
  struct bc_file_id* id = bpf_map_lookup_elem(&file_ids, &fkey);
  if (!id) return;
  void* map = agg_map(&files, t->slot, cfg);
  if (!map) return;
  struct bc_file_key key = {.hash = id->hash, .tgid = tgid, .gen = t->gen};
  struct bc_file_val* v = bpf_map_lookup_elem(map, &key);
  if (!v) {
    /* No open of it in this interval: the path is already known to user space from an earlier one. */
    struct bc_file_val nv = {.first_ns = bpf_ktime_get_boot_ns(), .announced = 1};
    long err = bpf_map_update_elem(map, &key, &nv, BPF_NOEXIST);
    if (err && err != -EEXIST) {
      count_loss(t->slot, LOST_FILES);
      return;
    }
    if (!err) count_key_added(t->slot);
    v = bpf_map_lookup_elem(map, &key);
    if (!v) return;
  }
  int is_write = nr == NR_write || nr == NR_pwrite64 || nr == NR_writev || nr == NR_pwritev || nr == NR_pwritev2;
  if (is_write) __sync_fetch_and_add(&v->write_bytes, (__u64)ret);
  else __sync_fetch_and_add(&v->read_bytes, (__u64)ret);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Connects.                                                                                            */

static __always_inline void on_connect(struct task_struct* task, struct pt_regs* regs, long ret, __u32 tgid,
                                       const struct bc_tracked* t, const struct bc_slot_cfg* cfg) {
  __u32 slot = t->slot;
  long fd = (int)regs->di;
  const char* uaddr = (const char*)regs->si;
  __u64 alen = regs->dx & 0xffffffffULL; /* 64-bit, so the verifier sees the bound below */
  if (alen < 2) return;
  if (alen > 128) alen = 128;

  __u32 zero = 0;
  struct path_scratch* s = bpf_map_lookup_elem(&path_scratch, &zero);
  if (!s) return;
  if (bpf_probe_read_user(s->buf, alen & 255, uaddr)) {
    count_loss(slot, LOST_READ);
    return;
  }
  struct bc_conn_key key = {};
  key.tgid = tgid;
  key.gen = t->gen;
  __u16 family = *(__u16*)s->buf;
  key.family = family;
  __u32 ulen = 0;
  if (family == AF_INET) {
    if (alen < 8) return;
    key.port = __builtin_bswap16(*(__u16*)(s->buf + 2));
    __builtin_memcpy(key.addr, s->buf + 4, 4);
  } else if (family == AF_INET6) {
    if (alen < 24) return;
    key.port = __builtin_bswap16(*(__u16*)(s->buf + 2));
    __builtin_memcpy(key.addr, s->buf + 8, 16);
  } else if (family == AF_UNIX) {
    /* sun_path: a NUL-terminated path, or an abstract name (leading NUL) of alen - 2 bytes. */
    ulen = (__u32)alen - 2;
    if (ulen > BC_UNIX_PATH_MAX) ulen = BC_UNIX_PATH_MAX;
    if (ulen == 0) return;
    char* path = s->buf + 2;
    __builtin_memset(s->buf + 256, 0, 128);
    if (path[0] != 0) {
      /* up to the NUL, or all ulen bytes when there is none (the kernel allows that) */
      long n = bpf_probe_read_kernel_str(s->buf + 256, (ulen + 1) & 127, path);
      ulen = n > 1 ? (__u32)(n - 1) : 0;
    } else {
      bpf_probe_read_kernel(s->buf + 256, ulen & 127, path);
    }
    s->len = ulen; /* read back after the hash, as in on_open */
    __u64 h = hash_bytes(s->buf + 256, ulen & 127, 0x756e6978ULL);
    ulen = *(volatile __u32*)&s->len & 127;
    __builtin_memcpy(key.addr, &h, 8);
  } else {
    return;
  }
  if (ret != -ENOTSOCK && ret != -EBADF) {
    struct file* f = file_of_fd(task, fd);
    if (f) {
      struct socket* sock = BPF_CORE_READ(f, private_data);
      if (sock) key.type = (__u16)BPF_CORE_READ(sock, type);
    }
  }

  void* map = agg_map(&conns, slot, cfg);
  if (!map) return;
  struct bc_conn_val* v = bpf_map_lookup_elem(map, &key);
  if (!v) {
    struct bc_conn_val nv = {.first_ns = bpf_ktime_get_boot_ns(), .announced = family != AF_UNIX};
    long err = bpf_map_update_elem(map, &key, &nv, BPF_NOEXIST);
    if (err && err != -EEXIST) {
      count_loss(slot, LOST_CONNS);
      return;
    }
    if (!err) count_key_added(slot);
    v = bpf_map_lookup_elem(map, &key);
    if (!v) return;
  }
  __sync_fetch_and_add(&v->count, 1);
  if (ret == -EINPROGRESS) __sync_fetch_and_add(&v->in_progress, 1);
  else if (ret < 0) __sync_fetch_and_add(&v->failed, 1);

  if (!v->announced) {
    struct bc_ev_name* e = &s->name;
    e->hdr.type = BC_EV_NAME;
    e->hdr.tgid = tgid;
    e->hdr.time_ns = bpf_ktime_get_boot_ns();
    __builtin_memcpy(&e->hash, key.addr, 8);
    e->kind = BC_NAME_UNIX;
    e->flags = 0;
    bpf_probe_read_kernel(e->data, ulen & 127, s->buf + 256);
    e->len = ulen & 127;
    if (emit(slot, e, offsetof(struct bc_ev_name, data) + (ulen & 127)) == 0) v->announced = 1;
  }
}
