/* bligate: the command-line client for certificate login and sessions (login, whoami,
 * refresh, logout). Dispatch and option parsing; the commands live in login.c and session.c. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "bligate/httpc.h"
#include "cli.h"

#ifndef CLI_VERSION
#define CLI_VERSION "dev"
#endif

enum cli_optbit {
  O_URL = 1u << 0,
  O_CERT = 1u << 1,
  O_KEY = 1u << 2,
  O_CMS = 1u << 3,
};

enum { OPT_URL = 256, OPT_CERT, OPT_KEY, OPT_CMS };

struct cli_command {
  const char *name;
  int (*run)(const struct cli_opts *o);
  unsigned allowed;  /* enum cli_optbit */
  unsigned required; /* enum cli_optbit */
  const char *synopsis;
  const char *help;
};

static const struct cli_command commands[] = {
  {
    .name = "login",
    .run = cli_cmd_login,
    .allowed = O_URL | O_CERT | O_KEY | O_CMS,
    .required = O_CERT | O_KEY,
    .synopsis = "login --cert FILE --key FILE [--url URL] [--cms]",
    .help = "Sign in with a certificate: the server's challenge is signed with the key, as the MOICA\n"
            "signing component does, and the access token is stored in the token file (mode 0600).\n"
            "\n"
            "  --cert FILE  the certificate (PEM or DER)\n"
            "  --key FILE   its private key (PEM or DER; EC P-256 or RSA)\n"
            "  --url URL    the gateway (default $BLIGATE_URL, else " CLI_DEFAULT_URL ")\n"
            "  --cms        send a detached CMS SignedData instead of a bare signature\n",
  },
  {
    .name = "whoami",
    .run = cli_cmd_whoami,
    .allowed = O_URL,
    .synopsis = "whoami [--url URL]",
    .help = "Show the signed-in account: name, roles, unit and the session's expiry.\n"
            "\n"
            "  --url URL    ask this gateway instead of the one the token came from\n",
  },
  {
    .name = "refresh",
    .run = cli_cmd_refresh,
    .allowed = O_URL,
    .synopsis = "refresh [--url URL]",
    .help = "Exchange the stored access token for a new one while the session lasts.\n"
            "\n"
            "  --url URL    ask this gateway instead of the one the token came from\n",
  },
  {
    .name = "logout",
    .run = cli_cmd_logout,
    .allowed = O_URL,
    .synopsis = "logout [--url URL]",
    .help = "End the session on the server and remove the token file (also when the server says the\n"
            "session had already ended).\n"
            "\n"
            "  --url URL    ask this gateway instead of the one the token came from\n",
  },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
  fputs("usage: bligate COMMAND [OPTIONS]\n\ncommands:\n", f);
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(f, "  bligate %s\n", commands[i].synopsis);
  fputs("\n"
        "  bligate COMMAND --help   what a command does\n"
        "  bligate --version\n"
        "\n"
        "environment:\n"
        "  BLIGATE_URL          the gateway for login (default " CLI_DEFAULT_URL ")\n"
        "  BLIGATE_TOKEN_FILE   the token file (default $XDG_CONFIG_HOME/bligate/token,\n"
        "                       else ~/.config/bligate/token)\n"
        "\n"
        "exit status: 0 done, 1 failed (the server's problem code is printed), 2 usage error\n",
        f);
}

static void command_usage(const struct cli_command *c, FILE *f, bool full)
{
  fprintf(f, "usage: bligate %s\n", c->synopsis);
  if (full)
    fprintf(f, "\n%s", c->help);
  else
    fprintf(f, "run `bligate %s --help` for details\n", c->name);
}

static const struct cli_command *find_command(const char *name)
{
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

static const char *option_name(int opt)
{
  switch (opt) {
  case OPT_URL:
    return "--url";
  case OPT_CERT:
    return "--cert";
  case OPT_KEY:
    return "--key";
  case OPT_CMS:
    return "--cms";
  default:
    return "?";
  }
}

/* Parses a command's options into o. Returns -1 to go on, else the exit code. */
static int parse_options(const struct cli_command *c, int argc, char **argv, struct cli_opts *o)
{
  static const struct option longopts[] = {
    {.name = "url", .has_arg = required_argument, .val = OPT_URL},
    {.name = "cert", .has_arg = required_argument, .val = OPT_CERT},
    {.name = "key", .has_arg = required_argument, .val = OPT_KEY},
    {.name = "cms", .has_arg = no_argument, .val = OPT_CMS},
    {.name = "help", .has_arg = no_argument, .val = 'h'},
    {.name = NULL},
  };
  unsigned seen = 0;
  opterr = 0; /* our messages, not getopt's */
  optind = 1;
  for (;;) {
    int prev = optind;
    int opt = getopt_long(argc, argv, "+:h", longopts, NULL);
    if (opt == -1)
      break;
    unsigned bit = 0;
    switch (opt) {
    case 'h':
      command_usage(c, stdout, true);
      return CLI_OK;
    case OPT_URL:
      bit = O_URL;
      o->url = optarg;
      break;
    case OPT_CERT:
      bit = O_CERT;
      o->cert = optarg;
      break;
    case OPT_KEY:
      bit = O_KEY;
      o->key = optarg;
      break;
    case OPT_CMS:
      bit = O_CMS;
      o->cms = true;
      break;
    case ':':
      fprintf(stderr, "bligate %s: %s needs a value\n", c->name, argv[prev]);
      command_usage(c, stderr, false);
      return CLI_USAGE;
    default:
      fprintf(stderr, "bligate %s: unknown option %s\n", c->name, argv[prev]);
      command_usage(c, stderr, false);
      return CLI_USAGE;
    }
    if (!(c->allowed & bit)) {
      fprintf(stderr, "bligate %s: %s does not apply here\n", c->name, option_name(opt));
      command_usage(c, stderr, false);
      return CLI_USAGE;
    }
    if ((bit & (O_CERT | O_KEY | O_URL)) && !*optarg) {
      fprintf(stderr, "bligate %s: %s needs a value\n", c->name, option_name(opt));
      command_usage(c, stderr, false);
      return CLI_USAGE;
    }
    seen |= bit;
  }
  if (optind < argc) {
    fprintf(stderr, "bligate %s: unexpected argument %s\n", c->name, argv[optind]);
    command_usage(c, stderr, false);
    return CLI_USAGE;
  }
  unsigned missing = c->required & ~seen;
  if (missing) {
    fprintf(stderr, "bligate %s: %s is required\n", c->name, (missing & O_CERT) ? "--cert" : "--key");
    command_usage(c, stderr, false);
    return CLI_USAGE;
  }
  return -1;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage(stderr);
    return CLI_USAGE;
  }
  const char *first = argv[1];
  if (strcmp(first, "--help") == 0 || strcmp(first, "-h") == 0) {
    usage(stdout);
    return CLI_OK;
  }
  if (strcmp(first, "--version") == 0) {
    printf("bligate %s\n", CLI_VERSION);
    return CLI_OK;
  }
  if (strcmp(first, "help") == 0) {
    const struct cli_command *c = argc > 2 ? find_command(argv[2]) : NULL;
    if (argc > 2 && !c) {
      fprintf(stderr, "bligate: unknown command %s\n", argv[2]);
      usage(stderr);
      return CLI_USAGE;
    }
    if (c)
      command_usage(c, stdout, true);
    else
      usage(stdout);
    return CLI_OK;
  }
  if (strcmp(first, "audit") == 0) /* offline verification: its own options (audit_verify.c) */
    return cli_audit_main(argc - 1, argv + 1);
  const struct cli_command *c = find_command(first);
  if (!c) {
    fprintf(stderr, "bligate: unknown %s %s\n", first[0] == '-' ? "option" : "command", first);
    usage(stderr);
    return CLI_USAGE;
  }
  struct cli_opts o = {.url = NULL};
  int rc = parse_options(c, argc - 1, argv + 1, &o);
  if (rc >= 0)
    return rc;

  json_object_seed(0);
  bg_httpc_global_init();
  rc = c->run(&o);
  curl_global_cleanup();
  return rc;
}
