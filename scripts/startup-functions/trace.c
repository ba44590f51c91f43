// Runs a program under ptrace with a one-shot breakpoint on the entry of each function
// it is given. The first time any thread enters one of them, it writes the function's
// address, relative to the executable's load address. The output lists the functions
// the program runs, in the order it first runs them.
//
// Usage: trace FUNCTIONS OUT SECONDS PROGRAM [ARG...]
//   FUNCTIONS  entry addresses in hex, one a line, as `nm` prints them
//   OUT        file that receives the addresses entered, one a line, in nm's format
//   SECONDS    the program is killed when it runs longer than this
//
// Exits with the program's exit status, 128 + N when signal N ends it, 124 when it
// is killed for running longer than SECONDS, and 2 when tracing fails.
//
// Each breakpoint is an int3 byte written over the first byte of a function. When a
// thread stops on one, the original byte goes back, the thread's instruction pointer
// moves back onto it, and the thread goes on: every function costs one stop at most.
// Linux x86-64 only.
//
// NOTE: a child that the program forks inherits the breakpoints untraced and dies on
// the first one it reaches. The app's start does not fork, but the server's code
// interpreter does, so trace the app against a separate server.

#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/time.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#define INT3 0xCC

struct breakpoint {
    unsigned long address; // relative to the load address
    unsigned char original;
    int armed;
};

static struct breakpoint *points;
static size_t point_count;

static int by_address(const void *a, const void *b) {
    unsigned long x = ((const struct breakpoint *)a)->address;
    unsigned long y = ((const struct breakpoint *)b)->address;
    return (x > y) - (x < y);
}

static struct breakpoint *find(unsigned long address) {
    size_t lo = 0, hi = point_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (points[mid].address == address) return &points[mid];
        if (points[mid].address < address) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static void read_functions(const char *path) {
    FILE *file = fopen(path, "r");
    if (!file) { perror(path); exit(2); }
    size_t capacity = 1 << 15;
    points = malloc(capacity * sizeof *points);
    unsigned long address;
    while (fscanf(file, "%lx", &address) == 1) {
        if (point_count == capacity) {
            capacity *= 2;
            points = realloc(points, capacity * sizeof *points);
        }
        if (!points) { perror("realloc"); exit(2); }
        points[point_count++] = (struct breakpoint){ .address = address };
    }
    fclose(file);
    qsort(points, point_count, sizeof *points, by_address);
}

// Returns the address that the executable's symbol values are relative to. That is
// the start of its first mapping for a PIE, whose first segment has virtual address 0,
// and 0 for a non-PIE executable, whose symbol values are absolute.
static unsigned long load_address(pid_t pid) {
    char path[64], exe[4096], line[4608];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    Elf64_Ehdr header;
    int fd = open(path, O_RDONLY);
    if (fd < 0 || read(fd, &header, sizeof header) != sizeof header) { perror(path); exit(2); }
    close(fd);
    if (header.e_type == ET_EXEC) return 0;
    ssize_t length = readlink(path, exe, sizeof exe - 1);
    if (length < 0) { perror(path); exit(2); }
    exe[length] = '\0';
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *maps = fopen(path, "r");
    if (!maps) { perror(path); exit(2); }
    unsigned long start = 0;
    while (fgets(line, sizeof line, maps)) {
        unsigned long lo, offset;
        // The path runs from offset `file` to the end of the line and may contain spaces.
        int file = 0;
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%lx-%*x %*s %lx %*s %*s %n", &lo, &offset, &file) == 2 && file
            && offset == 0 && strcmp(line + file, exe) == 0) {
            start = lo;
            break;
        }
    }
    fclose(maps);
    if (!start) { fprintf(stderr, "trace: %s is not mapped in %s\n", exe, path); exit(2); }
    return start;
}

// Replaces the first byte of the word at `address` in the tracee's memory.
static int poke_byte(pid_t pid, unsigned long address, unsigned char byte, unsigned char *old) {
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, pid, (void *)address, NULL);
    if (errno) return -1;
    if (old) *old = (unsigned char)(word & 0xff);
    word = (word & ~0xffL) | byte;
    return ptrace(PTRACE_POKETEXT, pid, (void *)address, (void *)word) == -1 ? -1 : 0;
}

static pid_t program;
static volatile sig_atomic_t timed_out;

// Kills the program when SECONDS pass. It runs as the SIGALRM handler because waitpid
// blocks until a thread stops or ends, which a busy or sleeping program may never do.
static void kill_program(int signal) {
    (void)signal;
    timed_out = 1;
    kill(program, SIGKILL);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: trace FUNCTIONS OUT SECONDS PROGRAM [ARG...]\n");
        return 2;
    }
    read_functions(argv[1]);
    FILE *out = fopen(argv[2], "w");
    if (!out) { perror(argv[2]); return 2; }
    setvbuf(out, NULL, _IOLBF, 0);
    char *end;
    double limit = strtod(argv[3], &end);
    if (end == argv[3] || *end || !(limit > 0 && limit < 1e8)) {
        fprintf(stderr, "trace: invalid SECONDS %s: expected a number above 0 and below 1e8\n",
                argv[3]);
        return 2;
    }

    pid_t pid = program = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        raise(SIGSTOP);
        execv(argv[4], argv + 4);
        perror(argv[4]);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0); // the SIGSTOP before exec
    ptrace(PTRACE_SETOPTIONS, pid, NULL,
           (void *)(long)(PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL));
    ptrace(PTRACE_CONT, pid, NULL, NULL);
    waitpid(pid, &status, 0); // the exec event: the program is mapped, nothing ran yet
    if (!WIFSTOPPED(status)) { fprintf(stderr, "trace: %s did not start\n", argv[4]); return 2; }

    unsigned long base = load_address(pid);
    size_t armed = 0;
    for (size_t i = 0; i < point_count; i++) {
        if (poke_byte(pid, base + points[i].address, INT3, &points[i].original) == 0
            && points[i].original != INT3) {
            points[i].armed = 1;
            armed++;
        }
    }
    fprintf(stderr, "trace: %zu of %zu functions armed\n", armed, point_count);
    struct sigaction alarm_action = { .sa_handler = kill_program, .sa_flags = SA_RESTART };
    sigaction(SIGALRM, &alarm_action, NULL);
    struct itimerval timer = { .it_value = {
        .tv_sec = (time_t)limit,
        .tv_usec = (suseconds_t)((limit - (double)(time_t)limit) * 1e6) } };
    setitimer(ITIMER_REAL, &timer, NULL);
    ptrace(PTRACE_CONT, pid, NULL, NULL);

    size_t entered = 0;
    int ended = 0;
    for (;;) {
        pid_t tid = waitpid(-1, &status, __WALL);
        if (tid < 0) { perror("trace: waitpid"); break; }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (tid == pid) { ended = 1; break; }
            continue;
        }
        if (!WIFSTOPPED(status)) continue;
        int signal = WSTOPSIG(status);
        if (status >> 16) { // a clone or exec event
            ptrace(PTRACE_CONT, tid, NULL, NULL);
            continue;
        }
        if (signal == SIGTRAP) {
            struct user_regs_struct regs;
            ptrace(PTRACE_GETREGS, tid, NULL, &regs);
            unsigned long hit = regs.rip - 1;
            struct breakpoint *point = hit >= base ? find(hit - base) : NULL;
            if (point && point->original != INT3) {
                // Two threads can stop on the same breakpoint. Only the first restores
                // it, and both step back onto the original instruction.
                if (point->armed) {
                    poke_byte(tid, hit, point->original, NULL);
                    point->armed = 0;
                    fprintf(out, "%016lx\n", point->address);
                    entered++;
                }
                regs.rip = hit;
                ptrace(PTRACE_SETREGS, tid, NULL, &regs);
                ptrace(PTRACE_CONT, tid, NULL, NULL);
                continue;
            }
        }
        // A new thread's first stop is a SIGSTOP of its own. Any other signal is the
        // program's, so it is delivered.
        ptrace(PTRACE_CONT, tid, NULL, (void *)(long)(signal == SIGSTOP ? 0 : signal));
    }
    timer.it_value = (struct timeval){ 0 };
    setitimer(ITIMER_REAL, &timer, NULL);
    fclose(out);

    // The count comes last because generate waits for it, then reads how the program ended.
    int result;
    if (!ended) {
        result = 2;
    } else if (timed_out && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        fprintf(stderr, "trace: %s timed out after %s s, so it was killed\n", argv[4], argv[3]);
        result = 124;
    } else if (WIFSIGNALED(status)) {
        fprintf(stderr, "trace: %s was ended by signal %d\n", argv[4], WTERMSIG(status));
        result = 128 + WTERMSIG(status);
    } else {
        fprintf(stderr, "trace: %s exited with status %d\n", argv[4], WEXITSTATUS(status));
        result = WEXITSTATUS(status);
    }
    fprintf(stderr, "trace: %zu functions entered\n", entered);
    return result;
}
