/* Whether LD_PRELOAD can work for the program (baton(1) PRELOAD SHIM): a static ELF executable or a set-user-ID
 * file never loads the shim. Reads the file, nothing else. Does not log. */
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spawn-preload.h"
#include "util.h"

/* Finds argv0 like execvpe() would: as given when it has a '/', else the first regular executable file in path_env
 * (glibc's default PATH when that is NULL). Returns 0 with the path in buf, or -ENOENT. */
static int find_program(const char *argv0, const char *path_env, char buf[static PATH_MAX]) {
	if (strchr(argv0, '/')) {
		if (strlen(argv0) >= PATH_MAX)
			return -ENAMETOOLONG;
		strcpy(buf, argv0);
		return 0;
	}
	const char *p = path_env ? path_env : "/bin:/usr/bin";
	for (;;) {
		size_t len = strcspn(p, ":");
		/* An empty entry means the current directory. */
		int m = snprintf(buf, PATH_MAX, "%.*s%s%s", (int)len, p, len ? "/" : "", argv0);
		struct stat st;
		if (m > 0 && m < PATH_MAX && stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
			return 0;
		if (!p[len])
			return -ENOENT;
		p += len + 1;
	}
}

/* 1 when the file at path is an ELF executable without a PT_INTERP program header (no dynamic linker runs, so
 * nothing reads LD_PRELOAD), 0 when it is a dynamic ELF or no ELF; *ret_interp gets a "#!" script's interpreter. */
static int elf_is_static(int fd, char interp[static PATH_MAX]) {
	unsigned char head[sizeof(Elf64_Ehdr)];
	interp[0] = '\0';
	ssize_t n = pread(fd, head, sizeof(head), 0);
	if (n >= 2 && head[0] == '#' && head[1] == '!') {
		char line[PATH_MAX + 2];
		ssize_t k = pread(fd, line, sizeof(line) - 1, 2);
		if (k <= 0)
			return 0;
		line[k] = '\0';
		const char *start = line + strspn(line, " \t");
		size_t len = strcspn(start, " \t\n");
		if (len > 0 && len < PATH_MAX) {
			memcpy(interp, start, len);
			interp[len] = '\0';
		}
		return 0;
	}
	if (n < (ssize_t)sizeof(Elf32_Ehdr) || memcmp(head, ELFMAG, SELFMAG) != 0)
		return 0;
	bool is64 = head[EI_CLASS] == ELFCLASS64;
	uint64_t phoff;
	unsigned phnum, phentsize;
	if (is64) {
		if (n < (ssize_t)sizeof(Elf64_Ehdr))
			return 0;
		Elf64_Ehdr eh;
		memcpy(&eh, head, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, head, sizeof(eh));
		phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
	}
	if (phentsize < (is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr)) || phnum > 4096)
		return 0;
	for (unsigned i = 0; i < phnum; i++) {
		uint32_t type;
		/* p_type is the first 32-bit field of both program header layouts. */
		if (pread(fd, &type, sizeof(type), (off_t)(phoff + (uint64_t)i * phentsize)) != sizeof(type))
			return 0;
		if (type == PT_INTERP)
			return 0;
	}
	return 1;
}

const char *spawn_preload_problem(const char *argv0, const char *path_env) {
	char path[PATH_MAX], interp[PATH_MAX];
	/* One level of "#!": the kernel runs the interpreter, and that is what the dynamic linker loads. */
	for (int depth = 0; depth < 2; depth++) {
		if (find_program(depth ? interp : argv0, path_env, path) < 0)
			return NULL;
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return NULL;
		if (st.st_mode & (S_ISUID | S_ISGID))
			return depth ? "its interpreter is set-user-ID or set-group-ID, and the dynamic linker then "
				       "ignores LD_PRELOAD"
				     : "it is set-user-ID or set-group-ID, and the dynamic linker then ignores "
				       "LD_PRELOAD";
		if (elf_is_static(fd, interp) > 0)
			return depth ? "its interpreter is statically linked, so nothing loads LD_PRELOAD"
				     : "it is statically linked, so nothing loads LD_PRELOAD";
		if (!interp[0])
			return NULL;
	}
	return NULL;
}
