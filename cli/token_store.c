/* The CLI's token file: one JSON object {url, session_id, access_token}, mode 0600, written
 * atomically (a new 0600 file renamed over the old), and refused when others could read it. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bligate/util.h"
#include "cli.h"

#define CLI_TOKEN_FILE_MAX ((off_t)64 * 1024)

bool cli_token_path(char out[CLI_PATH_MAX])
{
  const char *f = getenv("BLIGATE_TOKEN_FILE");
  if (f && *f)
    return bg_fmt(out, CLI_PATH_MAX, "%s", f);
  const char *xdg = getenv("XDG_CONFIG_HOME");
  if (xdg && xdg[0] == '/') /* the XDG spec: a relative value is ignored */
    return bg_fmt(out, CLI_PATH_MAX, "%s/bligate/token", xdg);
  const char *home = getenv("HOME");
  if (!home || !*home) {
    struct passwd *pw = getpwuid(getuid());
    home = pw ? pw->pw_dir : NULL;
  }
  if (!home || !*home) {
    fprintf(stderr, "bligate: no home directory: set BLIGATE_TOKEN_FILE\n");
    return false;
  }
  return bg_fmt(out, CLI_PATH_MAX, "%s/.config/bligate/token", home);
}

/* mkdir -p of path's directory; directories it creates are 0700, existing ones stay as they are. */
static bool make_parent(const char *path)
{
  char dir[CLI_PATH_MAX];
  if (!bg_fmt(dir, sizeof dir, "%s", path))
    return false;
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir)
    return true; /* the current directory or "/" */
  *slash = '\0';
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
      fprintf(stderr, "bligate: cannot create %s: %s\n", dir, strerror(errno));
      return false;
    }
    *p = '/';
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "bligate: cannot create %s: %s\n", dir, strerror(errno));
    return false;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "bligate: %s is not a directory\n", dir);
    return false;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
    fprintf(stderr, "bligate: warning: others can write to %s, where the token file lives\n", dir);
  return true;
}

static bool write_all(int fd, const char *buf, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    buf += w;
    n -= (size_t)w;
  }
  return true;
}

bool cli_token_save(const char *path, const struct cli_token *t)
{
  if (!make_parent(path))
    return false;
  char tmp[CLI_PATH_MAX];
  if (!bg_fmt(tmp, sizeof tmp, "%s.XXXXXX", path)) {
    fprintf(stderr, "bligate: token file path too long\n");
    return false;
  }
  json_t *doc = json_pack("{s:s, s:s, s:s}", "url", t->url, "session_id", t->session_id, "access_token",
                          t->access_token);
  char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc); /* jansson keeps its own copy of the token: freed here, not wiped */
  if (!text) {
    fprintf(stderr, "bligate: out of memory\n");
    return false;
  }
  size_t len = strlen(text);
  bool ok = false;
  /* mkostemp creates with O_CREAT|O_EXCL and mode 0600; fchmod makes that explicit. */
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "bligate: cannot create %s: %s\n", tmp, strerror(errno));
  } else {
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0 || !write_all(fd, text, len) || !write_all(fd, "\n", 1) ||
        fsync(fd) != 0)
      fprintf(stderr, "bligate: cannot write %s: %s\n", tmp, strerror(errno));
    else
      ok = true;
    if (close(fd) != 0)
      ok = false;
    if (ok && rename(tmp, path) != 0) {
      fprintf(stderr, "bligate: cannot replace %s: %s\n", path, strerror(errno));
      ok = false;
    }
    if (!ok)
      unlink(tmp);
  }
  explicit_bzero(text, len);
  free(text);
  return ok;
}

enum cli_token_load cli_token_load(const char *path, struct cli_token *t)
{
  *t = (struct cli_token){.access_token = NULL};
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT)
      return CLI_TOKEN_ABSENT;
    fprintf(stderr, "bligate: cannot open the token file %s: %s\n", path,
            errno == ELOOP ? "it is a symbolic link" : strerror(errno));
    return CLI_TOKEN_BAD;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > CLI_TOKEN_FILE_MAX) {
    fprintf(stderr, "bligate: the token file %s is not a small regular file\n", path);
    close(fd);
    return CLI_TOKEN_BAD;
  }
  bool insecure = (st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != geteuid();
  char *buf = malloc((size_t)st.st_size + 1);
  size_t len = 0;
  bool read_ok = buf != NULL;
  while (read_ok && len < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      read_ok = false;
    else
      len += (size_t)r;
  }
  close(fd);
  json_t *doc = read_ok ? json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
  if (buf) {
    explicit_bzero(buf, (size_t)st.st_size + 1);
    free(buf);
  }
  const char *tok = cli_str(doc, "access_token");
  bool ok = json_is_object(doc) && cli_copy(t->url, sizeof t->url, cli_str(doc, "url")) &&
            cli_copy(t->session_id, sizeof t->session_id, cli_str(doc, "session_id")) && tok && *tok;
  if (ok) {
    t->access_token = strdup(tok);
    ok = t->access_token != NULL;
  }
  json_decref(doc);
  if (!ok) {
    fprintf(stderr, "bligate: the token file %s is unreadable or malformed; log in again\n", path);
    cli_token_clear(t);
    return CLI_TOKEN_BAD;
  }
  if (insecure) {
    fprintf(stderr, "bligate: the token file %s is %s (mode %04o): the token may have leaked\n", path,
            st.st_uid != geteuid() ? "not owned by you" : "accessible to group or others",
            (unsigned)(st.st_mode & 07777));
    return CLI_TOKEN_INSECURE;
  }
  return CLI_TOKEN_LOADED;
}

bool cli_token_remove(const char *path)
{
  if (unlink(path) != 0 && errno != ENOENT) {
    fprintf(stderr, "bligate: cannot remove the token file %s: %s\n", path, strerror(errno));
    return false;
  }
  return true;
}

void cli_token_clear(struct cli_token *t)
{
  if (t->access_token) {
    explicit_bzero(t->access_token, strlen(t->access_token));
    free(t->access_token);
  }
  *t = (struct cli_token){.access_token = NULL};
}
