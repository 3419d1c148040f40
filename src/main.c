/* The command line: parses arguments and wires the modules together. Nothing here outlives the call it makes. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

#include "config.h"
#include "control.h"
#include "keeper.h"
#include "libsystemd.h"
#include "log.h"
#include "sockets.h"
#include "run.h"
#include "util.h"
#include "version.h"

static const char usage_text[] =
	"Usage:\n"
	"  baton run    [-c FILE] [--listen NAME=ADDRESS]... [--set KEY=VALUE]... [--log-level LEVEL]\n"
	"               [-- COMMAND [ARG]...]\n"
	"  baton check  [-c FILE] [--listen NAME=ADDRESS]... [--set KEY=VALUE]... [-- COMMAND [ARG]...]\n"
	"  baton reload (-c FILE | --control PATH) [--timeout DURATION]\n"
	"  baton upgrade (-c FILE | --control PATH) [--binary PATH] [--timeout DURATION]\n"
	"  baton status (-c FILE | --control PATH) [--json]\n"
	"  baton stop   (-c FILE | --control PATH) [--timeout DURATION]\n"
	"  baton --help | --version\n"
	"\n"
	"Keeps a service's sockets open while the program behind them is started, stopped or crashes.\n"
	"\n"
	"  run     bind the listeners (or inherit them from systemd) and supervise the program\n"
	"  check   validate the configuration run would use and print it normalized\n"
	"  reload  start a new generation and wait until it serves (or failed)\n"
	"  upgrade replace the running baton by a new binary in place: same PID, sockets and programs\n"
	"  status  show generations, listeners and the last reload\n"
	"  stop    stop gracefully and wait until baton has exited\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE        the YAML configuration (see baton.yaml(5))\n"
	"  -l, --listen NAME=ADDR   add a listener (without a config file, or when it has none)\n"
	"      --set KEY=VALUE      set a config key over the file or the defaults (stop.timeout=5s,\n"
	"                           readiness.type=none, program.environment.NAME=VALUE)\n"
	"      --log-level LEVEL    error, warning, notice, info or debug (default: info; without -c,\n"
	"                           warning, unless stderr is the journal)\n"
	"      --control PATH       the control socket of a running baton (instead of -c)\n"
	"      --binary PATH        upgrade: the new baton (default: the path baton was started from)\n"
	"      --timeout DURATION   give up waiting after DURATION (250ms, 30s, 5m; default: no limit)\n"
	"      --json               print status as one JSON object\n"
	"  -h, --help               show this help\n"
	"  -V, --version            show the version\n"
	"\n"
	"Exit status of run: 0 after a requested stop; the program's status when it exits on its own (128+N for\n"
	"signal N); 100 usage error, 101 invalid configuration, 102 the program could not be started, 111 system "
	"error.\n"
	"reload/upgrade/status/stop: 0 done, 1 the request failed (the reason is printed), 111 baton could not be\n"
	"reached.\n"
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
	char **sets; /* --set KEY=VALUE, NULL-terminated */
	char **command; /* points into argv; NULL when no "--" */
	const char *control_path;
	uint64_t timeout_usec;
	bool json;
	const char *binary; /* upgrade --binary */
	bool log_level_set; /* --log-level */
};

enum { OPT_LOG_LEVEL = 0x100, OPT_CONTROL, OPT_TIMEOUT, OPT_JSON, OPT_SET, OPT_BINARY };

static const struct option long_options[] = {
	{"config", required_argument, NULL, 'c'},
	{"listen", required_argument, NULL, 'l'},
	{"set", required_argument, NULL, OPT_SET},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"json", no_argument, NULL, OPT_JSON},
	{"binary", required_argument, NULL, OPT_BINARY},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{0},
};

/* Which options a subcommand takes. */
enum {
	ALLOW_CONFIG = 1 << 0, /* --listen, --set, -- COMMAND: run and check */
	ALLOW_CONTROL = 1 << 1, /* --control */
	ALLOW_TIMEOUT = 1 << 2, /* --timeout */
	ALLOW_JSON = 1 << 3, /* --json */
	ALLOW_LOG_LEVEL = 1 << 4, /* --log-level */
	ALLOW_BINARY = 1 << 5, /* --binary */
};

/* The options that only some subcommands take, and what a user who gives one elsewhere is told. */
static const struct {
	int option;
	unsigned allow;
	const char *elsewhere; /* a format for usage_error(), given the option's argument when it takes one */
} option_scope[] = {
	{'l', ALLOW_CONFIG, "--listen is an option of run and check ('%s')"},
	{OPT_SET, ALLOW_CONFIG, "--set is an option of run and check ('%s')"},
	{OPT_CONTROL, ALLOW_CONTROL, "--control is an option of reload, upgrade, status and stop ('%s')"},
	{OPT_TIMEOUT, ALLOW_TIMEOUT, "--timeout is an option of reload, upgrade and stop ('%s')"},
	{OPT_BINARY, ALLOW_BINARY, "--binary is an option of upgrade ('%s')"},
	{OPT_JSON, ALLOW_JSON, "--json is an option of status"},
	{OPT_LOG_LEVEL, ALLOW_LOG_LEVEL, "--log-level is an option of 'run' only ('%s')"},
};

/* One option (c, from getopt_long()) that the subcommand takes, into *o. Returns as parse_options(). */
static int take_option(int c, char **argv, struct options *o) {
	const char *why = NULL;
	int level;

	switch (c) {
	case 'c':
		if (o->config_path)
			return usage_error("-c given twice ('%s')", optarg);
		o->config_path = optarg;
		return 0;
	case 'l':
		return strv_extend(&o->listens, optarg) < 0 ? usage_error("%s", "out of memory") : 0;
	case OPT_SET:
		/* Only the form here: the key and the value are the configuration's, checked with the file. */
		if (config_set_check(optarg, &why) < 0) {
			fprintf(stderr, "baton: --set %s: %s\nTry 'baton --help'.\n", optarg, why);
			return EXIT_USAGE;
		}
		return strv_extend(&o->sets, optarg) < 0 ? usage_error("%s", "out of memory") : 0;
	case OPT_CONTROL:
		o->control_path = optarg;
		return 0;
	case OPT_TIMEOUT:
		if (parse_duration(optarg, &o->timeout_usec) < 0 || o->timeout_usec == 0)
			return usage_error("invalid --timeout '%s' (a duration with its unit: 250ms, 30s, 5m)", optarg);
		return 0;
	case OPT_BINARY:
		if (!*optarg)
			return usage_error("%s", "--binary needs a path");
		o->binary = optarg;
		return 0;
	case OPT_JSON:
		o->json = true;
		return 0;
	case OPT_LOG_LEVEL:
		if ((level = log_level_from_string(optarg)) < 0)
			return usage_error("invalid --log-level '%s' (error, warning, notice, info, debug)", optarg);
		log_max_level = level;
		o->log_level_set = true;
		return 0;
	case 'h':
		fputs(usage_text, stdout);
		return 1;
	case 'V':
		printf("baton %s\n", baton_version);
		return 1;
	case ':':
		return usage_error("option '%s' needs an argument", argv[optind - 1]);
	default:
		return usage_error("unknown option '%s'", argv[optind - 1]);
	}
}

/* What follows the options: nothing, or "-- COMMAND [ARG]..." for run and check. */
static int take_command(int argc, char **argv, bool allow_config_options, struct options *o) {
	if (optind < argc) {
		/* Only a command after "--" is accepted: a stray word is more likely a typo than a program. */
		if (!streq(argv[optind - 1], "--"))
			return usage_error("unexpected argument '%s' (put the program after --)", argv[optind]);
		if (!allow_config_options)
			return usage_error("unexpected command after -- ('%s')", argv[optind]);
		o->command = argv + optind;
	} else if (optind > 1 && streq(argv[optind - 1], "--") && allow_config_options)
		return usage_error("%s", "-- must be followed by a command");
	return 0;
}

/* Parses the options of a subcommand. Returns 0, 1 when --help/--version was handled, or EXIT_USAGE (positive). */
static int parse_options(int argc, char **argv, unsigned allowed, struct options *o) {
	o->timeout_usec = USEC_INFINITY;
	int c;
	/* "+": stop at the first non-option, so that nothing after "--" is taken for baton's own option. */
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:l:hV", long_options, NULL)) != -1) {
		for (size_t i = 0; i < ARRAY_SIZE(option_scope); i++)
			if (option_scope[i].option == c && !(allowed & option_scope[i].allow))
				return usage_error(option_scope[i].elsewhere, optarg);
		int r = take_option(c, argv, o);
		if (r != 0)
			return r;
	}
	return take_command(argc, argv, allowed & ALLOW_CONFIG, o);
}

static int cmd_check(int argc, char **argv) {
	struct options o = {0};
	_cleanup_strv_free_ char **listens = NULL, **sets = NULL;
	int r = parse_options(argc, argv, ALLOW_CONFIG, &o);
	listens = o.listens;
	sets = o.sets;
	if (r != 0)
		return r == 1 ? 0 : r;

	/* What `run` would load, with the same options; only a missing command is fine here (a note says so). */
	struct supervisor_options so = {
		.config_path = o.config_path,
		.listens = listens,
		.sets = sets,
		.command = o.command,
		.command_optional = true,
	};
	struct config *c = NULL;
	_cleanup_free_ char *error = NULL;
	r = supervisor_load_config(&so, NULL, &c, &error);
	if (r < 0) {
		fprintf(stderr, "baton: %s\n", error ? error : strerror(-r));
		return EXIT_CONFIG;
	}
	config_print(c, stdout);
	if (!c->command)
		printf("# program.command is not set: give the command after -- to baton run\n");
	config_free(c);
	return fflush(stdout) == 0 ? 0 : EXIT_SYSTEM;
}

/* baton's whole command line: `baton upgrade` execs the new binary with it. */
static char **main_argv;

/* What `run` sets up before anything else: signals blocked, the log open at its level, libsystemd if the sockets or
 * the watchdog ask for it (NOTIFY_SOCKET alone: run.c, once the program is started). Returns 0 or EXIT_SYSTEM. */
static int run_setup_process(const struct options *o) {
	if (run_block_signals() < 0)
		return EXIT_SYSTEM;
	log_open();
	/* Quick use is a container's init or a command at a terminal: like tini, it says nothing while all goes well,
	 * so the program's own output is all there is (and all `docker logs` shows). Under systemd the journal is
	 * where a service's lifecycle belongs, as with a file. */
	if (!o->config_path && !o->log_level_set && !log_to_journal())
		log_max_level = LOG_WARNING;
	/* Found missing at start, not at the first READY=1 that systemd would then wait for in vain. */
	const char *wanted = libsystemd_wanted_before_start();
	if (wanted && libsystemd_load() < 0) {
		log_error("%s is set, but libsystemd cannot be loaded: %s", wanted, libsystemd_error());
		return EXIT_SYSTEM;
	}
	return 0;
}

/* Every listener costs an fd, twice during a reload: lift the soft limit to the hard one for baton itself. The
 * children get the limit baton was started with, *ret_nofile (select() breaks above 1024). Returns 0 or EXIT_SYSTEM. */
static int run_raise_nofile(struct rlimit *ret_nofile) {
	if (getrlimit(RLIMIT_NOFILE, ret_nofile) < 0) {
		log_error_errno(errno, "Failed to read RLIMIT_NOFILE");
		return EXIT_SYSTEM;
	}
	struct rlimit raised = {.rlim_cur = ret_nofile->rlim_max, .rlim_max = ret_nofile->rlim_max};
	if (setrlimit(RLIMIT_NOFILE, &raised) < 0)
		log_warning_errno(errno, "Failed to raise RLIMIT_NOFILE, ignoring");
	return 0;
}

/* The listeners of c: taken over from LISTEN_FDS where they match, bound otherwise. Returns 0 or EXIT_SYSTEM. */
static int run_open_listeners(const struct config *c, struct listener **ret) {
	struct inherited_fd *inh = NULL;
	size_t n_inh = 0;
	int r = sock_take_inherited(&inh, &n_inh);
	if (r < 0) {
		log_error_errno(r, "Failed to take the inherited sockets (LISTEN_FDS)");
		return EXIT_SYSTEM;
	}

	_cleanup_free_ char *error = NULL;
	r = sock_open_all(c, NULL, 0, inh, n_inh, ret, &error);
	inherited_fds_free(inh, n_inh);
	if (r < 0) {
		if (error)
			log_error("%s", error);
		else
			log_error_errno(r, "Failed to open the listeners");
		return EXIT_SYSTEM;
	}
	return 0;
}

static int cmd_run(int argc, char **argv) {
	struct options o = {0};
	_cleanup_strv_free_ char **listens = NULL, **sets = NULL;
	int r = parse_options(argc, argv, ALLOW_CONFIG | ALLOW_LOG_LEVEL, &o);
	listens = o.listens;
	sets = o.sets;
	if (r != 0)
		return r == 1 ? 0 : r;

	struct supervisor_options so = {
		.config_path = o.config_path,
		.listens = listens,
		.sets = sets,
		.command = o.command,
	};
	if ((r = run_setup_process(&o)) != 0 || (r = run_raise_nofile(&so.nofile)) != 0)
		return r;
	struct config *c = NULL;
	_cleanup_free_ char *error = NULL;
	r = supervisor_load_config(&so, NULL, &c, &error);
	if (r < 0) {
		if (error)
			log_error("%s", error);
		else
			log_error_errno(r, "Failed to load the configuration");
		return EXIT_CONFIG;
	}

	struct listener *ls = NULL;
	if ((r = run_open_listeners(c, &ls)) != 0) {
		config_free(c);
		return r;
	}
	return run_supervisor(&so, c, ls, c->n_listeners, main_argv);
}

/* The control socket of the baton that runs FILE: what `run -c FILE` chose, from control.socket as written or, without
 * it, from the file name. Only that key is read, not the whole config: a control command's cost must not grow with
 * the file (issue 23). A file that is invalid now (being edited while baton runs the old one) still gives the path. */
static int control_path_of(const struct options *o, char **ret) {
	if (o->control_path) {
		*ret = strdup(o->control_path);
		return *ret ? 0 : -ENOMEM;
	}
	_cleanup_free_ char *written = NULL;
	int r = config_peek_control_socket(o->config_path, &written);
	if (r < 0 && r != -ENOENT)
		return r;
	return config_control_socket_of(o->config_path, written, ret);
}

/* The request line: the request's name, and for upgrade --binary made absolute (baton resolves nothing against its
 * own directory). *ret stays NULL when the name alone is the line. Returns 0 or an exit status. */
static int control_line_of(const char *name, const char *binary, char **ret) {
	if (!binary)
		return 0;
	char cwd[PATH_MAX];
	if (binary[0] != '/' && !getcwd(cwd, sizeof(cwd))) {
		fprintf(stderr, "baton: cannot make --binary %s absolute: %s\n", binary, strerror(errno));
		return EXIT_SYSTEM;
	}
	_cleanup_free_ char *line =
		binary[0] == '/' ? strdup_printf("%s %s", name, binary) : strdup_printf("%s %s/%s", name, cwd, binary);
	if (!line)
		return EXIT_SYSTEM;
	if (strlen(line) > CONTROL_LINE_MAX || strchr(line, '\n')) {
		fprintf(stderr, "baton: --binary %s: path too long, or with a newline\n", binary);
		return EXIT_USAGE;
	}
	*ret = TAKE_PTR(line);
	return 0;
}

/* baton's reply to a request that reached it: what the user sees, and the exit status. */
static int control_print_reply(enum control_request request, const char *name, const char *reply, bool json) {
	bool ok = false;
	if (json_get_bool(reply, "ok", &ok) < 0) {
		fprintf(stderr, "baton: unexpected reply from baton: %s\n", reply);
		return EXIT_SYSTEM;
	}
	if (!ok) {
		_cleanup_free_ char *why = NULL;
		json_get_string(reply, "error", &why);
		if (json)
			puts(reply);
		fprintf(stderr, "baton: %s failed: %s\n", name, why ? why : reply);
		return EXIT_FAILED;
	}

	_cleanup_free_ char *text = NULL;
	switch (request) {
	case CONTROL_STATUS:
		if (json)
			puts(reply);
		else if (json_get_string(reply, "text", &text) == 0)
			puts(text);
		break;
	case CONTROL_RELOAD:
		json_get_string(reply, "message", &text);
		printf("reloaded: %s\n", text ? text : reply);
		break;
	case CONTROL_STOP:
		printf("stopped\n");
		break;
	case CONTROL_UPGRADE:
		json_get_string(reply, "message", &text);
		printf("upgraded: %s\n", text ? text : reply);
		break;
	default:
		break;
	}
	return fflush(stdout) == 0 ? 0 : EXIT_SYSTEM;
}

static int cmd_control(int argc, char **argv, enum control_request request) {
	struct options o = {0};
	unsigned allowed = ALLOW_CONTROL | (request == CONTROL_STATUS ? ALLOW_JSON : ALLOW_TIMEOUT) |
			   (request == CONTROL_UPGRADE ? ALLOW_BINARY : 0);
	int r = parse_options(argc, argv, allowed, &o);
	strv_free(o.listens);
	strv_free(o.sets);
	if (r != 0)
		return r == 1 ? 0 : r;
	const char *name = control_request_to_string(request);
	if (!!o.config_path == !!o.control_path)
		return usage_error("%s needs either -c FILE or --control PATH", name);

	_cleanup_free_ char *path = NULL, *line = NULL, *reply = NULL, *error = NULL;
	r = control_path_of(&o, &path);
	if (r < 0) {
		fprintf(stderr, "baton: cannot find the control socket: %s\n", strerror(-r));
		return EXIT_SYSTEM;
	}
	if (!path) {
		fprintf(stderr, "baton: %s has no control socket (control.socket is \"\")\n", o.config_path);
		return EXIT_FAILED;
	}
	if ((r = control_line_of(name, o.binary, &line)) != 0)
		return r;

	r = control_call(path, line ? line : name, o.timeout_usec, request == CONTROL_STOP, &reply, &error);
	if (r < 0) {
		fprintf(stderr, "baton: %s\n", error ? error : strerror(-r));
		/* An invalid file may be why no baton runs there; validating it here would cost the full load that
		 * finding the socket avoids (issue 23), so the hint names the command that does. */
		if (o.config_path && (r == -ENOENT || r == -ECONNREFUSED))
			fprintf(stderr, "baton: note: no baton runs with %s (baton check -c %s says whether it can)\n",
				o.config_path, o.config_path);
		return EXIT_SYSTEM;
	}
	return control_print_reply(request, name, reply, o.json);
}

int main(int argc, char **argv) {
	/* Before anything is opened: a closed 0, 1 or 2 would be taken by a socket, and reach a program as its stdin.
	 */
	if (std_fds_ensure() < 0)
		return EXIT_SYSTEM;
	main_argv = argv;
	/* A generation's keeper that has just exec'd this binary (keeper.h): it never returns. Not for users. */
	keeper_exec_entry(argv);
	/* A baton that was just upgraded to this binary (BATON_UPGRADE_STATE), or that is asked whether it could be
	 * (--upgrade-check): run-upgrade.c. Neither is for users. */
	if (getenv("BATON_UPGRADE_STATE"))
		return run_takeover(argv);
	if (argc == 2 && strncmp(argv[1], "--upgrade-check=", 16) == 0) {
		uint64_t fd;
		if (parse_uint_max(argv[1] + 16, INT_MAX, &fd) < 0)
			return usage_error("invalid '%s'", argv[1]);
		return run_upgrade_check((int)fd);
	}
	if (argc < 2)
		return usage_error("%s", "missing command (run, check, reload, upgrade, status, stop)");

	const char *cmd = argv[1];
	if (streq(cmd, "--help") || streq(cmd, "-h")) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (streq(cmd, "--version") || streq(cmd, "-V")) {
		printf("baton %s\n", baton_version);
		return 0;
	}
	if (streq(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (streq(cmd, "check"))
		return cmd_check(argc - 1, argv + 1);
	for (enum control_request r = 0; r < _CONTROL_REQUEST_MAX; r++)
		if (streq(cmd, control_request_to_string(r)))
			return cmd_control(argc - 1, argv + 1, r);
	return usage_error("unknown command '%s' (run, check, reload, upgrade, status, stop)", cmd);
}
