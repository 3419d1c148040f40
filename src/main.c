/* The command line: parses arguments and wires the modules together. Nothing here outlives the call it makes. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "sockets.h"
#include "supervisor.h"
#include "util.h"

static const char usage_text[] =
	"Usage:\n"
	"  baton run    [-c FILE] [--listen NAME=ADDRESS]... [--log-level LEVEL] [-- COMMAND [ARG]...]\n"
	"  baton check  -c FILE\n"
	"  baton --help | --version\n"
	"\n"
	"Keeps a service's sockets open while the program behind them is started, stopped or crashes.\n"
	"\n"
	"  run     bind the listeners (or inherit them from systemd) and supervise the program\n"
	"  check   validate FILE and print the normalized configuration\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE        the YAML configuration (see baton.yaml(5))\n"
	"  -l, --listen NAME=ADDR   add a listener (without a config file, or when it has none)\n"
	"      --log-level LEVEL    error, warning, notice, info (default) or debug\n"
	"  -h, --help               show this help\n"
	"  -V, --version            show the version\n"
	"\n"
	"Exit status of run: 0 after a requested stop; the program's status when it exits on its own (128+N for\n"
	"signal N); 100 usage error, 101 invalid configuration, 102 the program could not be started, 111 system error.\n"
	"See baton(1).\n";

static int usage_error(const char *fmt, const char *arg) {
	fprintf(stderr, "baton: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
	fprintf(stderr, "\nTry 'baton --help'.\n");
	return EXIT_USAGE;
}

struct options {
	const char *config_path;
	char **listens; /* NULL-terminated */
	char **command; /* points into argv; NULL when no "--" */
};

enum { OPT_LOG_LEVEL = 0x100 };

static const struct option long_options[] = {
	{"config", required_argument, NULL, 'c'},
	{"listen", required_argument, NULL, 'l'},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{0},
};

/* Parses the options of a subcommand. Returns 0, 1 when --help/--version was handled, or EXIT_USAGE (positive). */
static int parse_options(int argc, char **argv, bool allow_run_options, struct options *o) {
	int c;
	/* "+": stop at the first non-option, so that nothing after "--" is taken for baton's own option. */
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:l:hV", long_options, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (o->config_path)
				return usage_error("-c given twice ('%s')", optarg);
			o->config_path = optarg;
			break;
		case 'l':
			if (!allow_run_options)
				return usage_error("--listen is an option of 'run' only ('%s')", optarg);
			if (strv_extend(&o->listens, optarg) < 0)
				return usage_error("%s", "out of memory");
			break;
		case OPT_LOG_LEVEL: {
			int level = log_level_from_string(optarg);
			if (level < 0)
				return usage_error("invalid --log-level '%s' (error, warning, notice, info, debug)", optarg);
			log_max_level = level;
			break;
		}
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		case 'V':
			printf("baton %s\n", BATON_VERSION);
			return 1;
		case ':':
			return usage_error("option '%s' needs an argument", argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}

	if (optind < argc) {
		/* Only a command after "--" is accepted: a stray word is more likely a typo than a program. */
		if (!streq(argv[optind - 1], "--"))
			return usage_error("unexpected argument '%s' (put the program after --)", argv[optind]);
		if (!allow_run_options)
			return usage_error("unexpected command after -- ('%s')", argv[optind]);
		o->command = argv + optind;
	} else if (optind > 1 && streq(argv[optind - 1], "--") && allow_run_options)
		return usage_error("%s", "-- must be followed by a command");
	return 0;
}

static int cmd_check(int argc, char **argv) {
	struct options o = {0};
	int r = parse_options(argc, argv, false, &o);
	if (r != 0)
		return r == 1 ? 0 : r;
	if (!o.config_path)
		return usage_error("%s", "check needs -c FILE");

	struct config *c = NULL;
	_cleanup_free_ char *error = NULL;
	r = config_load(o.config_path, &c, &error);
	if (r >= 0)
		r = config_apply_cli(c, NULL, NULL, &error);
	if (r < 0) {
		fprintf(stderr, "baton: %s\n", error ? error : strerror(-r));
		config_free(c);
		return EXIT_CONFIG;
	}
	config_print(c, stdout);
	config_free(c);
	return fflush(stdout) == 0 ? 0 : EXIT_SYSTEM;
}

static int cmd_run(int argc, char **argv) {
	struct options o = {0};
	_cleanup_strv_free_ char **listens = NULL;
	int r = parse_options(argc, argv, true, &o);
	listens = o.listens;
	if (r != 0)
		return r == 1 ? 0 : r;

	if (supervisor_block_signals() < 0)
		return EXIT_SYSTEM;
	log_open();

	struct config *c = NULL;
	_cleanup_free_ char *error = NULL;
	if (o.config_path)
		r = config_load(o.config_path, &c, &error);
	else
		r = config_new_default(&c);
	if (r >= 0)
		r = config_apply_cli(c, listens, o.command, &error);
	if (r < 0) {
		if (error)
			log_error("%s", error);
		else
			log_error_errno(r, "Failed to load the configuration");
		config_free(c);
		return EXIT_CONFIG;
	}

	struct inherited_fd *inh = NULL;
	size_t n_inh = 0;
	r = sock_take_inherited(&inh, &n_inh);
	if (r < 0) {
		log_error_errno(r, "Failed to take the inherited sockets (LISTEN_FDS)");
		config_free(c);
		return EXIT_SYSTEM;
	}

	struct listener *ls = NULL;
	free(error);
	error = NULL;
	r = sock_open_all(c, inh, n_inh, &ls, &error);
	for (size_t i = 0; i < n_inh; i++)
		free(inh[i].name);
	free(inh);
	if (r < 0) {
		if (error)
			log_error("%s", error);
		else
			log_error_errno(r, "Failed to open the listeners");
		config_free(c);
		return EXIT_SYSTEM;
	}

	return supervisor_run(c, ls, c->n_listeners);
}

int main(int argc, char **argv) {
	if (argc < 2)
		return usage_error("%s", "missing command (run, check)");

	const char *cmd = argv[1];
	if (streq(cmd, "--help") || streq(cmd, "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (streq(cmd, "--version") || streq(cmd, "-V")) {
		printf("baton %s\n", BATON_VERSION);
		return 0;
	}
	if (streq(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (streq(cmd, "check"))
		return cmd_check(argc - 1, argv + 1);
	return usage_error("unknown command '%s' (run, check)", cmd);
}
